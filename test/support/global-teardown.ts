import { Client } from 'pg';
import { adminUrl } from './db-urls';

export default async function globalTeardown(): Promise<void> {
  const name = process.env.STEWARD_TEST_TEMPLATE_DB;
  if (!name) return;
  delete process.env.STEWARD_TEST_TEMPLATE_DB;
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
