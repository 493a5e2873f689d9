// The skipgen playground: plain JavaScript against the server's own OpenAI-compatible endpoints,
// streaming with fetch and a ReadableStream reader that parses server-sent events.

const $ = (id) => document.getElementById(id);

const state = {
  /** The served model's `GET /v1/models` entry. */
  model: null,
  mode: 'complete',
  /** Aborts the running request. */
  controller: null,
  /** The chat so far: { role, content }. */
  chat: [],
};

/** The option each policy's second control sets, with its default for a model of `layers` layers. */
const POLICY_OPTION = {
  full: null,
  unified: { key: 'speedup', label: 'speedup', step: 0.5, min: 1, value: () => 2 },
  skipdecode: { key: 'minLayers', label: 'min layers', step: 1, min: 1, value: (layers) => Math.max(1, Math.floor(layers / 2)) },
  'early-exit': { key: 'threshold', label: 'threshold', step: 0.05, min: 0.05, value: () => 0.9 },
};

function headers() {
  const key = $('api-key').value.trim();
  if (key) localStorage.setItem('skipgen-api-key', key);
  return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

function showError(message) {
  $('error').hidden = !message;
  $('error').textContent = message ?? '';
}

/** The error message of a failed response: the OpenAI error body's message when there is one. */
async function failureOf(response) {
  const body = await response.json().catch(() => null);
  return body?.error?.message ?? `${response.status} ${response.statusText}`;
}

/** Server-sent events of a response, each `data:` line parsed as JSON, until `data: [DONE]`. */
async function* serverSentEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return;
        yield JSON.parse(data);
      }
    }
  }
}

/**
 * Streams one generation from `path` and reports text and live stats as they arrive:
 * tokens (counted from the `token_ids` skipgen adds with `return_token_ids`), tokens/s
 * (as they arrive, then the server's measure), time to first token, and from the last
 * chunks the layers per token.
 */
async function streamGeneration(path, body, { onText, onStats, signal }) {
  const started = performance.now();
  const stats = { tokens: 0, firstTokenMs: null, tokensPerSecond: null, skip: null, finish: null, elapsedMs: 0 };
  const response = await fetch(path, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true }, return_token_ids: true }),
    signal,
  });
  if (!response.ok) throw new Error(await failureOf(response));
  let firstAt = null;
  for await (const chunk of serverSentEvents(response)) {
    if (chunk.error) throw new Error(chunk.error.message);
    const now = performance.now();
    const choice = chunk.choices[0];
    if (choice) {
      const count = choice.token_ids?.length ?? 0;
      if (count > 0 && firstAt === null) {
        firstAt = now;
        stats.firstTokenMs = now - started;
      }
      stats.tokens += count;
      const text = choice.text ?? choice.delta?.content ?? '';
      if (text) onText(text);
      if (choice.finish_reason) stats.finish = choice.finish_reason;
    }
    if (chunk.skip) stats.skip = chunk.skip;
    if (chunk.timing) stats.timing = chunk.timing;
    // Decode rate, as core measures it: tokens after the first over the time since the first.
    if (firstAt !== null && stats.tokens > 1 && now > firstAt) stats.tokensPerSecond = ((stats.tokens - 1) * 1000) / (now - firstAt);
    stats.elapsedMs = now - started;
    onStats(stats);
  }
  // Once finished, the server's own decode rate: chunks can arrive in bursts on a busy machine or network.
  if (stats.timing?.tokens_per_second) {
    stats.tokensPerSecond = stats.timing.tokens_per_second;
    onStats(stats);
  }
  return stats;
}

