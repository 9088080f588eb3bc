/** @type {import('jest').Config} */
module.exports = {
  // Node's environment plus the index audit of every query the service sends (docs/indexes.md).
  testEnvironment: '<rootDir>/test/support/indexAudit/environment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
    // jose is ESM-only; Node >= 20.19 requires it natively, jest's module system does not.
    '^.+\\.js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  // One real MongoDB-wire server for the whole run; each test file uses its own database.
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 30000,
};
