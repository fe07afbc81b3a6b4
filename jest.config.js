// `npm test` runs every project's suite against the real PostgreSQL and Redis.
module.exports = {
  testTimeout: 60_000,
  projects: [
    '<rootDir>/libs/common',
    '<rootDir>/libs/db',
    '<rootDir>/libs/policy',
    '<rootDir>/libs/connectors',
    '<rootDir>/libs/jobs',
    '<rootDir>/libs/vault',
    '<rootDir>/libs/audit',
    '<rootDir>/libs/gate',
    '<rootDir>/libs/oversight',
    '<rootDir>/apps/api',
    '<rootDir>/apps/agent-worker',
    '<rootDir>/test/deploy',
    '<rootDir>/test/api-types',
    '<rootDir>/test/console',
  ],
};
