#!/usr/bin/env node
// Proves that the module-boundary rules in eslint.config.mjs fire: lints small in-memory snippets
// as if they lived in each folder (ESLint Node API, lintText + filePath) and checks that forbidden
// imports / process.env reads are reported and allowed ones are not. `npm run lint` runs it first.
import path from 'node:path';
import { ESLint } from 'eslint';

const root = path.resolve(import.meta.dirname, '..');
const BOUNDARY_RULES = new Set([
  'no-restricted-imports',
  'no-restricted-syntax',
  'no-restricted-globals',
  'steward/boundaries',
]);

/** [file (relative to the repo root), code, rule expected to fire or null when allowed] */
const cases = [
  // apps never import apps: by package name...
  ['apps/api/src/x.ts', "import { main } from '@steward/agent-worker';", 'no-restricted-imports'],
  ['apps/api/src/x.ts', "import '@steward/admin-console/lib/api';", 'no-restricted-imports'],
  ['apps/agent-worker/src/x.ts', "export { AppModule } from '@steward/api';", 'no-restricted-imports'],
  ['apps/admin-console/app/x.tsx', "import type { Problem } from '@steward/api/dist/core/problem';", 'no-restricted-imports'],
  // ...or by relative path, whatever the depth
  ['apps/api/src/auth/x.ts', "import { main } from '../../../agent-worker/src/main';", 'steward/boundaries'],
  ['apps/agent-worker/src/x.ts', "export * from '../../api/src/app.module';", 'steward/boundaries'],
  ['apps/admin-console/lib/x.ts', "import { problem } from '../../api/src/core/problem';", 'steward/boundaries'],
  ['apps/api/test/x.e2e-spec.ts', "import { main } from '../../agent-worker/src/main';", 'steward/boundaries'],
  ['apps/api/src/x.ts', "const w = require('../../agent-worker/dist/main.js');", 'steward/boundaries'],
  // libs never import apps
  ['libs/db/src/x.ts', "import { AppModule } from '@steward/api';", 'no-restricted-imports'],
  ['libs/jobs/src/x.ts', "import type { Page } from '@steward/admin-console';", 'no-restricted-imports'],
  ['libs/common/src/x.ts', "import { bootstrap } from '../../../apps/api/src/main';", 'steward/boundaries'],
  ['libs/jobs/src/x.ts', "export async function f() { return import('../../../apps/agent-worker/src/main'); }", 'steward/boundaries'],
  ['libs/connectors/src/x.ts', "export * from '../../../apps/api/src/core/tokens';", 'steward/boundaries'],
  // libs/policy: only @casl/ability and zod, no I/O
  ...[
    'node:fs', 'fs', 'fs/promises', 'node:http', 'http', 'https', 'node:net', 'node:child_process',
    'node:crypto', 'pg', 'typeorm', 'ioredis', 'bullmq', 'express', '@nestjs/common', '@steward/common',
    '@steward/db', '@anthropic-ai/sdk',
  ].map((m) => ['libs/policy/src/x.ts', `import * as m from '${m}';\nexport { m };`, 'no-restricted-imports']),
  ['libs/policy/src/x.ts', "import type { Pool } from 'pg';\nexport type P = Pool;", 'no-restricted-imports'],
  ['libs/policy/src/x.ts', "export { loadConfig } from '../../common/src/config';", 'steward/boundaries'],
  ['libs/policy/src/x.ts', "export const fs = require('node:fs');", 'no-restricted-syntax'],
  ['libs/policy/src/x.ts', "export const load = () => import('node:fs');", 'no-restricted-syntax'],
  ['libs/policy/src/x.ts', "export const get = () => fetch('http://127.0.0.1/');", 'no-restricted-globals'],
  ['libs/policy/src/x.ts', 'export const argv = process.argv;', 'no-restricted-globals'],
  // only libs/common reads process.env
  ['apps/api/src/x.ts', 'export const port = process.env.PORT;', 'no-restricted-syntax'],
  ['libs/db/src/x.ts', "export const url = process.env['DATABASE_URL'];", 'no-restricted-syntax'],
  ['apps/agent-worker/src/x.ts', 'const { env } = process;\nexport const e = env;', 'no-restricted-syntax'],
  ['libs/jobs/src/x.ts', "import { env } from 'node:process';\nexport const e = env;", 'no-restricted-syntax'],
  ['apps/admin-console/lib/x.ts', 'export const u = globalThis.process.env.NEXT_PUBLIC_API;', 'no-restricted-syntax'],
  ['libs/policy/src/x.ts', 'export const e = process.env.X;', 'no-restricted-syntax'],

  // allowed
  [
    'apps/api/src/auth/x.ts',
    "import { loadConfig } from '@steward/common';\nimport { User } from '@steward/db';\n" +
      "import { buildAbility } from '@steward/policy';\nimport { QueueName } from '@steward/jobs';\n" +
      "import { AppError } from '../core/problem';\nimport { randomUUID } from 'node:crypto';\n" +
      'export { loadConfig, User, buildAbility, QueueName, AppError, randomUUID };',
    null,
  ],
  ['apps/agent-worker/src/x.ts', "export { startWorkerRuntime } from '@steward/jobs';\nexport * from './main';", null],
  ['apps/admin-console/app/login/x.tsx', "import { login } from '@/lib/api';\nimport { getSession } from '../../lib/api';\nimport { useState } from 'react';\nexport { login, getSession, useState };", null],
  ['libs/db/src/x.ts', "import { Pool } from 'pg';\nimport { loadConfig } from '@steward/common';\nexport { Pool, loadConfig };", null],
  [
    'libs/policy/src/x.ts',
    "import { createMongoAbility, type MongoAbility } from '@casl/ability';\nimport { z } from 'zod';\n" +
      "import * as mini from 'zod/mini';\nimport { buildAbility } from './rbac';\n" +
      'export type A = MongoAbility;\nexport { createMongoAbility, z, mini, buildAbility };',
    null,
  ],
  ['libs/policy/src/rbac.spec.ts', "import assert from 'node:assert';\nimport { buildAbility } from './rbac';\nexport { assert, buildAbility };", null],
  ['libs/common/src/x.ts', 'export const e = process.env.STEWARD_X;\nexport const { env } = process;', null],
  ['apps/api/test/x.e2e-spec.ts', "import { testDb } from '../../../test/support/test-db';\nexport const u = process.env.DATABASE_URL;\nexport { testDb };", null],
  ['apps/api/src/x.spec.ts', 'export const u = process.env.REDIS_URL;', null],
  ['libs/db/src/x.int-spec.ts', 'export const u = process.env.DATABASE_URL;', null],
  ['test/support/x.ts', 'export const u = process.env.DATABASE_URL;', null],
  ['apps/admin-console/next.config.ts', 'export const u = process.env.STEWARD_API_URL;', null],
  ['apps/admin-console/lib/server-env.ts', 'export const u = process.env.STEWARD_API_URL;', null],
  ['apps/admin-console/lib/client.ts', 'export const u = process.env.STEWARD_API_URL;', 'no-restricted-syntax'],
  ['libs/policy/jest.config.js', "const preset = require('../../jest.preset.js');\nmodule.exports = { ...preset, x: process.env.X };", null],
  ['scripts/x.mjs', 'export const u = process.env.DATABASE_URL;', null],
];

