const preset = require('../../jest.preset.js');

// No database: connectors are tested against loopback fakes of the real services.
module.exports = {
  ...preset,
  displayName: 'connectors',
  rootDir: __dirname,
};
