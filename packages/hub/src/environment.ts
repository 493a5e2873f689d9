import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

import { getHFHubCachePath } from '@huggingface/hub';

import { HubSettingsError } from './errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/**
 * Where converted models are kept: `$XDG_CACHE_HOME/skipgen`, or
 * `~/.cache/skipgen` when XDG_CACHE_HOME is unset.
 */
export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return resolve(xdg ? xdg : join(homedir(), '.cache'), 'skipgen');
}

/**
 * The Hugging Face hub cache, as the Python and JavaScript libraries find it:
 * `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
 * else `~/.cache/huggingface/hub`.
 */
export function hubCacheDir(): string {
  return resolve(getHFHubCachePath());
}

/** The Hub's base URL: the option, else `$HF_ENDPOINT`, else https://huggingface.co; without a trailing slash. */
export function hubEndpoint(option: string | undefined): string {
  const endpoint = option ?? (process.env.HF_ENDPOINT || DEFAULT_ENDPOINT);
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new HubSettingsError(`${option === undefined ? 'HF_ENDPOINT' : 'the endpoint option'} '${endpoint}' is not a URL; use e.g. ${DEFAULT_ENDPOINT}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new HubSettingsError(`${option === undefined ? 'HF_ENDPOINT' : 'the endpoint option'} '${endpoint}' is not an http(s) URL; use e.g. ${DEFAULT_ENDPOINT}`);
  }
  return endpoint.replace(/\/+$/, '');
}

/** The access token: the option, else `$HF_TOKEN`; none when empty. */
export function hubToken(option: string | undefined): string | undefined {
  const token = option ?? process.env.HF_TOKEN;
  if (!token) return undefined;
  if (!token.startsWith('hf_')) {
    throw new HubSettingsError(
      `${option === undefined ? 'HF_TOKEN' : 'the token option'} is not a Hugging Face access token (they start with hf_); ` +
        'create one at https://huggingface.co/settings/tokens',
    );
  }
  return token;
}

/** `HF_HUB_OFFLINE=1`: use the cache only, never the network. */
export function hubOffline(): boolean {
  return /^(1|true|yes|on)$/i.test(process.env.HF_HUB_OFFLINE ?? '');
}
