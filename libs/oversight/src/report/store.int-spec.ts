import { AuditKeyring } from '@steward/audit';
import { newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg, Org } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-db';
import { nextMonthlyRun, previousMonth, runDueReports } from './store';

const keyring = new AuditKeyring(new ConfigKeyProvider(`v1:${Buffer.alloc(32, 8).toString('base64')}`));

describe('the monthly report schedule (real PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('runs on the 1st of the month, 01:00 in the org’s zone, for the month before', () => {
    expect(nextMonthlyRun('Asia/Tokyo', new Date('2026-11-22T10:00:00Z')).toISOString()).toBe('2026-11-30T16:00:00.000Z');
    expect(nextMonthlyRun('America/New_York', new Date('2026-12-31T12:00:00Z')).toISOString()).toBe('2027-01-01T06:00:00.000Z');
    // Run at 01:00 Berlin on 1 April (summer time since 29 March): the report covers March, whose start was in winter time.
    expect(previousMonth('Europe/Berlin', new Date('2026-03-31T23:00:00Z'))).toEqual({ from: new Date('2026-02-28T23:00:00Z'), to: new Date('2026-03-31T22:00:00Z') });
  });

  it('generates each due org’s report once, audited, and moves the schedule to the next month', async () => {
    const orgId = newId();
    const other = newId();
    for (const id of [orgId, other]) {
      await inOrg(ds, { orgId: id }, (em) => em.insert(Org, { id, name: 'Acme', slug: `acme-${id.slice(-8)}`, domains: ['acme.example'], requireStepUp: false }));
    }
    // The org's schedule came due (the clock is the row: its next run is in the past); the other's is next month.
    await inOrg(ds, { orgId }, (em) => em.query(`INSERT INTO report_schedules (org_id, time_zone, next_run_at) VALUES ($1, 'Asia/Tokyo', '2026-10-31T16:00:00Z')`, [orgId]));
    await inOrg(ds, { orgId: other }, (em) => em.query(`INSERT INTO report_schedules (org_id, time_zone, next_run_at) VALUES ($1, 'UTC', now() + interval '20 days')`, [other]));
    const now = new Date();
    expect(await runDueReports({ ds, keyring, now: () => now })).toBe(1);
    expect(await runDueReports({ ds, keyring, now: () => now })).toBe(0);
    const [report] = await inOrg(ds, { orgId }, (em) => em.query(`SELECT id, period_from, period_to, trigger, findings, report FROM anomaly_reports WHERE org_id = $1`, [orgId]));
    expect(report).toMatchObject({ trigger: 'schedule', findings: 0, period_from: new Date('2026-09-30T15:00:00Z'), period_to: new Date('2026-10-31T15:00:00Z') });
    expect(report.report).toMatchObject({ timeZone: 'Asia/Tokyo', findings: [] });
    const [s] = await inOrg(ds, { orgId }, (em) => em.query(`SELECT next_run_at, last_report_id FROM report_schedules WHERE org_id = $1`, [orgId]));
    expect(s).toEqual({ next_run_at: nextMonthlyRun('Asia/Tokyo', now), last_report_id: report.id });
    const events = await inOrg(ds, { orgId }, (em) => em.query(`SELECT action, target_id FROM audit_events WHERE org_id = $1 AND action = 'report.generate'`, [orgId]));
    expect(events).toEqual([{ action: 'report.generate', target_id: report.id }]);
    expect(await inOrg(ds, { orgId: other }, (em) => em.query(`SELECT id FROM anomaly_reports WHERE org_id = $1`, [other]))).toEqual([]);
  });

  it('hands the high-severity findings of a scheduled report to the worker (which opens incidents), in the same transaction', async () => {
    const orgId = newId();
    const userId = newId();
    await inOrg(ds, { orgId, userId }, async (em) => {
      await em.insert(Org, { id: orgId, name: 'Acme', slug: `acme-${orgId.slice(-8)}`, domains: ['acme.example'], requireStepUp: false });
      await em.query(`INSERT INTO users (id, email, name) VALUES ($1, $2, 'Owner')`, [userId, `owner-${orgId.slice(-8)}@acme.example`]);
      // The active policy was due for review 60 days ago: a high-severity finding.
      await em.query(
        `INSERT INTO policies (id, org_id, version, status, document, author_id, review_due_at) VALUES ($1, $2, 1, 'active', '{}', $3, now() - interval '60 days')`,
        [newId(), orgId, userId],
      );
      await em.query(`INSERT INTO report_schedules (org_id, time_zone, next_run_at) VALUES ($1, 'UTC', now() - interval '1 hour')`, [orgId]);
    });
    const seen: { orgId: string; reportId: string; kinds: string[]; inTransaction: boolean }[] = [];
    const made = await runDueReports({
      ds,
      keyring,
      onHighFindings: async (em, o) => {
        // The report row is visible here: same transaction, not yet committed.
        const [row] = await em.query(`SELECT id FROM anomaly_reports WHERE org_id = $1 AND id = $2`, [o.orgId, o.reportId]);
        seen.push({ orgId: o.orgId, reportId: o.reportId, kinds: o.findings.map((f) => f.kind), inTransaction: !!row });
      },
    });
    expect(made).toBe(1);
    expect(seen).toEqual([{ orgId, reportId: expect.any(String), kinds: ['policy_review_overdue'], inTransaction: true }]);
  });

  it('a report that fails is retried with backoff (not at every tick), and once made clears its failures; the month reported stays the same', async () => {
    const orgId = newId();
    await inOrg(ds, { orgId }, async (em) => {
      await em.insert(Org, { id: orgId, name: 'Acme', slug: `acme-${orgId.slice(-8)}`, domains: ['acme.example'], requireStepUp: false });
      // A zone nothing knows (written past the API's check): the report cannot be made.
      await em.query(`INSERT INTO report_schedules (org_id, time_zone, next_run_at) VALUES ($1, 'Mars/Olympus_Mons', '2026-11-01T01:00:00Z')`, [orgId]);
    });
    const schedule = async () => (await inOrg(ds, { orgId }, (em) => em.query(`SELECT failures, retry_at, last_error, next_run_at FROM report_schedules WHERE org_id = $1`, [orgId])))[0];
    expect(await runDueReports({ ds, keyring })).toBe(0);
    const first = await schedule();
    expect(first).toMatchObject({ failures: 1, last_error: expect.stringMatching(/time zone/i), next_run_at: new Date('2026-11-01T01:00:00Z') });
    expect(new Date(first.retry_at).getTime() - Date.now()).toBeGreaterThan(4 * 60_000);
    // Not due again until then: the next tick leaves it alone.
    expect(await runDueReports({ ds, keyring })).toBe(0);
    expect((await schedule()).failures).toBe(1);
    // Fixed, and its time comes: made, for October, and the failures are cleared.
    await inOrg(ds, { orgId }, (em) => em.query(`UPDATE report_schedules SET time_zone = 'UTC', retry_at = now() - interval '1 second' WHERE org_id = $1`, [orgId]));
    expect(await runDueReports({ ds, keyring })).toBe(1);
    expect(await schedule()).toMatchObject({ failures: 0, retry_at: null, last_error: null });
    const [report] = await inOrg(ds, { orgId }, (em) => em.query(`SELECT period_from, period_to FROM anomaly_reports WHERE org_id = $1`, [orgId]));
    expect(report).toEqual({ period_from: new Date('2026-10-01T00:00:00Z'), period_to: new Date('2026-11-01T00:00:00Z') });
  });
});
