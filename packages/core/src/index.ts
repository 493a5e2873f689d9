export { MANIFEST_FILE_NAME, MANIFEST_FORMAT_VERSION, modelManifestSchema, type ModelManifest } from './model/manifest.js';
export { GRAPH_IO } from './model/graph-io.js';
