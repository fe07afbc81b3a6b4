import { newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg, Org } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { sealAll } from '../../../test/support/seal';
import { AuditKeyring } from './keyring';
import { recordEvent } from './record';
import { dropExpiredPartitions } from './retention';
import { verifyOrg } from './verify';

const keyring = new AuditKeyring(new ConfigKeyProvider(`v1:${Buffer.alloc(32, 6).toString('base64')}`));

/**
 * Partitions made on a database whose TimeZone was not UTC (New York here) start hours off their
 * UTC month: months next to them still get a partition for every instant, and retention drops
 * them by their real bounds — never an event of a held range, and the trail still verifies.
 */
describe('audit partitions off their UTC month (real PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let owner: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    owner = createDataSource({ url: db.ownerUrl, poolMax: 2 });
    await Promise.all([ds.initialize(), owner.initialize()]);
  });
  afterAll(async () => {
    await Promise.all([ds?.destroy(), owner?.destroy()]);
    await db?.drop();
  });

  const bounds = async (name: string) => {
    const [b] = await owner.query(`SELECT lo, hi FROM steward_audit_partition_bounds() WHERE name = $1`, [name]);
    return b ? { lo: new Date(b.lo).toISOString(), hi: new Date(b.hi).toISOString() } : null;
  };

  it('gives the months around such a partition the hours it leaves, and drops it only when nothing held falls in its real range', async () => {
    // January 2019 as a New York database made it before partitions were made on UTC months.
    await owner.query(`CREATE TABLE audit_events_2019_01 PARTITION OF audit_events FOR VALUES FROM ('2019-01-01 05:00+00') TO ('2019-02-01 05:00+00')`);
    await ds.query(`SELECT steward_audit_ensure_partitions('2018-12-01', 3)`);
    expect(await bounds('audit_events_2018_12')).toEqual({ lo: '2018-12-01T00:00:00.000Z', hi: '2019-01-01T05:00:00.000Z' });
    expect(await bounds('audit_events_2019_02')).toEqual({ lo: '2019-02-01T05:00:00.000Z', hi: '2019-03-01T00:00:00.000Z' });

    const org = newId();
    await inOrg(ds, { orgId: org }, (em) => em.insert(Org, { id: org, name: 'Tokyo KK', slug: `tz-${org.slice(-8)}`, domains: ['tz.example'], requireStepUp: false }));
    // Every instant has a partition: the hours between the UTC months and the New York ones too.
    for (const at of ['2018-12-20T10:00:00Z', '2019-01-01T03:00:00Z', '2019-01-15T10:00:00Z', '2019-02-01T02:00:00Z', '2019-02-10T10:00:00Z']) {
      await inOrg(ds, { orgId: org }, (em) => recordEvent(em, keyring, { id: newId(), orgId: org, occurredAt: new Date(at), actor: { type: 'user', id: null }, action: 'file.read', outcome: 'success', client: 'rest', payload: { at } }));
    }
    await sealAll(ds, org);
    // A legal hold over the first day of February (UTC): the January partition holds part of it.
    await inOrg(ds, { orgId: org }, (em) =>
      em.query(`INSERT INTO legal_holds (id, org_id, from_at, until_at, reason, created_by) VALUES ($1, $2, '2019-02-01T00:00:00Z', '2019-02-02T00:00:00Z', 'litigation', $2)`, [newId(), org]),
    );
    const partitions = async () => (await owner.query(`SELECT name FROM steward_audit_partition_bounds() WHERE name LIKE 'audit_events_201%' ORDER BY name`)).map((r: { name: string }) => r.name);
    const first = await dropExpiredPartitions(ds, owner, keyring);
    expect(first.map((d) => d.partition).filter((p) => p.startsWith('audit_events_201'))).toEqual(['audit_events_2018_12']);
    expect(await partitions()).toEqual(['audit_events_2019_01', 'audit_events_2019_02']);
    const held = await inOrg(ds, { orgId: org }, (em) => em.query(`SELECT canonical::jsonb->'payload'->>'at' AS at FROM audit_events WHERE org_id = $1 AND action = 'file.read' ORDER BY occurred_at`, [org]));
    expect(held.map((r: { at: string }) => r.at)).toEqual(['2019-01-15T10:00:00Z', '2019-02-01T02:00:00Z', '2019-02-10T10:00:00Z']);

    // Released: the rest goes, and the chain still verifies (every purged entry accounted for by its UTC month).
    await inOrg(ds, { orgId: org }, (em) => em.query(`UPDATE legal_holds SET released_at = now() WHERE org_id = $1`, [org]));
    const second = await dropExpiredPartitions(ds, owner, keyring);
    expect(second.map((d) => d.partition).filter((p) => p.startsWith('audit_events_201'))).toEqual(['audit_events_2019_01', 'audit_events_2019_02']);
    expect(await partitions()).toEqual([]);
    await sealAll(ds, org);
    expect(await verifyOrg(ds, org, null)).toMatchObject({ ok: true, purged: 5 });
  });
});