const eslint = new ESLint({ cwd: root });
const failures = [];
for (const [file, code, expected] of cases) {
  const filePath = path.join(root, file);
  if (await eslint.isPathIgnored(filePath)) {
    failures.push(`${file}: the path is ignored by the ESLint config`);
    continue;
  }
  const [result] = await eslint.lintText(code, { filePath });
  const fatal = result.messages.filter((m) => m.fatal || m.ruleId === null);
  const hits = result.messages.filter((m) => BOUNDARY_RULES.has(m.ruleId));
  const show = (ms) => ms.map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`).join(' | ') || 'nothing';
  if (fatal.length) failures.push(`${file}: could not lint the snippet: ${show(fatal)}\n    ${code}`);
  else if (expected && !hits.some((m) => m.ruleId === expected))
    failures.push(`${file}: expected ${expected}, got ${show(hits)}\n    ${code}`);
  else if (!expected && hits.length) failures.push(`${file}: expected no boundary error, got ${show(hits)}\n    ${code}`);
}

const forbidden = cases.filter((c) => c[2]).length;
if (failures.length) {
  console.error(`check-boundaries: ${failures.length} of ${cases.length} cases FAILED`);
  for (const f of failures) console.error(`  - ${f}`);
  process.exit(1);
}
console.log(
  `check-boundaries: ${cases.length} cases passed (${forbidden} forbidden imports/env reads reported, ` +
    `${cases.length - forbidden} allowed ones not)`,
);
