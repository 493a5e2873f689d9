import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

import { MANIFEST_FILE_NAME } from '@skipgen/core';

import { InvalidModelSpecError } from './errors.js';

/** What a model spec names. */
export type ParsedSpec =
  | { kind: 'converted'; dir: string }
  | { kind: 'checkpoint'; dir: string }
  | { kind: 'hub'; repo: string; revision: string | undefined };

/**
 * A Hub model repo id, as the Hub validates it: `org/name`, each part letters,
 * digits, `-`, `_` and `.`, not starting or ending with `-` or `.`, no `--` or
 * `..`, 96 characters at most.
 */
const REPO_PART = /^[A-Za-z0-9_](?:[\w.-]*[A-Za-z0-9_])?$/;
const MAX_REPO_ID = 96;
/** A git ref or commit: no spaces, `..`, `//`, `~^:?*[\`, no leading `/` or `-`, no trailing `/` or `.lock` (and no control characters). */
const REVISION = /^(?![/-])(?!.*\.\.)(?!.*\/\/)(?!.*\/$)(?!.*\.lock$)[^\s~^:?*[\\]+$/;
const hasControlCharacter = (text: string) => [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
/** A full commit hash: revisions that never move. */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

function repoIdProblem(repo: string): string | null {
  const parts = repo.split('/');
  if (parts.length !== 2) return 'a Hub repo id is org/name (one "/")';
  if (repo.length > MAX_REPO_ID) return `a Hub repo id has at most ${MAX_REPO_ID} characters`;
  if (repo.includes('--') || repo.includes('..')) return 'a Hub repo id contains no "--" or ".."';
  if (!parts.every((part) => REPO_PART.test(part))) return 'a Hub repo id has only letters, digits, "-", "_" and "." (not at either end of a part)';
  return null;
}

/** Checks a revision name; returns it. */
export function checkRevision(spec: string, revision: string): string {
  if (!REVISION.test(revision) || hasControlCharacter(revision)) {
    throw new InvalidModelSpecError(spec, `'${revision}' is not a valid revision (a branch, a tag or a commit hash)`);
  }
  return revision;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

const looksLikePath = (spec: string) => /^(?:\.{1,2}(?:[\\/]|$)|[\\/]|~(?:\/|$)|[A-Za-z]:[\\/])/.test(spec) || spec.includes('\\');

/**
 * Decides what `spec` names: an existing directory (converted when it has
 * `skipgen.json`, a checkpoint when it has `config.json`) or else a Hub repo
 * id, `org/name` or `org/name@revision`.
 */
export async function parseSpec(spec: string, revisionOption: string | undefined): Promise<ParsedSpec> {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new InvalidModelSpecError(String(spec), 'give a model directory or a Hugging Face repo id such as HuggingFaceTB/SmolLM2-135M-Instruct');
  }
  const path = resolve(expandHome(spec));
  const found = await stat(path).catch(() => null);
  if (found) {
    if (!found.isDirectory()) {
      throw new InvalidModelSpecError(spec, 'is a file; give the directory of a converted skipgen model or of a Hugging Face checkpoint');
    }
    if (revisionOption !== undefined) {
      throw new InvalidModelSpecError(spec, `is a local directory; a revision ('${revisionOption}') applies to Hub repo ids only`);
    }
    if (await isFile(join(path, MANIFEST_FILE_NAME))) return { kind: 'converted', dir: path };
    if (await isFile(join(path, 'config.json'))) return { kind: 'checkpoint', dir: path };
    throw new InvalidModelSpecError(
      spec,
      `is a directory with neither ${MANIFEST_FILE_NAME} (a converted skipgen model) nor config.json (a Hugging Face checkpoint); give the model's own directory`,
    );
  }
  if (looksLikePath(spec)) throw new InvalidModelSpecError(spec, `no such directory (${path})`);

  const at = spec.indexOf('@');
  const repo = at < 0 ? spec : spec.slice(0, at);
  const inlineRevision = at < 0 ? undefined : spec.slice(at + 1);
  const problem = repoIdProblem(repo);
  if (problem) {
    throw new InvalidModelSpecError(
      spec,
      `is neither an existing directory (${path}) nor a Hugging Face repo id: ${problem}; e.g. HuggingFaceTB/SmolLM2-135M-Instruct or Qwen/Qwen2.5-0.5B-Instruct@main`,
    );
  }
  if (inlineRevision !== undefined && revisionOption !== undefined && inlineRevision !== revisionOption) {
    throw new InvalidModelSpecError(spec, `names revision '${inlineRevision}' but the revision option is '${revisionOption}'; give one`);
  }
  const revision = inlineRevision ?? revisionOption;
  if (revision !== undefined) checkRevision(spec, revision);
  return { kind: 'hub', repo, revision };
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}
