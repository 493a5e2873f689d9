export { skipDecode, type SkipDecodeOptions } from './skipdecode.js';
export { layerBudget, meanLayerBudget, skipDecodeLayers, type SkipDecodeSchedule } from './skipdecode-schedule.js';
export { skipDecodeMatching } from './skipdecode-matching.js';
export { skipDecodePolicy } from './skipdecode-policy.js';
