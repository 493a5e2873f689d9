export { earlyExit, type EarlyExitOptions } from './early-exit.js';
export { confidence, type ConfidenceMeasure } from './confidence.js';
export { earlyExitPolicy } from './early-exit-policy.js';
