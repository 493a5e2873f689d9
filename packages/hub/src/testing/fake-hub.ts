import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** A file of a commit. LFS files are served the Hub's way: a redirect to a content-addressed CDN URL. */
export interface FakeHubFile {
  path: string;
  content: Buffer;
  lfs: boolean;
}

export interface FakeHubRepo {
  /** `org/name`. */
  id: string;
  /** Every request must carry `Authorization: Bearer <the hub's token>`. */
  private?: boolean;
  /** Commits by hash. */
  commits: Map<string, FakeHubFile[]>;
  /** Branches and tags → commit hash. */
  refs: Map<string, string>;
}

/** A request the fake Hub received. */
export interface FakeHubRequest {
  method: string;
  /** Path and query, decoded as received. */
  url: string;
  range: string | undefined;
  authorization: string | undefined;
  /** What it served: `api`, `resolve` (a repository file) or `cdn` (an LFS object). */
  kind: 'api' | 'resolve' | 'cdn' | 'other';
  status: number;
}

export interface FakeHubOptions {
  /** The token private repositories accept. Default `hf_fake_token`. */
  token?: string;
  /** Tree listings return this many entries a page (with a `Link: rel="next"` header). Default 1000. */
  pageSize?: number;
}

const gitBlobSha1 = (content: Buffer | string) => {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
};
const sha256 = (content: Buffer) => createHash('sha256').update(content).digest('hex');
const lfsPointer = (content: Buffer) => `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(content)}\nsize ${content.length}\n`;

/** Reads a checkpoint directory into the files of a commit; `*.safetensors` are LFS files, as on the Hub. */
export async function filesOf(dir: string, extra: Record<string, string | Buffer> = {}): Promise<FakeHubFile[]> {
  const files: FakeHubFile[] = [];
  for (const name of (await readdir(dir)).sort()) {
    files.push({ path: name, content: await readFile(join(dir, name)), lfs: name.endsWith('.safetensors') });
  }
  for (const [path, content] of Object.entries(extra)) {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    files.push({ path, content: bytes, lfs: path.endsWith('.safetensors') || path.endsWith('.bin') || path.endsWith('.pth') });
  }
  return files;
}

/** A commit hash for a list of files (deterministic, like git's). */
export function commitOf(files: readonly FakeHubFile[], salt = ''): string {
  const hash = createHash('sha1').update(salt);
  for (const file of files) hash.update(file.path).update(file.content);
  return hash.digest('hex');
}

/**
 * A Hugging Face Hub on 127.0.0.1 serving the endpoints `@huggingface/hub`
 * and `resolveModel` call:
 *
 * - `GET /api/models/{org}/{name}/revision/{revision}`: model info with `sha`;
 * - `GET /api/models/{org}/{name}/tree/{revision}[/{path}]`: the file listing
 *   (`oid`, `size`, `lfs: { oid, size, pointerSize }`), paginated with `Link`;
 * - `GET|HEAD /{org}/{name}/resolve/{revision}/{path}`: a regular file with
 *   `ETag` (its git oid), `X-Repo-Commit` and Range support, or for an LFS file
 *   a 302 to `/cdn/{sha256}` with `X-Linked-Etag`, `X-Linked-Size`, `X-Repo-Commit`;
 * - `GET /cdn/{sha256}`: the LFS object, with Range support.
 *
 * Errors carry the Hub's `X-Error-Code` (RepoNotFound, RevisionNotFound,
 * EntryNotFound) and a JSON `{ error }`; a private repository answers 401
 * without the right bearer token. Tests can cut a file's next response
 * halfway through (the connection is destroyed) or serve corrupted bytes.
 */
export class FakeHub {
  readonly requests: FakeHubRequest[] = [];
  private readonly repos = new Map<string, FakeHubRepo>();
  private readonly objects = new Map<string, Buffer>();
  private readonly cuts = new Map<string, number>();
  private readonly corrupted = new Map<string, Buffer>();
  private readonly token: string;
  private readonly pageSize: number;

