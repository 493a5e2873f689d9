export { kvCache, type KvCacheOptions } from './kv-cache.js';
export { SlotKvCache } from './slot-kv-cache.js';
