/** Tests run as native ESM (the package is "type": "module"; chalk 5 is ESM-only),
 *  so jest needs NODE_OPTIONS=--experimental-vm-modules, which `npm test` sets. */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  setupFilesAfterEnv: ['<rootDir>/__tests__/helpers/state-home.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
  testTimeout: 30000,
  testResultsProcessor: '<rootDir>/jest-results.cjs',
};
