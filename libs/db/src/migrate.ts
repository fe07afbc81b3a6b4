import type { DataSource } from 'typeorm';
import type { Logger } from '@steward/common';

/** Fixed key for pg_advisory_lock: "steward-migrations". */
const MIGRATION_LOCK_KEY = 7_424_101_226;

/**
 * Applies pending migrations while holding a session-level advisory lock, so that
 * several replicas booting together apply each migration once.
 */
export async function runMigrations(dataSource: DataSource, log?: Logger, options: { lock?: boolean } = {}): Promise<string[]> {
  if (options.lock === false) {
    // Embedded PGlite: one process, one shared session; no lock to take.
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    for (const m of applied) log?.info({ migration: m.name }, 'migration applied');
    return applied.map((m) => m.name);
  }
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      for (const m of applied) log?.info({ migration: m.name }, 'migration applied');
      return applied.map((m) => m.name);
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await runner.release();
  }
}

/**
 * The SQL that would bring the schema in line with the entities. Empty when entities
 * and migrations agree; anything else is drift (an entity changed without a migration).
 */
export async function schemaDrift(dataSource: DataSource): Promise<string[]> {
  const sql = await dataSource.driver.createSchemaBuilder().log();
  return sql.upQueries.map((q) => q.query);
}
