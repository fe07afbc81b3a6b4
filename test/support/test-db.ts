import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { adminUrl, dbUrl } from './db-urls';

export interface TestDatabase {
  name: string;
  /** Runtime role (steward_app): what the api and worker use. */
  appUrl: string;
  /** Owner role: migrations only. */
  ownerUrl: string;
  drop(): Promise<void>;
}

/** A fresh database of this test file's own: migrated (cloned from the run's template), or empty. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const template = options.empty ? 'template0' : process.env.STEWARD_TEST_TEMPLATE_DB;
  if (!template) throw new Error('no template database: run tests through jest (globalSetup)');
  const name = `steward_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`CREATE DATABASE ${name} TEMPLATE ${template} OWNER steward_owner`);
        break;
      } catch (err) {
        // Two clones at the same instant: "source database is being accessed by other users".
        if (attempt >= 20 || !/being accessed/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await client.end();
  }
  return {
    name,
    appUrl: dbUrl('steward_app', name),
    ownerUrl: dbUrl('steward_owner', name),
    async drop() {
      const c = new Client({ connectionString: adminUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
