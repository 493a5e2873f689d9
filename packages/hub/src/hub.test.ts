import { createHash } from 'node:crypto';
import { readdir, readFile, readlink, realpath, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { readManifest } from '@skipgen/core';
import { convertCheckpoint, UnsupportedArchitectureError } from '@skipgen/convert';
import { expectFailure, loadConverted, TempDirs } from '@skipgen/test-kit';
import { presets, writeCheckpoint, writeTokenizer } from '@skipgen/test-models';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  ChecksumMismatchError,
  HubAuthError,
  HubNetworkError,
  HubSettingsError,
  InvalidModelSpecError,
  NotACheckpointError,
  RepositoryNotFoundError,
  RevisionNotFoundError,
} from './errors.js';
import { resolveModel, type ResolvedModel } from './resolve-model.js';
import type { DownloadProgress } from './download.js';
import { commitOf, FakeHub, filesOf, type FakeHubFile } from './testing/fake-hub.js';

const REPO = 'skipgen-test/tiny-llama';
const PRIVATE = 'skipgen-test/private-llama';
const SHARDED = 'skipgen-test/sharded-llama';
const NO_WEIGHTS = 'skipgen-test/pytorch-only';
const GPT2 = 'skipgen-test/gpt2-like';
const TOKEN = 'hf_fake_token';
const WEIGHTS = 'model.safetensors';

const dirs = new TempDirs('skipgen-hub');
let hub: FakeHub;
/** Checkpoint directories of the two commits of REPO: `v1` (older) and `main`. */
let v1Dir: string;
let mainDir: string;
let v1Commit: string;
let mainCommit: string;
let mainFiles: FakeHubFile[];

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const fileOf = (files: FakeHubFile[], path: string) => files.find((file) => file.path === path)!;

async function textCheckpoint(dir: string, seed: number): Promise<void> {
  const spec = { ...presets['llama-text'], seed };
  await writeCheckpoint(dir, spec);
  await writeTokenizer(dir, { vocabSize: spec.vocabSize, bosTokenId: 1, eosTokenId: 2 });
}

beforeAll(async () => {
  const root = await dirs.make('repos');
  v1Dir = join(root, 'v1');
  mainDir = join(root, 'main');
  await textCheckpoint(v1Dir, 301);
  await textCheckpoint(mainDir, 777);
  // Files a conversion does not read must not be downloaded: a README, PyTorch weights, a subfolder.
  const extra = { 'README.md': '# tiny llama\n', 'pytorch_model.bin': Buffer.alloc(4096, 7), 'original/params.json': '{}' };
  const v1Files = await filesOf(v1Dir, extra);
  mainFiles = await filesOf(mainDir, extra);
  v1Commit = commitOf(v1Files, 'v1');
  mainCommit = commitOf(mainFiles, 'main');

  const shardedDir = join(root, 'sharded');
  await writeCheckpoint(shardedDir, presets['llama-sharded']);
  // A stray safetensors file the index does not name is not downloaded either.
  const shardedFiles = await filesOf(shardedDir, { 'consolidated.safetensors': Buffer.alloc(1024, 1) });

  // Three entries a page: every listing follows the Link header.
  hub = await FakeHub.start({ token: TOKEN, pageSize: 3 });
  hub.addRepo(REPO, { [v1Commit]: v1Files, [mainCommit]: mainFiles }, { main: mainCommit, v1: v1Commit });
  hub.addRepo(PRIVATE, { [mainCommit]: mainFiles }, { main: mainCommit }, { private: true });
  hub.addRepo(SHARDED, { [commitOf(shardedFiles)]: shardedFiles }, { main: commitOf(shardedFiles) });
  const noWeights = (await filesOf(v1Dir)).filter((file) => !file.path.endsWith('.safetensors'));
  noWeights.push({ path: 'pytorch_model.bin', content: Buffer.alloc(64), lfs: true });
  hub.addRepo(NO_WEIGHTS, { [commitOf(noWeights)]: noWeights }, { main: commitOf(noWeights) });
  const gpt2 = (await filesOf(v1Dir)).map((file) =>
    file.path === 'config.json' ? { ...file, content: Buffer.from(JSON.stringify({ model_type: 'gpt2', n_layer: 2 })) } : file,
  );
  hub.addRepo(GPT2, { [commitOf(gpt2)]: gpt2 }, { main: commitOf(gpt2) });
});

afterAll(async () => {
  await hub?.close();
  await dirs.cleanup();
});

