import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { createDataSource } from './data-source';
import { TENANT_TABLES } from './entities';
import { runMigrations, schemaDrift } from './migrate';
import { MIGRATIONS } from './migrations';

describe('migrations', () => {
  let db: TestDatabase;
  let owner: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    owner = createDataSource({ url: db.ownerUrl });
    await owner.initialize();
  });
  afterAll(async () => {
    await owner?.destroy();
    await db?.drop();
  });

  it('leaves no drift between entities and migrations', async () => {
    expect(await schemaDrift(owner)).toEqual([]);
  });

  it('applies each migration once when replicas boot together (advisory lock)', async () => {
    const empty = await createTestDatabase({ empty: true });
    const replicas = [createDataSource({ url: empty.ownerUrl }), createDataSource({ url: empty.ownerUrl })];
    try {
      await Promise.all(replicas.map((r) => r.initialize()));
      const results = await Promise.all(replicas.map((r) => runMigrations(r)));
      const applied = results.flat().sort();
      expect(applied).toEqual(MIGRATIONS.map((m) => m.name).sort());
      expect(await schemaDrift(replicas[0])).toEqual([]);
      expect(await runMigrations(replicas[1])).toEqual([]);
      // Every migration can be undone, and applied again.
      for (let i = 0; i < MIGRATIONS.length; i++) await replicas[0].undoLastMigration({ transaction: 'each' });
      const [{ n }] = await replicas[0].query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'typeorm_migrations'`);
      expect(n).toBe(0);
      expect((await runMigrations(replicas[0])).length).toBe(MIGRATIONS.length);
      expect(await schemaDrift(replicas[0])).toEqual([]);
    } finally {
      await Promise.all(replicas.map((r) => (r.isInitialized ? r.destroy() : undefined)));
      await empty.drop();
    }
  });

  it('makes audit partitions span UTC months whatever the session time zone', async () => {
    const bound = await owner.transaction(async (em) => {
      await em.query(`SET LOCAL TimeZone = 'Asia/Tokyo'`);
      await em.query(`SELECT steward_audit_ensure_partitions('2031-01-01', 1)`);
      const [row]: { bound: string }[] = await em.query(`SELECT pg_get_expr(relpartbound, oid) AS bound FROM pg_class WHERE relname = 'audit_events_2031_01'`);
      // Read back in UTC: the bounds as stored.
      await em.query(`SET LOCAL TimeZone = 'UTC'`);
      const [utc]: { bound: string }[] = await em.query(`SELECT pg_get_expr(relpartbound, oid) AS bound FROM pg_class WHERE relname = 'audit_events_2031_01'`);
      return { tokyo: row!.bound, utc: utc!.bound };
    });
    expect(bound.utc).toBe("FOR VALUES FROM ('2031-01-01 00:00:00+00') TO ('2031-02-01 00:00:00+00')");
    expect(bound.tokyo).toContain("'2031-01-01 09:00:00+09'");
    await owner.query('DROP TABLE audit_events_2031_01');
  });

  it('enables and forces Row Level Security on every tenant table', async () => {
    const rows: { relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }[] = await owner.query(
      `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY($1)`,
      [[...TENANT_TABLES, 'orgs', 'users']],
    );
    expect(rows).toHaveLength(TENANT_TABLES.length + 2);
    for (const row of rows) expect(row).toEqual({ relname: row.relname, relrowsecurity: true, relforcerowsecurity: true });
  });

  it('lists every table with an org_id column as a tenant table', async () => {
    const rows: { table_name: string }[] = await owner.query(
      `SELECT c.table_name FROM information_schema.columns c JOIN pg_class k ON k.relname = c.table_name AND NOT k.relispartition WHERE c.table_schema = 'public' AND c.column_name = 'org_id'`,
    );
    expect(rows.map((r) => r.table_name).sort()).toEqual([...TENANT_TABLES].sort());
  });

  it('connects the runtime role as neither owner nor superuser', async () => {
    const app = createDataSource({ url: db.appUrl });
    await app.initialize();
    try {
      const [role] = await app.query(
        `SELECT rolsuper, rolbypassrls, (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user) AS owned
         FROM pg_roles WHERE rolname = current_user`,
      );
      expect(role).toEqual({ rolsuper: false, rolbypassrls: false, owned: 0 });
      await expect(app.query(`UPDATE audit_events SET canonical = 'x'`)).rejects.toThrow(/permission denied/);
      await expect(app.query(`DELETE FROM audit_chain`)).rejects.toThrow(/permission denied/);
    } finally {
      await app.destroy();
    }
  });
});
