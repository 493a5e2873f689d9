import { skipgenTsupConfig } from '@skipgen/tsup-config';

export default skipgenTsupConfig({ entry: ['src/cli.ts'], dts: false });