interface Environment {
  hfHome: string;
  cacheDir: string;
  repoCache: (repo: string) => string;
  /** Points HF_HOME and HF_ENDPOINT at this environment and the fake Hub again (stubs end with each test). */
  apply: () => void;
}

function stubEnvironment(hfHome: string): void {
  vi.stubEnv('HF_HOME', hfHome);
  vi.stubEnv('HF_HUB_CACHE', undefined);
  vi.stubEnv('HUGGINGFACE_HUB_CACHE', undefined);
  vi.stubEnv('XDG_CACHE_HOME', join(hfHome, '..', 'xdg'));
  vi.stubEnv('HF_ENDPOINT', hub.endpoint);
  vi.stubEnv('HF_TOKEN', undefined);
  vi.stubEnv('HF_HUB_OFFLINE', undefined);
}

// No test may reach the real Hub or the user's caches: every test starts pointed at the fake Hub and a scratch home.
beforeEach(async () => {
  stubEnvironment(join(await dirs.make('scratch'), 'hf-home'));
});

afterEach(() => {
  vi.unstubAllEnvs();
});

/** A fresh Hugging Face home and skipgen cache, with HF_HOME and HF_ENDPOINT pointing at them and the fake Hub. */
async function freshEnvironment(label: string): Promise<Environment> {
  const root = await dirs.make(label);
  const hfHome = join(root, 'hf-home');
  const apply = () => stubEnvironment(hfHome);
  apply();
  return { hfHome, cacheDir: join(root, 'skipgen-cache'), repoCache: (repo) => join(hfHome, 'hub', `models--${repo.replace('/', '--')}`), apply };
}

/** The requests made while `task` ran. */
async function requestsDuring<T>(task: () => Promise<T>): Promise<{ result: T; requests: FakeHub['requests'] }> {
  const before = hub.requests.length;
  const result = await task();
  return { result, requests: hub.requests.slice(before) };
}

const filePaths = (requests: FakeHub['requests']) =>
  requests.filter((request) => request.kind === 'resolve').map((request) => request.url.split('/resolve/')[1]!.split('/').slice(1).join('/'));

describe('a Hub repo id', () => {
  let first: ResolvedModel;
  let env: Environment;
  // The tests of this group go on with the first one's caches.
  beforeEach(() => env?.apply());

  it('downloads what a conversion needs into the Hugging Face cache (HF_HOME, HF_ENDPOINT) and converts it', async () => {
    env = await freshEnvironment('download');
    const progress: DownloadProgress[] = [];
    const { result, requests } = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir, onProgress: (p) => progress.push(p) }));
    first = result;

    expect(result).toEqual({
      dir: expect.stringContaining(join(env.cacheDir, 'models', 'hub--skipgen-test--tiny-llama--')) as unknown,
      source: 'hub',
      repo: REPO,
      revision: 'main',
      commit: mainCommit,
      checkpointDir: join(env.repoCache(REPO), 'snapshots', mainCommit),
      converted: true,
    });
    expect((await readManifest(result.dir)).dims.numLayers).toBe(presets['llama-text'].numLayers);

    // Only the files a conversion reads were requested, each once.
    expect(filePaths(requests).sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].sort(),
    );
    // The weights came from the CDN after the Hub's redirect.
    expect(requests.filter((request) => request.kind === 'cdn')).toHaveLength(1);

    // The standard cache layout: refs/main, snapshots/<commit>/<file> → ../../blobs/<etag>.
    const repoCache = env.repoCache(REPO);
    expect((await readFile(join(repoCache, 'refs', 'main'), 'utf8')).trim()).toBe(mainCommit);
    const snapshot = join(repoCache, 'snapshots', mainCommit);
    expect((await readdir(snapshot)).sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].sort(),
    );
    const weights = fileOf(mainFiles, WEIGHTS).content;
    expect(await readlink(join(snapshot, WEIGHTS))).toBe(join('..', '..', 'blobs', sha256(weights)));
    expect(await readFile(join(snapshot, WEIGHTS))).toEqual(weights);
    expect((await readdir(join(repoCache, 'blobs'))).filter((name) => name.endsWith('.incomplete'))).toEqual([]);

    // Progress per file, ending at its size.
    const weightProgress = progress.filter((p) => p.file === WEIGHTS);
    expect(weightProgress.at(-1)).toEqual({ file: WEIGHTS, bytes: weights.length, totalBytes: weights.length });
    expect(weightProgress.map((p) => p.bytes)).toEqual([...weightProgress.map((p) => p.bytes)].sort((a, b) => a - b));
  });

  it('reuses the converted model: a second call asks only which commit main is, and downloads nothing', async () => {
    const { result, requests } = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir }));
    expect(result).toEqual({ ...first, converted: false });
    expect(requests.map((request) => request.kind)).toEqual(['api']);
    expect(requests[0]!.url).toBe(`/api/models/${REPO}/revision/main${requests[0]!.url.slice(requests[0]!.url.indexOf('?'))}`);
  });

  it('re-converts from the cached files without downloading them again when the converted model is gone', async () => {
    await rm(env.cacheDir, { recursive: true });
    const { result, requests } = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir }));
    expect(result).toEqual(first);
    expect(requests.filter((request) => request.kind !== 'api')).toEqual([]);
  });

  it('generates with the converted model, the same tokens as converting the checkpoint directly', async () => {
    const direct = join(await dirs.make('direct'), 'model');
    await convertCheckpoint(mainDir, direct);
    const fromHub = await loadConverted(first.dir);
    const reference = await loadConverted(direct);
    try {
      const generated = await fromHub.generate('Hello', { maxNewTokens: 6 });
      expect(generated.ids).toHaveLength(6);
      expect(generated.ids).toEqual((await reference.generate('Hello', { maxNewTokens: 6 })).ids);
    } finally {
      await fromHub.dispose();
      await reference.dispose();
    }
  });

  it('uses the cached model when the Hub cannot be reached, and with HF_HUB_OFFLINE=1', async () => {
    vi.stubEnv('HF_ENDPOINT', await deadEndpoint());
    expect(await resolveModel(REPO, { cacheDir: env.cacheDir })).toEqual({ ...first, converted: false });
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    const { result, requests } = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir, endpoint: hub.endpoint }));
    expect(result).toEqual({ ...first, converted: false });
    expect(requests).toEqual([]);
  });
});

