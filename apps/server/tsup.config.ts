import { skipgenTsupConfig } from '@skipgen/tsup-config';

export default skipgenTsupConfig();
