import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { ChecksumMismatchError, HubNetworkError, HubResponseError } from './errors.js';
import { httpFailure, isAbort, networkDetail } from './http.js';

/** Progress of one file's download. */
export interface DownloadProgress {
  /** The file's path in the repository, e.g. `model.safetensors`. */
  file: string;
  /** Bytes of the file on disk so far, including what an earlier, interrupted download left. */
  bytes: number;
  /** The file's size. */
  totalBytes: number;
}

/** What the Hub's file listing says a file must be. */
export interface ExpectedFile {
  size: number;
  /** sha256 of an LFS file (its LFS oid). */
  sha256?: string;
  /** git blob sha1 of a regular file (its oid). */
  gitSha1?: string;
}

export interface BlobDownload {
  repo: string;
  /** The file's path in the repository. */
  file: string;
  /** `{endpoint}/{repo}/resolve/{commit}/{file}`. */
  url: string;
  commit: string;
  endpoint: string;
  token: string | undefined;
  /** Where the complete, verified file goes; `<blobPath>.incomplete` holds it meanwhile. */
  blobPath: string;
  expected: ExpectedFile;
  onProgress?: ((progress: DownloadProgress) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** Tries of one file before giving up; each resumes where the previous one stopped. */
const ATTEMPTS = 5;
const FIRST_BACKOFF_MS = 250;
const MAX_REDIRECTS = 10;

/** A failure worth another try: the connection broke or the server had a passing problem. */
class TransientFailure extends Error {}

/**
 * Downloads one file of a repository into `blobPath`, resuming a partial
 * download left in `<blobPath>.incomplete` with an HTTP Range request, retrying
 * a broken connection (again from where it stopped), and verifying the size
 * and checksum (sha256 for LFS files, git's blob sha1 for others) before the
 * file is moved into place. A mismatch deletes the partial file and throws
 * `ChecksumMismatchError`; a connection that keeps failing throws
 * `HubNetworkError` and leaves the partial file for the next run.
 */
export async function downloadBlob(download: BlobDownload): Promise<void> {
  const partial = `${download.blobPath}.incomplete`;
  let lastFailure: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    download.signal?.throwIfAborted();
    if (attempt > 0) await sleep(FIRST_BACKOFF_MS * 2 ** (attempt - 1), undefined, download.signal ? { signal: download.signal } : undefined);
    try {
      const hash = await fetchInto(download, partial);
      await verify(download, partial, hash);
      await rename(partial, download.blobPath);
      return;
    } catch (error) {
      if (!(error instanceof TransientFailure)) throw error;
      lastFailure = error;
    }
  }
  throw new HubNetworkError(
    download.endpoint,
    `downloading ${download.repo}/${download.file} failed ${ATTEMPTS} times (last: ${(lastFailure as Error).message})`,
    { cause: lastFailure },
  );
}

function newHash(expected: ExpectedFile): { hash: Hash; algorithm: 'sha256' | 'git-sha1' } | null {
  if (expected.sha256) return { hash: createHash('sha256'), algorithm: 'sha256' };
  if (expected.gitSha1) {
    const hash = createHash('sha1');
    hash.update(`blob ${expected.size}\0`);
    return { hash, algorithm: 'git-sha1' };
  }
  return null;
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/**
 * Brings `partial` to the file's full size: appends from its current size
 * with a Range request, or starts over when the server sends the whole file.
 * Returns the running hash of the whole file.
 */
async function fetchInto(download: BlobDownload, partial: string): Promise<ReturnType<typeof newHash>> {
  const { expected } = download;
  let offset = (await stat(partial).catch(() => null))?.size ?? 0;
  if (offset > expected.size) {
    await rm(partial, { force: true });
    offset = 0;
  }
  if (offset === expected.size) {
    const hashing = newHash(expected);
    if (hashing) await hashFile(partial, hashing.hash);
    return hashing;
  }

  const response = await request(download, offset > 0 ? `bytes=${offset}-` : undefined);
  let start = 0;
  if (response.status === 206) {
    start = Number(/^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(response.headers.get('content-range') ?? '')?.[1] ?? NaN);
    if (start !== offset) {
      await response.body?.cancel();
      await rm(partial, { force: true });
      throw new TransientFailure(`asked for bytes from ${offset}, got Content-Range '${response.headers.get('content-range')}'`);
    }
  } else if (response.status === 416) {
    // The partial file does not fit the file on the server: start over.
    await response.body?.cancel();
    await rm(partial, { force: true });
    throw new TransientFailure('the server refused to resume (HTTP 416)');
  }

  const hashing = newHash(expected);
  if (hashing && start > 0) await hashFile(partial, hashing.hash);
  const handle = await open(partial, start > 0 ? 'a' : 'w');
  let bytes = start;
  download.onProgress?.({ file: download.file, bytes, totalBytes: expected.size });
  try {
    if (!response.body) throw new TransientFailure('the response has no body');
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        if (bytes + chunk.byteLength > expected.size) {
          throw new ChecksumMismatchError(download.repo, download.file, `${expected.size} bytes`, `more than ${expected.size} bytes`, 'size');
        }
        await handle.write(chunk);
        hashing?.hash.update(chunk);
        bytes += chunk.byteLength;
        download.onProgress?.({ file: download.file, bytes, totalBytes: expected.size });
      }
    } catch (error) {
      if (error instanceof ChecksumMismatchError) {
        await handle.close();
        await rm(partial, { force: true });
        throw error;
      }
      if (isAbort(error, download.signal)) throw error;
      if (error instanceof TransientFailure) throw error;
      throw new TransientFailure(`the connection broke after ${bytes} of ${expected.size} bytes (${networkDetail(error)})`);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  if (bytes < expected.size) throw new TransientFailure(`the connection closed after ${bytes} of ${expected.size} bytes`);
  return hashing;
}

async function verify(download: BlobDownload, partial: string, hashing: ReturnType<typeof newHash>): Promise<void> {
  const { expected } = download;
  const size = (await stat(partial)).size;
  if (size !== expected.size) {
    await rm(partial, { force: true });
    throw new ChecksumMismatchError(download.repo, download.file, `${expected.size} bytes`, `${size} bytes`, 'size');
  }
  if (!hashing) return;
  const actual = hashing.hash.digest('hex');
  const wanted = (hashing.algorithm === 'sha256' ? expected.sha256 : expected.gitSha1)!;
  if (actual !== wanted) {
    await rm(partial, { force: true });
    throw new ChecksumMismatchError(download.repo, download.file, wanted, actual, hashing.algorithm);
  }
}

/**
 * GETs the file, following redirects by hand: the first answer (the Hub's)
 * carries the file's identity in X-Linked-Etag / X-Repo-Commit, which a
 * redirect to a CDN would hide, and the token goes only to the Hub's origin.
 */
async function request(download: BlobDownload, range: string | undefined): Promise<Response> {
  let url = new URL(download.url);
  const origin = url.origin;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (range) headers.range = range;
    if (download.token && url.origin === origin) headers.authorization = `Bearer ${download.token}`;
    let response: Response;
    try {
      response = await fetch(url, { headers, redirect: 'manual', ...(download.signal ? { signal: download.signal } : {}) });
    } catch (error) {
      if (isAbort(error, download.signal)) throw error;
      throw new TransientFailure(networkDetail(error));
    }
    if (hop === 0) checkIdentity(download, response);
    if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
      await response.body?.cancel();
      url = new URL(response.headers.get('location')!, url);
      continue;
    }
    if (response.ok || response.status === 416) return response;
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      await response.body?.cancel();
      throw new TransientFailure(`HTTP ${response.status} from ${url.origin}`);
    }
    throw await httpFailure(response, { repo: download.repo, revision: download.commit, endpoint: download.endpoint, token: download.token, file: download.file });
  }
  throw new HubResponseError(download.url, null, `more than ${MAX_REDIRECTS} redirects`);
}

/** The Hub's headers must name the file and commit the listing promised. */
function checkIdentity(download: BlobDownload, response: Response): void {
  if (!response.ok && !(response.status >= 300 && response.status < 400)) return;
  const commit = response.headers.get('x-repo-commit');
  if (commit && commit !== download.commit) {
    throw new HubResponseError(download.url, response.status, `serves commit ${commit}, not the requested ${download.commit}`);
  }
  const linked = normalizeEtag(response.headers.get('x-linked-etag'));
  if (download.expected.sha256 && linked && linked !== download.expected.sha256) {
    throw new HubResponseError(download.url, response.status, `X-Linked-Etag ${linked} differs from the sha256 ${download.expected.sha256} of the file listing`);
  }
  const linkedSize = response.headers.get('x-linked-size');
  if (download.expected.sha256 && linkedSize && Number(linkedSize) !== download.expected.size) {
    throw new HubResponseError(download.url, response.status, `X-Linked-Size ${linkedSize} differs from the size ${download.expected.size} of the file listing`);
  }
}

/** `W/"abc"` → `abc`. */
function normalizeEtag(etag: string | null): string | null {
  return etag === null ? null : etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}