describe('revisions', () => {
  it('pins a tag, a commit or repo@revision, each converted once', async () => {
    const env = await freshEnvironment('revisions');
    const byTag = await resolveModel(`${REPO}@v1`, { cacheDir: env.cacheDir });
    expect(byTag).toMatchObject({ commit: v1Commit, revision: 'v1', converted: true });
    expect(await readFile(join(byTag.checkpointDir!, WEIGHTS))).toEqual(await readFile(join(v1Dir, WEIGHTS)));
    expect((await readFile(join(env.repoCache(REPO), 'refs', 'v1'), 'utf8')).trim()).toBe(v1Commit);

    // The same commit by hash (option) is the same cache entry; a commit hash needs no request at all.
    const { result: byCommit, requests } = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir, revision: v1Commit }));
    expect(byCommit).toEqual({ ...byTag, revision: v1Commit, converted: false });
    expect(requests).toEqual([]);

    const latest = await resolveModel(REPO, { cacheDir: env.cacheDir });
    expect(latest).toMatchObject({ commit: mainCommit, converted: true });
    expect(latest.dir).not.toBe(byTag.dir);
    expect(await readFile(join(latest.checkpointDir!, WEIGHTS))).not.toEqual(await readFile(join(byTag.checkpointDir!, WEIGHTS)));
  });

  it('fails with RevisionNotFoundError for a revision the repository lacks, and refuses two different revisions', async () => {
    const env = await freshEnvironment('bad-revision');
    await expectFailure(resolveModel(`${REPO}@no-such-branch`, { cacheDir: env.cacheDir }), RevisionNotFoundError, [REPO, "'no-such-branch'", 'branch, a tag']);
    await expectFailure(resolveModel(`${REPO}@v1`, { cacheDir: env.cacheDir, revision: 'main' }), InvalidModelSpecError, ["revision 'v1'", "'main'"]);
  });
});

describe('authentication', () => {
  it('sends HF_TOKEN (or the token option) to a private repository, and says to set it when missing or wrong', async () => {
    const env = await freshEnvironment('private');
    const denied = await expectFailure(resolveModel(PRIVATE, { cacheDir: env.cacheDir }), HubAuthError, ['HTTP 401', 'set HF_TOKEN']);
    expect(denied.hadToken).toBe(false);
    await expectFailure(resolveModel(PRIVATE, { cacheDir: env.cacheDir, token: 'hf_wrong' }), HubAuthError, ['HTTP 401', 'HF_TOKEN', 'rejected']);
    vi.stubEnv('HF_TOKEN', 'not-a-token');
    await expectFailure(resolveModel(PRIVATE, { cacheDir: env.cacheDir }), HubSettingsError, ['HF_TOKEN', 'start with hf_']);

    vi.stubEnv('HF_TOKEN', TOKEN);
    const { result, requests } = await requestsDuring(() => resolveModel(PRIVATE, { cacheDir: env.cacheDir }));
    expect(result).toMatchObject({ repo: PRIVATE, commit: mainCommit, converted: true });
    const toHub = requests.filter((request) => request.kind === 'api' || request.kind === 'resolve');
    expect(toHub.length).toBeGreaterThan(2);
    for (const request of toHub) expect(request.authorization).toBe(`Bearer ${TOKEN}`);
  });
});

