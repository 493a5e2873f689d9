export {
  exportTransformersJs,
  TRANSFORMERS_JS_GRAPH_FILES,
  type TransformersJsDtype,
  type TransformersJsExportOptions,
  type TransformersJsExportResult,
} from './export.js';
export { TRANSFORMERS_JS_IO } from './decoder-graph.js';
