import { AuditKeyring } from '@steward/audit';
import { newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg, Org } from '@steward/db';
import type { Finding } from '@steward/oversight';
import { ConfigKeyProvider } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-db';
import { incidentsForFindings } from './findings';

describe('incidents from high-severity findings (real PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  const keyring = new AuditKeyring(new ConfigKeyProvider(`v1:${Buffer.alloc(32, 9).toString('base64')}`));

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 2 });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('opens one incident per finding, with its evidence and baseline, once per report', async () => {
    const orgId = newId();
    const user = newId();
    const reportId = newId();
    const eventId = newId();
    await inOrg(ds, { orgId }, (em) => em.insert(Org, { id: orgId, name: 'Acme', slug: `acme-${orgId.slice(-8)}`, domains: ['acme.example'], requireStepUp: false }));
    const finding: Finding = {
      kind: 'mass_delete',
      severity: 'high',
      subject: { type: 'user', id: user },
      action: 'file.delete',
      title: '150 deletions within the hour',
      observed: { count: 150 },
      baseline: { description: 'the user’s busiest hour before the period', busiestHour: 3 },
      evidence: { eventIds: [eventId], total: 150 },
    };
    const open = incidentsForFindings(keyring);
    const now = new Date();
    for (let i = 0; i < 2; i++) await inOrg(ds, { orgId }, (em) => open(em, { orgId, reportId, findings: [finding], now }));
    const rows = await inOrg(ds, { orgId }, (em) => em.query(`SELECT source, source_ref, severity, subject_user_id, action_type, evidence, title FROM incidents WHERE org_id = $1`, [orgId]));
    expect(rows).toEqual([
      {
        source: 'finding',
        source_ref: `${reportId}:0`,
        severity: 'high',
        subject_user_id: user,
        action_type: 'file.delete',
        title: 'Anomaly: 150 deletions within the hour',
        evidence: expect.objectContaining({ reportId, kind: 'mass_delete', eventIds: [eventId], baseline: finding.baseline }),
      },
    ]);
    const events = await inOrg(ds, { orgId }, (em) => em.query(`SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND action = 'incident.open'`, [orgId]));
    expect(events[0].n).toBe(1);
  });
});