describe('interrupted downloads', () => {
  it('resumes a file whose connection dropped halfway with a Range request, in the same call', async () => {
    const env = await freshEnvironment('drop');
    hub.cut(WEIGHTS);
    const { result, requests } = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir }));
    expect(result.converted).toBe(true);
    const weights = fileOf(mainFiles, WEIGHTS).content;
    const cdn = requests.filter((request) => request.kind === 'cdn');
    expect(cdn).toHaveLength(2);
    expect(cdn[0]!.range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(weights.length);
    expect(cdn[1]!.status).toBe(206);
    expect(await readFile(join(result.checkpointDir!, WEIGHTS))).toEqual(weights);
  });

  it('keeps the partial file when a run gives up, and the next run continues from it', async () => {
    const env = await freshEnvironment('resume-later');
    hub.cut(WEIGHTS, 100);
    try {
      await expectFailure(resolveModel(REPO, { cacheDir: env.cacheDir }), HubNetworkError, [`${REPO}/${WEIGHTS}`, 'failed 5 times', 'resumes on the next run']);
    } finally {
      hub.restore(WEIGHTS);
    }
    const weights = fileOf(mainFiles, WEIGHTS).content;
    const partial = join(env.repoCache(REPO), 'blobs', `${sha256(weights)}.incomplete`);
    const kept = (await stat(partial)).size;
    expect(kept).toBeGreaterThan(weights.length / 2);
    expect(kept).toBeLessThan(weights.length);

    const { result, requests } = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir }));
    expect(result.converted).toBe(true);
    expect(requests.filter((request) => request.kind === 'cdn').map((request) => request.range)).toEqual([`bytes=${kept}-`]);
    expect(await readFile(join(result.checkpointDir!, WEIGHTS))).toEqual(weights);
    await expect(stat(partial)).rejects.toThrow();
  });
});

describe('cancellation', () => {
  it('stops a download at the signal, keeps what it has, and the next call resumes it', async () => {
    const env = await freshEnvironment('abort');
    const weights = fileOf(mainFiles, WEIGHTS).content;
    const controller = new AbortController();
    // Half the file, then hold the connection open: the abort arrives mid-body.
    hub.cut(WEIGHTS);
    const aborted = resolveModel(REPO, {
      cacheDir: env.cacheDir,
      signal: controller.signal,
      onProgress: ({ file, bytes }) => {
        if (file === WEIGHTS && bytes > 0) controller.abort();
      },
    });
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    hub.restore(WEIGHTS);
    const partial = join(env.repoCache(REPO), 'blobs', `${sha256(weights)}.incomplete`);
    const kept = (await stat(partial)).size;
    expect(kept).toBeGreaterThan(0);
    expect(await readdir(env.cacheDir).catch(() => [])).toEqual([]);

    const { result, requests } = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir }));
    expect(result.converted).toBe(true);
    expect(requests.filter((request) => request.kind === 'cdn').map((request) => request.range)).toEqual([`bytes=${kept}-`]);
  });
});

describe('verification', () => {
  it('deletes a file that fails its checksum and throws ChecksumMismatchError; a clean download then succeeds', async () => {
    const env = await freshEnvironment('corrupt');
    const weights = fileOf(mainFiles, WEIGHTS).content;
    const bad = Buffer.from(weights);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    hub.corrupt(WEIGHTS, bad);
    let error: ChecksumMismatchError;
    try {
      error = await expectFailure(resolveModel(REPO, { cacheDir: env.cacheDir }), ChecksumMismatchError, [WEIGHTS, sha256(weights), sha256(bad), 'sha256', 'deleted']);
    } finally {
      hub.restore(WEIGHTS);
    }
    expect(error.algorithm).toBe('sha256');
    const blobs = await readdir(join(env.repoCache(REPO), 'blobs'));
    expect(blobs.filter((name) => name.startsWith(sha256(weights)))).toEqual([]);
    expect(await readdir(env.cacheDir).catch(() => [])).toEqual([]);

    expect((await resolveModel(REPO, { cacheDir: env.cacheDir })).converted).toBe(true);

    // A regular (non-LFS) file is checked against its git blob id.
    const other = await freshEnvironment('corrupt-config');
    const config = fileOf(mainFiles, 'config.json').content;
    hub.corrupt('config.json', Buffer.from(config.toString().replace('"silu"', '"gelu"')));
    try {
      await expectFailure(resolveModel(REPO, { cacheDir: other.cacheDir }), ChecksumMismatchError, ['config.json', 'git-sha1']);
    } finally {
      hub.restore('config.json');
    }
  });
});

