import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Lock files this process holds. */
const held = new Set<string>();

const POLL_MS = 200;
/** A lock file that still holds no owner after this long was left by a process that died while creating it. */
const UNWRITTEN_LOCK_MS = 10_000;

type Holder = { pid: number; host: string } | 'none' | 'unreadable';

async function readHolder(path: string): Promise<Holder> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw error;
  }
  try {
    const holder = JSON.parse(text) as { pid?: unknown; host?: unknown };
    if (typeof holder.pid === 'number' && typeof holder.host === 'string') return { pid: holder.pid, host: holder.host };
  } catch {
    // fall through
  }
  return 'unreadable';
}

function isRunning(pid: number, host: string, path: string): boolean {
  // A process on another machine sharing the cache cannot be checked; assume it runs.
  if (host !== hostname()) return true;
  // This process's id in a lock it does not hold is a previous run with the same id (containers reuse small ids).
  if (pid === process.pid) return held.has(path);
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates the lock file; false while a live process (this one included) holds it. A dead holder's lock is taken over. */
async function tryAcquire(path: string): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, JSON.stringify({ pid: process.pid, host: hostname() }), { flag: 'wx' });
      held.add(path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readHolder(path);
    if (holder === 'unreadable') {
      // Being written right now, or left empty by a process that died creating it.
      const age = Date.now() - ((await stat(path).catch(() => null))?.mtimeMs ?? Date.now());
      if (age < UNWRITTEN_LOCK_MS) return false;
    } else if (holder !== 'none' && isRunning(holder.pid, holder.host, path)) {
      return false;
    }
    await rm(path, { force: true });
  }
  return false;
}

/**
 * Runs `task` holding the lock file `path` (created exclusively, naming this
 * process), waiting while another live process, or another call in this one,
 * holds it. A lock left by a process that died is taken over.
 */
export async function withFileLock<T>(path: string, signal: AbortSignal | undefined, task: () => Promise<T>): Promise<T> {
  while (!(await tryAcquire(path))) {
    signal?.throwIfAborted();
    await sleep(POLL_MS, undefined, signal ? { signal } : undefined);
  }
  try {
    return await task();
  } finally {
    held.delete(path);
    await rm(path, { force: true });
  }
}

/** Whether a live process holds the lock file `path` now. */
export async function isLocked(path: string): Promise<boolean> {
  const holder = await readHolder(path);
  if (holder === 'none') return false;
  if (holder === 'unreadable') return true;
  return isRunning(holder.pid, holder.host, path);
}
