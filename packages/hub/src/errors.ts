import { SkipgenError } from '@skipgen/core';

/**
 * Every failure of `resolveModel` that is not the converter's own
 * (`ConvertError`) is one of these classes. Each message says what is wrong
 * and what to do. They are `SkipgenError`s, so one `instanceof` catches every
 * skipgen failure.
 */
export class HubError extends SkipgenError {
  override readonly name: string = 'HubError';
}

/** The spec is neither an existing model or checkpoint directory nor a valid Hub repo id (`org/name[@revision]`). */
export class InvalidModelSpecError extends HubError {
  override readonly name = 'InvalidModelSpecError';
  constructor(readonly spec: string, detail: string) {
    super(`'${spec}': ${detail}`);
  }
}

/** The Hub has no such repository (HTTP 404), or it is private and the request had no token. */
export class RepositoryNotFoundError extends HubError {
  override readonly name = 'RepositoryNotFoundError';
  constructor(readonly repo: string, readonly endpoint: string) {
    super(
      `repository '${repo}' was not found on ${endpoint}. Check the id (org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct); ` +
        `if it is a local directory, check the path; if the repository is private or gated, set HF_TOKEN to a token that can read it`,
    );
  }
}

/** The repository exists but the branch, tag or commit does not (HTTP 404). */
export class RevisionNotFoundError extends HubError {
  override readonly name = 'RevisionNotFoundError';
  constructor(readonly repo: string, readonly revision: string, readonly endpoint: string) {
    super(
      `repository '${repo}' on ${endpoint} has no revision '${revision}'. Use a branch, a tag or a full commit hash ` +
        `(the repository's "Files and versions" page lists them), or leave the revision out for 'main'`,
    );
  }
}

/** The Hub refused the request (HTTP 401 or 403): no token, a token without access, or a gated repository. */
export class HubAuthError extends HubError {
  override readonly name = 'HubAuthError';
  constructor(readonly repo: string, readonly status: number, readonly hadToken: boolean, detail?: string) {
    const what = hadToken
      ? status === 403
        ? `the token in HF_TOKEN (or the token option) is not allowed to read it; if the repository is gated, accept its conditions on its page first, ` +
          `and use a token with read access`
        : 'the token in HF_TOKEN (or the token option) was rejected; set HF_TOKEN to a valid read token (https://huggingface.co/settings/tokens)'
      : 'it is private or gated (or does not exist); set HF_TOKEN to a read token of an account with access (https://huggingface.co/settings/tokens)';
    super(`repository '${repo}': access denied (HTTP ${status}${detail ? `: ${detail}` : ''}): ${what}`);
  }
}

/** The Hub could not be reached, or the connection kept failing after retries. */
export class HubNetworkError extends HubError {
  override readonly name = 'HubNetworkError';
  constructor(readonly endpoint: string, detail: string, options?: { cause?: unknown }) {
    super(
      `could not reach ${endpoint}: ${detail}. Check the network connection (or HF_ENDPOINT, if you use a mirror); ` +
        `a model downloaded before is used offline from the cache, and a partly downloaded file resumes on the next run`,
      options,
    );
  }
}

/** The Hub answered with an unexpected status or response. */
export class HubResponseError extends HubError {
  override readonly name = 'HubResponseError';
  constructor(readonly url: string, readonly status: number | null, detail: string) {
    super(`${url}: ${status === null ? '' : `HTTP ${status}: `}${detail}. Try again later; if it persists, the repository or mirror may be broken`);
  }
}

/** A downloaded file's content does not match the checksum the Hub published for it; the file was deleted. */
export class ChecksumMismatchError extends HubError {
  override readonly name = 'ChecksumMismatchError';
  constructor(readonly repo: string, readonly file: string, readonly expected: string, readonly actual: string, readonly algorithm: 'sha256' | 'git-sha1' | 'size') {
    super(
      `${repo}/${file}: the download does not match the Hub's ${algorithm === 'size' ? 'size' : `${algorithm} checksum`} ` +
        `(expected ${expected}, got ${actual}); the file was deleted. Run again to download it afresh; ` +
        `if it fails again, a proxy or mirror (HF_ENDPOINT) is altering the file`,
    );
  }
}

/** The repository (at that revision) has no checkpoint skipgen can convert: no config.json, or no safetensors weights. */
export class NotACheckpointError extends HubError {
  override readonly name = 'NotACheckpointError';
  constructor(readonly repo: string, readonly commit: string, detail: string) {
    super(
      `repository '${repo}' at ${commit.slice(0, 12)}: ${detail}. skipgen converts Hugging Face transformers checkpoints ` +
        `(config.json plus model.safetensors or sharded safetensors with model.safetensors.index.json); pick a repository that has them`,
    );
  }
}

/** HF_ENDPOINT or HF_TOKEN (or the endpoint / token option) has an unusable value. */
export class HubSettingsError extends HubError {
  override readonly name = 'HubSettingsError';
}
