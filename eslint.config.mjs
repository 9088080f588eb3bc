// @ts-check
import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier/flat';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['src/gen/', 'dist/', 'coverage/', 'bench/results/', 'tools/'] },
  eslint.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Same convention as tsc's noUnusedParameters: a leading underscore marks "unused on purpose".
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // Numbers print unambiguously; the rule still catches undefined, null, objects and unions with them.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowAny: false, allowBoolean: false, allowNullish: false, allowRegExp: false, allowNever: false },
      ],
      // `(err) => reject(err)` and `() => resolve()` are the idiomatic callback shape; statement positions are still checked.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  {
    // Benchmarks are harnesses like the tests: they set up what they then use, and fail loudly if it is missing.
    files: ['test/**', 'bench/**'],
    rules: {
      // A test dereferences what it has just asserted or set up; if it is missing the test fails, which is the point.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `afterAll(() => server?.stop())` must survive a beforeAll that failed before assigning; the types cannot say so.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // In-memory doubles of async ports stay `async` so that they fail by rejecting, as the real ones do.
      '@typescript-eslint/require-await': 'off',
      // Jest's asymmetric matchers (expect.any, expect.stringContaining) are typed `any`; using an `any` is still caught.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  {
    files: ['bench/**'],
    rules: {
      // Benchmarks read what other programs print (explain plans of two database engines) as plain JSON.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/restrict-plus-operands': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node, sourceType: 'commonjs' },
    // CommonJS files (preloads, config) load modules the only way CommonJS can.
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
