import config from '@skipgen/eslint-config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default [
  ...config,
  // The playground is plain browser JavaScript outside the TypeScript project: linted without type information.
  {
    files: ['public/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.browser, sourceType: 'module' },
  },
];
