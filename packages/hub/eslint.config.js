import config from '@skipgen/eslint-config';

export default config;
