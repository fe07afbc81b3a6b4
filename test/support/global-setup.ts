// Jest global setup: real PostgreSQL and Redis, as on CI.
// Creates the two roles (the owner runs migrations; steward_app is the runtime role,
// neither owner nor superuser) and one migrated template database for this run;
// each test file clones its own database from it and drops it at the end.
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createDataSource } from '../../libs/db/src/data-source';
import { runMigrations } from '../../libs/db/src/migrate';
import { adminUrl, dbUrl } from './db-urls';

export default async function globalSetup(): Promise<void> {
  if (process.env.STEWARD_TEST_TEMPLATE_DB) return; // several projects share one run
  const client = new Client({ connectionString: adminUrl() });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`Tests need PostgreSQL at ${adminUrl()} (set TEST_PG_ADMIN_URL): ${(err as Error).message}`, { cause: err });
  }
  const name = `steward_tpl_${process.pid}_${randomBytes(3).toString('hex')}`;
  try {
    await client.query(`DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'steward_owner') THEN
        CREATE ROLE steward_owner LOGIN CREATEDB CREATEROLE NOSUPERUSER NOBYPASSRLS;
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'steward_app') THEN
        CREATE ROLE steward_app LOGIN NOSUPERUSER NOBYPASSRLS;
      END IF;
    END $$`);
    await client.query(`ALTER ROLE steward_app LOGIN NOSUPERUSER NOBYPASSRLS`);
    await client.query(`CREATE DATABASE ${name} OWNER steward_owner`);
  } finally {
    await client.end();
  }
  const ds = createDataSource({ url: dbUrl('steward_owner', name) });
  await ds.initialize();
  try {
    await runMigrations(ds);
  } finally {
    await ds.destroy();
  }
  process.env.STEWARD_TEST_TEMPLATE_DB = name;
}
