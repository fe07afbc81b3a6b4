import 'reflect-metadata';
import { Redis } from 'ioredis';
import { createLogger, parseConfig } from '@steward/common';
import { createDataSource } from '@steward/db';
import { createApp } from '../create-app';
import { ApiMetrics } from '../core/metrics';
import { OpenApiService } from '../core/openapi';

/**
 * The OpenAPI document the API serves at /openapi.json, as the exact text `npm run gen:api`
 * feeds to openapi-typescript, built without a database or Redis: the app module is built exactly
 * as main.ts builds it, around a DataSource that is never initialized and a Redis client that
 * never connects (no query or command is ever sent). Used by cli/openapi.ts and by the test that
 * the generated client types (apps/cli, apps/admin-console) are current.
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

export async function renderOpenApiDocument(): Promise<string> {
  const config = parseConfig(PLACEHOLDER_ENV);
  const log = createLogger({ level: 'silent', name: 'steward-openapi' });
  const dataSource = createDataSource({ url: config.DATABASE_URL!, applicationName: 'steward-openapi' });
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  const app = await createApp({ config, log, dataSource, redis, metrics: new ApiMetrics() });
  try {
    return JSON.stringify(app.get(OpenApiService).document(), null, 2) + '\n';
  } finally {
    await app.close();
    redis.disconnect();
  }
}
