import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Shared lint rules for every skipgen package: the recommended JavaScript and
 * type-aware TypeScript sets, plus the few rules the project relies on
 * (no floating promises in an engine that is all async, consistent type imports).
 */
export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', '*.config.*'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: true,
      },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
);
