const preset = require('../../jest.preset.js');

// Deployment files (Helm chart, compose): static checks, no database or Redis.
module.exports = {
  ...preset,
  displayName: 'deploy',
  rootDir: __dirname,
};
