import { skipgenVitestConfig } from '@skipgen/vitest-config';

export default skipgenVitestConfig();
