#!/usr/bin/env node
// `npm run db:check-drift`: fails when the entities and the migrated schema differ
// (an entity changed without a migration), printing the SQL that would be missing.
import { ConfigError, loadDbToolConfig } from '@steward/common';
import { createDataSource } from '../data-source';
import { schemaDrift } from '../migrate';

async function main(): Promise<void> {
  const config = loadDbToolConfig();
  const url = config.DATABASE_OWNER_URL ?? config.DATABASE_URL;
  if (!url) throw new ConfigError(['DATABASE_OWNER_URL: set it (or DATABASE_URL) to a migrated database']);
  const ds = createDataSource({ url, poolMax: 1 });
  await ds.initialize();
  try {
    const drift = await schemaDrift(ds);
    if (drift.length) {
      process.stderr.write(`entities and migrations differ; a migration is missing for:\n${drift.map((q) => `  ${q};`).join('\n')}\n`);
      process.exitCode = 1;
    } else {
      process.stdout.write('no drift: entities match the migrations\n');
    }
  } finally {
    await ds.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`steward-check-drift: ${err instanceof ConfigError ? err.message : (err?.message ?? err)}\n`);
  process.exit(1);
});
