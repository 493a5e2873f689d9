import { skipgenVitestConfig } from '@skipgen/vitest-config';

// One test file at a time: the load test measures latency, and every file starts servers on a 2-core machine.
export default skipgenVitestConfig({ fileParallelism: false });
