const preset = require('../../jest.preset.js');

// The generated API client types (apps/cli/src/api-types.ts, apps/admin-console/lib/api-types.ts)
// against the API's current OpenAPI document: no database or Redis.
module.exports = {
  ...preset,
  displayName: 'api-types',
  rootDir: __dirname,
};
