// One Jest setup for every project. NestJS 12 ships ESM only, so everything
// (our TypeScript and @nestjs/* JavaScript) goes through SWC to CommonJS.
const path = require('node:path');

const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

const libs = path.join(__dirname, 'libs');

module.exports = {
  testEnvironment: 'node',
  // Integration tests on real PostgreSQL and Redis, on 2 cores with every suite at once: a test that
  // fails for being slow would say nothing about behaviour (timing goals live in test/bench).
  testTimeout: 60_000,
  transform: { '^.+\\.(ts|js|mjs)$': swc },
  // @opentelemetry/otlp-exporter-base loads http(s) with import(), which Jest's CommonJS runtime refuses untransformed.
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|@opentelemetry/otlp-exporter-base|file-type|strtok3|token-types|@tokenizer|uint8array-extras|@scure|@noble|@otplib|otplib|oauth4webapi|openid-client|jose)/)'],
  moduleNameMapper: {
    '^@steward/(common|db|policy|connectors|jobs|vault|audit|gate|oversight)$': `${libs}/$1/src/index.ts`,
    '^@steward/(common|db|policy|connectors|jobs|vault|audit|gate|oversight)/(.*)$': `${libs}/$1/src/$2`,
  },
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  testMatch: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/.next/'],
};
