export { unified, type UnifiedOptions } from './unified.js';
export { layersForSpeedup, unifiedLayers } from './unified-layers.js';
export { unifiedPolicy } from './unified-policy.js';