function renderStats(element, stats, numLayers) {
  const layers = stats.skip ? `${stats.skip.layers_per_token.toFixed(2)} / ${stats.skip.num_layers}` : `… / ${numLayers}`;
  const items = [
    ['tokens', 'tokens', String(stats.tokens)],
    ['tokens-per-second', 'tokens/s', stats.tokensPerSecond === null ? '…' : stats.tokensPerSecond.toFixed(1)],
    ['layers-per-token', 'layers/token', layers],
    ['ttft', 'first token', stats.firstTokenMs === null ? '…' : `${stats.firstTokenMs.toFixed(0)} ms`],
    ['policy', 'policy', stats.skip ? describeSkip(stats.skip) : '…'],
    ['finish', 'finish', stats.finish ?? '…'],
  ];
  element.replaceChildren(
    ...items.map(([key, label, value]) => {
      const span = document.createElement('span');
      span.dataset.stat = key;
      span.append(`${label} `);
      const b = document.createElement('b');
      b.textContent = value;
      span.append(b);
      return span;
    }),
  );
}

function describeSkip(skip) {
  const parameters = Object.entries(skip.parameters)
    .map(([key, value]) => `${key} ${value}`)
    .join(', ');
  return parameters ? `${skip.policy} (${parameters})` : skip.policy;
}

/** The `skip` field for the chosen policy and option. */
function skipSpec() {
  const policy = $('policy').value;
  const option = POLICY_OPTION[policy];
  if (!option) return { policy };
  return { policy, [option.key]: Number($('speedup').value) };
}

function generationBody() {
  const body = { max_tokens: Number($('max-tokens').value), skip: skipSpec() };
  const temperature = $('temperature').value;
  if (temperature !== '') body.temperature = Number(temperature);
  return body;
}

function numLayers() {
  return state.model?.skipgen?.num_layers ?? '?';
}

function setBusy(busy) {
  $('generate').disabled = busy;
  $('race').disabled = busy;
  $('stop').disabled = !busy;
  for (const button of $('chat-form').querySelectorAll('button')) button.disabled = busy || !state.model?.skipgen?.chat;
}

/** Runs `work` with a fresh AbortController; reports its failure unless it was stopped. */
async function run(work) {
  showError(null);
  state.controller = new AbortController();
  setBusy(true);
  try {
    await work(state.controller.signal);
  } catch (error) {
    if (error.name !== 'AbortError') showError(error.message);
  } finally {
    state.controller = null;
    setBusy(false);
  }
}

async function generate() {
  const output = $('output');
  output.textContent = '';
  await run((signal) =>
    streamGeneration(
      '/v1/completions',
      { ...generationBody(), prompt: $('prompt').value },
      { signal, onText: (text) => output.append(text), onStats: (stats) => renderStats($('stats'), stats, numLayers()) },
    ),
  );
}

function renderMessages() {
  $('messages').replaceChildren(
    ...state.chat.map((message) => {
      const li = document.createElement('li');
      li.className = message.role;
      li.textContent = message.content;
      return li;
    }),
  );
}

async function sendChat(event) {
  event.preventDefault();
  const content = $('chat-input').value.trim();
  if (!content) return;
  $('chat-input').value = '';
  state.chat.push({ role: 'user', content });
  const reply = { role: 'assistant', content: '' };
  const messages = state.chat.map((message) => ({ ...message }));
  state.chat.push(reply);
  renderMessages();
  const bubble = $('messages').lastElementChild;
  await run(async (signal) => {
    try {
      await streamGeneration(
        '/v1/chat/completions',
        { ...generationBody(), messages },
        {
          signal,
          onText: (text) => {
            reply.content += text;
            bubble.textContent = reply.content;
          },
          onStats: (stats) => renderStats($('chat-stats'), stats, numLayers()),
        },
      );
    } catch (error) {
      if (!reply.content) state.chat.splice(state.chat.indexOf(reply), 1);
      renderMessages();
      throw error;
    }
  });
}