describe('what is not a usable repository', () => {
  it('a repository that does not exist is RepositoryNotFoundError', async () => {
    const env = await freshEnvironment('missing');
    await expectFailure(resolveModel('skipgen-test/no-such-model', { cacheDir: env.cacheDir }), RepositoryNotFoundError, [
      "'skipgen-test/no-such-model'",
      hub.endpoint,
      'HF_TOKEN',
    ]);
  });

  it('an unreachable Hub with nothing cached is HubNetworkError', async () => {
    const env = await freshEnvironment('offline');
    const dead = await deadEndpoint();
    await expectFailure(resolveModel(REPO, { cacheDir: env.cacheDir, endpoint: dead }), HubNetworkError, [dead, 'ECONNREFUSED', 'HF_ENDPOINT']);
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    await expectFailure(resolveModel(REPO, { cacheDir: env.cacheDir }), HubNetworkError, ['HF_HUB_OFFLINE']);
  });

  it('a repository without safetensors weights is NotACheckpointError, before any weights are downloaded', async () => {
    const env = await freshEnvironment('no-weights');
    const { requests } = await requestsDuring(() =>
      expectFailure(resolveModel(NO_WEIGHTS, { cacheDir: env.cacheDir }), NotACheckpointError, ['no model.safetensors', 'pytorch_model.bin']),
    );
    expect(filePaths(requests)).not.toContain('pytorch_model.bin');
  });

  it('an architecture the converter does not support fails before the weights download', async () => {
    const env = await freshEnvironment('gpt2');
    const { requests } = await requestsDuring(() => expectFailure(resolveModel(GPT2, { cacheDir: env.cacheDir }), UnsupportedArchitectureError, ["'gpt2'"]));
    expect(filePaths(requests)).toContain('config.json');
    expect(filePaths(requests)).not.toContain(WEIGHTS);
  });

  it('specs that are neither directories nor repo ids are InvalidModelSpecError', async () => {
    const env = await freshEnvironment('specs');
    for (const spec of ['not a repo', 'a/b/c', 'org--x/name', './no-such-dir', '/no/such/dir']) {
      await expectFailure(resolveModel(spec, { cacheDir: env.cacheDir }), InvalidModelSpecError, [`'${spec}'`]);
    }
    await expectFailure(resolveModel(`${REPO}@bad..revision`, { cacheDir: env.cacheDir }), InvalidModelSpecError, ['not a valid revision']);
  });
});

describe('sharded checkpoints and options', () => {
  it('downloads the index and the shards it names, nothing else; HF_HUB_CACHE and float16 compute are honoured', async () => {
    const env = await freshEnvironment('sharded');
    const hubCache = join(await dirs.make('hub-cache'), 'hub');
    vi.stubEnv('HF_HUB_CACHE', hubCache);
    const { result, requests } = await requestsDuring(() => resolveModel(SHARDED, { cacheDir: env.cacheDir }));
    expect(result.checkpointDir).toBe(join(hubCache, `models--${SHARDED.replace('/', '--')}`, 'snapshots', result.commit!));
    expect(filePaths(requests).sort()).toEqual(
      [
        'config.json',
        'generation_config.json',
        'model-00001-of-00003.safetensors',
        'model-00002-of-00003.safetensors',
        'model-00003-of-00003.safetensors',
        'model.safetensors.index.json',
      ].sort(),
    );
    expect((await readManifest(result.dir)).dims.numLayers).toBe(presets['llama-sharded'].numLayers);

    // float16 compute is its own cache entry, converted from the same cached files.
    const half = await requestsDuring(() => resolveModel(REPO, { cacheDir: env.cacheDir, compute: 'float16' }));
    const float32 = await resolveModel(REPO, { cacheDir: env.cacheDir });
    expect(half.result.dir).not.toBe(float32.dir);
    expect((await readManifest(half.result.dir)).computeType).toBe('float16');
    expect((await readManifest(float32.dir)).computeType).toBe('float32');
    expect(await realpath(half.result.checkpointDir!)).toBe(await realpath(float32.checkpointDir!));
  });
});

/** A URL on 127.0.0.1 where nothing listens. */
async function deadEndpoint(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
