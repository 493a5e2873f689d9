export { resolveModel, type ResolveModelOptions, type ResolvedModel } from './resolve-model.js';
export type { DownloadProgress } from './download.js';
export { defaultCacheDir, hubCacheDir } from './environment.js';
export {
  ChecksumMismatchError,
  HubAuthError,
  HubError,
  HubNetworkError,
  HubResponseError,
  HubSettingsError,
  InvalidModelSpecError,
  NotACheckpointError,
  RepositoryNotFoundError,
  RevisionNotFoundError,
} from './errors.js';