  private constructor(private readonly server: Server, options: FakeHubOptions) {
    this.token = options.token ?? 'hf_fake_token';
    this.pageSize = options.pageSize ?? 1000;
  }

  static async start(options: FakeHubOptions = {}): Promise<FakeHub> {
    const server = createServer();
    const hub = new FakeHub(server, options);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => hub.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return hub;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Adds (or replaces) a repository; `refs` maps branch and tag names to commit hashes. */
  addRepo(id: string, commits: Record<string, FakeHubFile[]>, refs: Record<string, string>, options: { private?: boolean } = {}): void {
    const repo: FakeHubRepo = { id, private: options.private ?? false, commits: new Map(Object.entries(commits)), refs: new Map(Object.entries(refs)) };
    for (const files of repo.commits.values()) for (const file of files) if (file.lfs) this.objects.set(sha256(file.content), file.content);
    this.repos.set(id, repo);
  }

  /** The next `times` responses carrying `path`'s bytes send half of what they promise, then drop the connection. */
  cut(path: string, times = 1): void {
    this.cuts.set(path, times);
  }

  /** Serves `content` instead of `path`'s real bytes (same headers, so the checksum no longer matches). */
  corrupt(path: string, content: Buffer): void {
    this.corrupted.set(path, content);
  }

  /** Serves `path`'s real bytes again. */
  restore(path: string): void {
    this.corrupted.delete(path);
    this.cuts.delete(path);
  }

  /** Requests for file contents (`resolve` and `cdn`). */
  fileRequests(): FakeHubRequest[] {
    return this.requests.filter((request) => request.kind === 'resolve' || request.kind === 'cdn');
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: FakeHubRequest = {
      method: req.method ?? 'GET',
      url: decodeURIComponent(url.pathname) + url.search,
      range: req.headers.range,
      authorization: req.headers.authorization,
      kind: 'other',
      status: 0,
    };
    this.requests.push(record);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', ...headers });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const fail = (status: number, code: string, message: string) => send(status, { error: message }, { 'x-error-code': code, 'x-error-message': message });

    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (segments[0] === 'cdn' && segments.length === 2) {
      record.kind = 'cdn';
      const content = this.objects.get(segments[1]!);
      if (!content) return fail(404, 'EntryNotFound', 'Object not found');
      return this.serveBytes(req, res, record, url.searchParams.get('path') ?? segments[1]!, content, { etag: `"${segments[1]}"` });
    }

    const api = segments[0] === 'api' && segments[1] === 'models';
    const [org, name, action, ...rest] = api ? segments.slice(2) : segments;
    if (!org || !name || !action) return fail(404, 'RepoNotFound', 'Not found');
    record.kind = api ? 'api' : action === 'resolve' ? 'resolve' : 'other';
    const repo = this.repos.get(`${org}/${name}`);
    if (!repo) return fail(404, 'RepoNotFound', 'Repository not found');
    if (repo.private) {
      // The Hub answers a private repository without the right token as if it did not exist, with 401.
      if (!req.headers.authorization) return fail(401, 'RepoNotFound', 'Repository not found');
      if (req.headers.authorization !== `Bearer ${this.token}`) return fail(401, 'RepoNotFound', 'Invalid credentials in Authorization header');
    }
    const revisionAndPath = rest.join('/');
    const { commit, path } = this.splitRevision(repo, revisionAndPath, api && action === 'revision');
    if (!commit) return fail(404, 'RevisionNotFound', `Invalid rev id: ${rest[0] ?? ''}`);
    const files = repo.commits.get(commit)!;

    if (api && action === 'revision') {
      return send(200, {
        _id: `id-${repo.id}`,
        id: repo.id,
        modelId: repo.id,
        sha: commit,
        private: repo.private,
        gated: false,
        disabled: false,
        downloads: 0,
        likes: 0,
        lastModified: '2025-01-01T00:00:00.000Z',
        library_name: 'transformers',
        pipeline_tag: 'text-generation',
        tags: [],
        siblings: files.map((file) => ({ rfilename: file.path })),
      });
    }
    if (api && action === 'tree') {
      const recursive = url.searchParams.get('recursive') === 'true';
      const prefix = path ? `${path}/` : '';
      const entries = new Map<string, Record<string, unknown>>();
      for (const file of files) {
        if (!file.path.startsWith(prefix)) continue;
        const inner = file.path.slice(prefix.length);
        const slash = inner.indexOf('/');
        if (slash >= 0 && !recursive) {
          const folder = prefix + inner.slice(0, slash);
          entries.set(folder, { type: 'directory', oid: gitBlobSha1(folder), size: 0, path: folder });
          continue;
        }
        entries.set(
          file.path,
          file.lfs
            ? {
                type: 'file',
                oid: gitBlobSha1(lfsPointer(file.content)),
                size: file.content.length,
                path: file.path,
                lfs: { oid: sha256(file.content), size: file.content.length, pointerSize: lfsPointer(file.content).length },
              }
            : { type: 'file', oid: gitBlobSha1(file.content), size: file.content.length, path: file.path },
        );
      }
      const all = [...entries.values()];
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = all.slice(cursor, cursor + this.pageSize);
      const headers: Record<string, string> = {};
      if (cursor + this.pageSize < all.length) {
        const next = new URL(url.pathname + url.search, this.endpoint);
        next.searchParams.set('cursor', String(cursor + this.pageSize));
        headers.link = `<${next.href}>; rel="next"`;
      }
      return send(200, page, headers);
    }
    if (!api && action === 'resolve' && (req.method === 'GET' || req.method === 'HEAD')) {
      const file = files.find((candidate) => candidate.path === path);
      if (!file) return fail(404, 'EntryNotFound', `Entry not found: ${path}`);
      if (file.lfs) {
        const oid = sha256(file.content);
        record.status = 302;
        res.writeHead(302, {
          location: `/cdn/${oid}?path=${encodeURIComponent(file.path)}`,
          'x-repo-commit': commit,
          etag: `"${oid}"`,
          'x-linked-etag': `"${oid}"`,
          'x-linked-size': String(file.content.length),
        });
        return void res.end();
      }
      return this.serveBytes(req, res, record, file.path, file.content, { etag: `"${gitBlobSha1(file.content)}"`, 'x-repo-commit': commit });
    }
    return fail(404, 'EntryNotFound', 'Not found');
  }

  /** A branch, tag, `refs/…` name or commit hash at the start of `text`, and the path after it. */
  private splitRevision(repo: FakeHubRepo, text: string, whole: boolean): { commit: string | undefined; path: string } {
    const lookup = (revision: string) => (repo.commits.has(revision) ? revision : repo.refs.get(revision));
    if (whole) return { commit: lookup(text === 'HEAD' ? 'main' : text), path: '' };
    const parts = text.split('/');
    for (let n = parts.length; n >= 1; n--) {
      const commit = lookup(parts.slice(0, n).join('/'));
      if (commit) return { commit, path: parts.slice(n).join('/') };
    }
    return { commit: undefined, path: '' };
  }

  private serveBytes(req: IncomingMessage, res: ServerResponse, record: FakeHubRequest, path: string, real: Buffer, headers: Record<string, string>): void {
    const content = this.corrupted.get(path) ?? real;
    const size = content.length;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size || start > end) {
        record.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        return void res.end();
      }
      status = 206;
    }
    const body = content.subarray(start, end + 1);
    record.status = status;
    res.writeHead(status, {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      'accept-ranges': 'bytes',
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      ...headers,
    });
    if (req.method === 'HEAD') return void res.end();
    const cuts = this.cuts.get(path) ?? 0;
    if (cuts > 0 && body.length > 1) {
      this.cuts.set(path, cuts - 1);
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => {
        // Give the client the first half, then drop the connection mid-body.
        setTimeout(() => req.socket.destroy(), 20);
      });
      return;
    }
    res.end(body);
  }
}
