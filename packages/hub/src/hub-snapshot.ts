import { copyFile, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

import { getRepoFolderName, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { parseModelConfig } from '@skipgen/convert';

import { downloadBlob, type DownloadProgress, type ExpectedFile } from './download.js';
import { HubResponseError, NotACheckpointError } from './errors.js';
import { withFileLock } from './file-lock.js';
import { HubFetch, type RequestContext } from './http.js';
import { COMMIT_HASH } from './spec.js';

/** The files a conversion reads besides the weights. */
const CHECKPOINT_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;
const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_WEIGHTS = 'model.safetensors';

/** One repository on one Hub, as a session of requests sees it. */
export interface HubRepository {
  repo: string;
  endpoint: string;
  token: string | undefined;
  /** The Hugging Face hub cache (`…/hub`). */
  cacheDir: string;
  signal?: AbortSignal | undefined;
  onProgress?: ((progress: DownloadProgress) => void) | undefined;
}

/** `<cache>/models--org--name`. */
export function repoFolder(repository: Pick<HubRepository, 'repo' | 'cacheDir'>): string {
  return join(repository.cacheDir, getRepoFolderName({ type: 'model', name: repository.repo }));
}

export function snapshotDir(repository: Pick<HubRepository, 'repo' | 'cacheDir'>, commit: string): string {
  return join(repoFolder(repository), 'snapshots', commit);
}

function context(repository: HubRepository, revision: string, file?: string): RequestContext {
  return { repo: repository.repo, revision, endpoint: repository.endpoint, token: repository.token, ...(file ? { file } : {}) };
}

/** The commit a branch, tag or commit names, from the Hub's model info (`/api/models/{repo}/revision/{revision}`). */
export async function resolveCommit(repository: HubRepository, revision: string): Promise<string> {
  const hub = new HubFetch(repository.signal);
  let sha: unknown;
  try {
    const info = await modelInfo({
      name: repository.repo,
      revision,
      additionalFields: ['sha'],
      hubUrl: repository.endpoint,
      fetch: hub.fetch,
      ...(repository.token ? { accessToken: repository.token } : {}),
    });
    sha = info.sha;
  } catch (error) {
    throw hub.toError(error, context(repository, revision));
  }
  if (typeof sha !== 'string' || !COMMIT_HASH.test(sha)) {
    throw new HubResponseError(`${repository.endpoint}/api/models/${repository.repo}/revision/${revision}`, 200, `no commit hash in the answer (sha: ${String(sha)})`);
  }
  if (revision !== sha) await writeRef(repository, revision, sha);
  return sha;
}

/** Records `refs/<revision>` → commit, as the Hugging Face libraries do, for offline use. */
async function writeRef(repository: HubRepository, revision: string, commit: string): Promise<void> {
  const path = join(repoFolder(repository), 'refs', revision);
  if ((await readFile(path, 'utf8').catch(() => null))?.trim() === commit) return;
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, commit);
  await rename(temporary, path);
}

/** The commit the cache last saw `revision` at (a commit hash names itself), or null. */
export async function cachedCommit(repository: Pick<HubRepository, 'repo' | 'cacheDir'>, revision: string): Promise<string | null> {
  if (COMMIT_HASH.test(revision)) return revision;
  const commit = (await readFile(join(repoFolder(repository), 'refs', revision), 'utf8').catch(() => null))?.trim();
  return commit && COMMIT_HASH.test(commit) ? commit : null;
}

/**
 * Whether the cached snapshot holds a convertible checkpoint: config.json and
 * either every shard its index names or model.safetensors. Used offline, when
 * the Hub cannot list the files.
 */
export async function cachedSnapshotComplete(repository: Pick<HubRepository, 'repo' | 'cacheDir'>, commit: string): Promise<boolean> {
  const dir = snapshotDir(repository, commit);
  const present = async (file: string) => (await stat(join(dir, file)).catch(() => null))?.isFile() ?? false;
  if (!(await present('config.json'))) return false;
  if (await present(INDEX_FILE)) {
    const shards = await readIndexShards(join(dir, INDEX_FILE)).catch(() => null);
    if (!shards) return false;
    for (const shard of shards) if (!(await present(shard))) return false;
    return true;
  }
  return present(SINGLE_WEIGHTS);
}

async function readIndexShards(path: string): Promise<string[]> {
  const index = JSON.parse(await readFile(path, 'utf8')) as { weight_map?: unknown };
  if (!index.weight_map || typeof index.weight_map !== 'object') throw new Error('no weight_map');
  return [...new Set(Object.values(index.weight_map as Record<string, unknown>).map(String))];
}

/**
 * Makes `snapshots/<commit>/` of the Hugging Face cache hold what a conversion
 * needs: config, generation config, tokenizer files, and the safetensors
 * weights (the shards the index names, or model.safetensors). The file list
 * comes from the Hub's tree listing at the commit; files already in the cache
 * are not requested again. Returns the snapshot directory.
 */
export async function downloadSnapshot(repository: HubRepository, commit: string): Promise<string> {
  const hub = new HubFetch(repository.signal);
  const files = new Map<string, ListFileEntry>();
  try {
    for await (const entry of listFiles({
      repo: { type: 'model', name: repository.repo },
      revision: commit,
      hubUrl: repository.endpoint,
      fetch: hub.fetch,
      ...(repository.token ? { accessToken: repository.token } : {}),
    })) {
      if (entry.type === 'file' && !entry.path.includes('/')) files.set(entry.path, entry);
    }
  } catch (error) {
    throw hub.toError(error, context(repository, commit));
  }

  const notACheckpoint = (detail: string) => new NotACheckpointError(repository.repo, commit, detail);
  if (!files.has('config.json')) throw notACheckpoint('it has no config.json');
  const dir = snapshotDir(repository, commit);
  for (const name of [...CHECKPOINT_FILES, INDEX_FILE]) {
    const entry = files.get(name);
    if (entry) await ensureFile(repository, commit, entry);
  }
  // Refuse an architecture the converter cannot handle before downloading gigabytes of weights.
  parseModelConfig(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as unknown, join(dir, 'config.json'));

  let weights: string[];
  if (files.has(INDEX_FILE)) {
    weights = await readIndexShards(join(dir, INDEX_FILE)).catch((error: Error) => {
      throw notACheckpoint(`its ${INDEX_FILE} cannot be read (${error.message})`);
    });
    const missing = weights.filter((shard) => !files.has(shard));
    if (missing.length > 0) throw notACheckpoint(`its ${INDEX_FILE} names shards the repository does not have: ${missing.join(', ')}`);
  } else if (files.has(SINGLE_WEIGHTS)) {
    weights = [SINGLE_WEIGHTS];
  } else {
    const other = [...files.keys()].filter((name) => /\.(safetensors|bin|pt|pth|gguf|onnx)$/.test(name));
    throw notACheckpoint(`it has no ${SINGLE_WEIGHTS} or ${INDEX_FILE}${other.length > 0 ? ` (its weight files: ${other.join(', ')})` : ''}`);
  }
  for (const name of weights) await ensureFile(repository, commit, files.get(name)!);
  return dir;
}

function expectedOf(entry: ListFileEntry): ExpectedFile {
  if (entry.lfs) return { size: entry.lfs.size, sha256: entry.lfs.oid };
  return { size: entry.size, ...(entry.oid ? { gitSha1: entry.oid } : {}) };
}

/** `snapshots/<commit>/<file>` → `../../blobs/<etag>`, downloading the blob unless the cache has it. */
async function ensureFile(repository: HubRepository, commit: string, entry: ListFileEntry): Promise<void> {
  const expected = expectedOf(entry);
  const etag = expected.sha256 ?? expected.gitSha1;
  if (!etag) throw new HubResponseError(`${repository.endpoint}/api/models/${repository.repo}/tree/${commit}`, 200, `the listing gives ${entry.path} no oid`);
  const folder = repoFolder(repository);
  const pointer = join(folder, 'snapshots', commit, entry.path);
  if ((await stat(pointer).catch(() => null))?.size === expected.size) return;

  const blob = join(folder, 'blobs', etag);
  const hasBlob = async () => (await stat(blob).catch(() => null))?.size === expected.size;
  if (!(await hasBlob())) {
    const lock = join(repository.cacheDir, '.locks', getRepoFolderName({ type: 'model', name: repository.repo }), `${etag}.skipgen.lock`);
    await mkdir(dirname(blob), { recursive: true });
    await withFileLock(lock, repository.signal, async () => {
      if (await hasBlob()) return;
      await downloadBlob({
        repo: repository.repo,
        file: entry.path,
        url: `${repository.endpoint}/${repository.repo}/resolve/${commit}/${entry.path.split('/').map(encodeURIComponent).join('/')}`,
        commit,
        endpoint: repository.endpoint,
        token: repository.token,
        blobPath: blob,
        expected,
        onProgress: repository.onProgress,
        signal: repository.signal,
      });
    });
  }
  await linkPointer(blob, pointer);
}

/** A relative symbolic link, as the Hugging Face libraries make them; a copy where links are not allowed. */
async function linkPointer(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  await rm(pointer, { force: true });
  try {
    await symlink(relative(dirname(pointer), blob), pointer);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
    await copyFile(blob, pointer);
  }
}