async function race() {
  const speedup = Number($('speedup').value) || 2;
  const columns = [
    { element: $('race-full'), skip: { policy: 'full' } },
    { element: $('race-unified'), skip: { policy: 'unified', speedup } },
  ];
  $('race-unified').querySelector('.race-speedup').textContent = `${speedup}x`;
  $('race-result').textContent = '';
  for (const { element } of columns) {
    element.querySelector('.race-text').textContent = '';
    element.querySelector('.stats').replaceChildren();
  }
  await run(async (signal) => {
    const results = [];
    for (const { element, skip } of columns) {
      const text = element.querySelector('.race-text');
      const body = { ...generationBody(), skip, prompt: $('race-prompt').value };
      results.push(
        await streamGeneration('/v1/completions', body, {
          signal,
          onText: (piece) => text.append(piece),
          onStats: (stats) => renderStats(element.querySelector('.stats'), stats, numLayers()),
        }),
      );
    }
    const [full, unified] = results;
    if (full.tokensPerSecond && unified.tokensPerSecond) {
      $('race-result').textContent =
        `unified ${speedup}x decodes ${(unified.tokensPerSecond / full.tokensPerSecond).toFixed(2)}x as fast as full depth ` +
        `(${unified.skip.layers_per_token.toFixed(1)} of ${unified.skip.num_layers} layers per token)`;
    }
  });
}

function selectMode(mode) {
  state.mode = mode;
  for (const tab of document.querySelectorAll('.modes button')) tab.setAttribute('aria-selected', String(tab.dataset.mode === mode));
  for (const panel of document.querySelectorAll('.panel')) panel.hidden = panel.dataset.panel !== mode;
  // The race always pits full depth against unified: only the speedup applies.
  $('policy').disabled = mode === 'race';
  if (mode === 'race') {
    $('policy').value = 'unified';
    policyChanged();
  }
}

function policyChanged() {
  const option = POLICY_OPTION[$('policy').value];
  $('speedup-field').hidden = !option;
  if (!option) return;
  const input = $('speedup');
  $('speedup-field').firstChild.textContent = `${option.label} `;
  input.step = String(option.step);
  input.min = String(option.min);
  input.value = String(option.value(state.model?.skipgen?.num_layers ?? 12));
}

async function loadModelInfo() {
  const response = await fetch('/v1/models', { headers: headers() });
  if (!response.ok) {
    $('model-info').textContent = `cannot list models: ${await failureOf(response)}`;
    return;
  }
  const { data } = await response.json();
  state.model = data[0];
  const info = state.model.skipgen;
  $('model-info').textContent = `${state.model.id} · ${info.num_layers} layers · ${info.device} · ${info.context_length} tokens per request · batches of ${info.max_batch}`;
  const select = $('policy');
  select.replaceChildren(
    ...info.policies.map((name) => {
      const option = document.createElement('option');
      option.value = option.textContent = name;
      return option;
    }),
  );
  select.value = info.default_skip?.policy ?? 'full';
  policyChanged();
  if (info.default_skip && POLICY_OPTION[select.value]) {
    const value = info.default_skip[POLICY_OPTION[select.value].key];
    if (value !== undefined) $('speedup').value = String(value);
  }
  $('chat-notice').hidden = info.chat;
  $('chat-notice').textContent = info.chat
    ? ''
    : `${state.model.id} has no chat template (its tokenizer_config.json has no chat_template), so it cannot chat; use Complete, or serve an instruction-tuned model.`;
  setBusy(false);
}

$('api-key').value = localStorage.getItem('skipgen-api-key') ?? '';
$('api-key').addEventListener('change', () => void loadModelInfo());
$('generate').addEventListener('click', () => void generate());
$('stop').addEventListener('click', () => state.controller?.abort());
$('race').addEventListener('click', () => void race());
$('chat-form').addEventListener('submit', (event) => void sendChat(event));
$('chat-clear').addEventListener('click', () => {
  state.chat = [];
  renderMessages();
});
$('policy').addEventListener('change', policyChanged);
for (const tab of document.querySelectorAll('.modes button')) tab.addEventListener('click', () => selectMode(tab.dataset.mode));
$('prompt').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.metaKey || event.ctrlKey)) void generate();
});
void loadModelInfo();
