import { KvCacheFullError, prefillTask, type GenerateOptions, type GenerateResult, type GenerationTask, type Model, type Prompt, type Sequence } from '@skipgen/core';

/**
 * Static batching: generates a continuation for every prompt (of any
 * lengths) at once. Each prompt is prefilled on its own, then every decode
 * step feeds all unfinished rows together; a row that finishes leaves the
 * batch. Each row samples with its own generator seeded by `options.seed`,
 * so a row's output is the same as generating it alone. More prompts than
 * free cache slots run in successive batches.
 *
 * @example
 * ```ts
 * const results = await generateBatch(model, ['The cat', 'Once upon a time', 'Hello'], { maxNewTokens: 32 });
 * results.map((r) => r.text);
 * ```
 */
export async function generateBatch(model: Model, prompts: readonly Prompt[], options: GenerateOptions = {}): Promise<GenerateResult[]> {
  const tasks = prompts.map((prompt) => model.createTask(prompt, options));
  const results = Promise.all(tasks.map((task) => task.stream.result));
  for (let start = 0; start < tasks.length; ) {
    const room = model.cache.freeSlots;
    if (room === 0) {
      throw new KvCacheFullError(`generateBatch found no free cache slot (all ${model.cache.maxSequences} are in use); raise kvCache({ maxSequences })`);
    }
    await runStaticBatch(model, tasks.slice(start, start + room));
    start += room;
  }
  return results;
}

async function runStaticBatch(model: Model, tasks: GenerationTask[]): Promise<void> {
  const { engine } = model;
  const open = new Map<GenerationTask, Sequence>();
  const end = (task: GenerationTask, error?: unknown) => {
    const sequence = open.get(task);
    if (sequence) engine.close(sequence);
    open.delete(task);
    if (error !== undefined) task.fail(error);
  };
  try {
    for (const task of tasks) {
      const sequence = engine.open(task.tokensNeeded, task.policy);
      open.set(task, sequence);
      task.start(engine, sequence);
    }
    for (const task of tasks) await prefillTask(engine, task, open.get(task)!, model.prefillChunk);
    for (;;) {
      for (const task of [...open.keys()]) {
        if (task.state === 'finished') end(task);
        else if (task.stopReason) end(task, task.stopReason);
      }
      const rows = [...open.keys()];
      if (rows.length === 0) break;
      const logits = await engine.decode(rows.map((task) => ({ sequence: open.get(task)!, token: task.pendingToken })));
      rows.forEach((task, row) => task.accept(logits[row]!));
    }
  } catch (error) {
    for (const task of [...open.keys()]) end(task, error);
    for (const task of tasks) task.fail(error);
  }
}
