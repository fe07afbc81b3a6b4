const preset = require('../../jest.preset.js');

// The admin console in a real browser (Debian's Chromium through playwright-core) against the real
// API, worker, PostgreSQL and Redis. Builds the console first when its build is missing or stale.
module.exports = {
  ...preset,
  displayName: 'console',
  rootDir: __dirname,
  testTimeout: 180_000,
  globalSetup: '<rootDir>/../support/global-setup.ts',
  globalTeardown: '<rootDir>/../support/global-teardown.ts',
};
