const preset = require('../../jest.preset.js');

module.exports = {
  ...preset,
  displayName: 'oversight',
  rootDir: __dirname,
  globalSetup: '<rootDir>/../../test/support/global-setup.ts',
  globalTeardown: '<rootDir>/../../test/support/global-teardown.ts',
};
