import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { createLogger, parseConfig } from '@steward/common';
import { createDataSource } from '@steward/db';
import { createApp } from '../create-app';
import { ApiMetrics } from '../core/metrics';
import { OpenApiService } from '../core/openapi';

/**
 * Writes the OpenAPI document the API serves at /openapi.json, without a database or Redis:
 *   node apps/api/dist/cli/openapi.js [out.json]    (stdout when no path is given)
 * The app module is built exactly as main.ts builds it, around a DataSource that is never
 * initialized and a Redis client that never connects (no query or command is ever sent).
 */

// NOT SECRETS. Placeholders that only satisfy the config schema's shape so the module can be
// built; this process never signs, hashes or encrypts anything. Never use them anywhere else.
const PLACEHOLDER_ENV = {
  NODE_ENV: 'production',
  LOG_LEVEL: 'silent',
  DATABASE_URL: 'postgres://openapi-cli.invalid/never-connected',
  REDIS_URL: 'redis://openapi-cli.invalid:6379',
  STEWARD_TOKEN_PEPPER: 'not-a-secret-openapi-cli-placeholder-0000000000',
  // base64 of the 32 ASCII bytes "not-a-secret-openapi-placeholder"
  STEWARD_MASTER_KEY: 'v1:bm90LWEtc2VjcmV0LW9wZW5hcGktcGxhY2Vob2xkZXI=',
  STEWARD_AUDIT_SIGNING_KEY: 'bm90LWEtc2VjcmV0LW9wZW5hcGktcGxhY2Vob2xkZXI=',
};

// `... | head` closes the pipe early: that is not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));

async function main(): Promise<void> {
  const out = process.argv[2];
  const config = parseConfig(PLACEHOLDER_ENV);
  const log = createLogger({ level: 'silent', name: 'steward-openapi' });
  const dataSource = createDataSource({ url: config.DATABASE_URL!, applicationName: 'steward-openapi' });
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  const app = await createApp({ config, log, dataSource, redis, metrics: new ApiMetrics() });
  try {
    const json = JSON.stringify(app.get(OpenApiService).document(), null, 2) + '\n';
    if (out) {
      const path = resolve(out);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, json);
      process.stderr.write(`steward-openapi: wrote ${path}\n`);
    } else {
      // Wait for the pipe to drain: process.exit() below would cut a large write short.
      await new Promise<void>((done, fail) => process.stdout.write(json, (err) => (err ? fail(err) : done())));
    }
  } finally {
    await app.close();
    redis.disconnect();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`steward-openapi: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
