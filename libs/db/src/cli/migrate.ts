#!/usr/bin/env node
// `npm run db:migrate`: applies pending migrations as the owner role
// (DATABASE_OWNER_URL, else DATABASE_URL) under the migration advisory lock.
import { ConfigError, createLogger, loadDbToolConfig } from '@steward/common';
import { createDataSource } from '../data-source';
import { runMigrations } from '../migrate';

async function main(): Promise<void> {
  const config = loadDbToolConfig();
  const url = config.DATABASE_OWNER_URL ?? config.DATABASE_URL;
  if (!url) throw new ConfigError(['DATABASE_OWNER_URL: set it (or DATABASE_URL) to the owner role that runs migrations']);
  const log = createLogger({ level: config.LOG_LEVEL, name: 'steward-migrate' });
  const ds = createDataSource({ url, poolMax: 2, applicationName: 'steward-migrate', logger: log });
  await ds.initialize();
  try {
    const applied = await runMigrations(ds, log);
    process.stdout.write(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await ds.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`steward-migrate: ${err instanceof ConfigError ? err.message : (err?.message ?? err)}\n`);
  process.exit(1);
});
