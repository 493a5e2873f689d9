import { skipgenTsupConfig } from '@skipgen/tsup-config';

// transformers.js (a development dependency, for `bench --peer transformers.js`) is loaded at run time, never bundled.
export default skipgenTsupConfig({ entry: ['src/cli.ts'], dts: false, external: ['@huggingface/transformers'] });
