import { createHash } from 'node:crypto';
import { canonical } from '@steward/audit';
import { createDataSource, type DataSource, inOrg } from '@steward/db';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { buildAnomalyReport } from './report/anomalies';
import { replayPolicy } from './replay/replay';
import { generateActivity, planOrg } from './generator/generate';
import { type GeneratedOrg, writeGeneratedOrg } from './generator/write';
import { monthStart } from './zone';

const TZ = 'Europe/Berlin';
// The generated range ends at the start of the current month: its last month is the report period.
const END = monthStart(TZ, new Date());

describe('anomaly report and policy replay on a generated org (real PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let planted: GeneratedOrg;
  let clean: GeneratedOrg;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    await ds.initialize();
    planted = await writeGeneratedOrg(ds, { seed: 8, end: END, timeZone: TZ, eventsPerUserDay: 2.5, plant: true });
    clean = await writeGeneratedOrg(ds, { seed: 9, end: END, timeZone: TZ, eventsPerUserDay: 2.5, plant: false });
  }, 600_000);
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('writes realistic activity through the real schema, every event in its canonical form', async () => {
    expect(planted.people).toHaveLength(500);
    expect(planted.events).toBeGreaterThan(100_000);
    const sample: { canonical: string; action: string; occurred_at: Date }[] = await inOrg(ds, { orgId: planted.orgId }, (em) =>
      em.query(`SELECT canonical, action, occurred_at FROM audit_events WHERE org_id = $1 ORDER BY id LIMIT 2000`, [planted.orgId]),
    );
    for (const row of sample) expect(canonical(JSON.parse(row.canonical))).toBe(row.canonical);
    // Weekly rhythm: weekends are quiet.
    const byDow: { dow: number; n: string }[] = await inOrg(ds, { orgId: planted.orgId }, (em) =>
      em.query(`SELECT extract(isodow FROM occurred_at AT TIME ZONE $2)::int AS dow, count(*) AS n FROM audit_events WHERE org_id = $1 GROUP BY 1`, [planted.orgId, TZ]),
    );
    const n = (d: number) => Number(byDow.find((r) => r.dow === d)?.n ?? 0);
    expect(n(6) * 5).toBeLessThan(n(3));
    expect(n(5)).toBeLessThan(n(2));
  });

  it('is deterministic: the same seed gives the same org, event for event', async () => {
    const digestOf = async (seed: number) => {
      const o = { seed, end: END, timeZone: TZ, users: 60, days: 45, eventsPerUserDay: 3 };
      const hash = createHash('sha256');
      const plan = planOrg(o);
      await generateActivity(plan, o, { event: (e) => void hash.update(e.canonical), task: (t) => void hash.update(JSON.stringify(t)), approval: (a) => void hash.update(JSON.stringify(a)) });
      return { people: plan.people.map((p) => p.id).join(), digest: hash.digest('hex') };
    };
    const a = await digestOf(77);
    expect(await digestOf(77)).toEqual(a);
    expect((await digestOf(78)).digest).not.toBe(a.digest);
    expect(planted.planted.map((p) => p.kind).sort()).toEqual([
      'bulk_external_share', 'cost_spike', 'denial_rate', 'first_connector', 'mass_delete', 'mass_send', 'policy_review_overdue',
      'rejection_rate', 'rubber_stamp', 'slow_approval', 'unusual_hours', 'user_strikes', 'volume_spike',
    ]);
  });

  it('finds every planted anomaly, each with evidence and its baseline', async () => {
    const report = await inOrg(ds, { orgId: planted.orgId }, (em) => buildAnomalyReport(em, { orgId: planted.orgId, from: planted.periodStart, to: planted.end, timeZone: TZ }));
    for (const p of planted.planted) {
      const hit = report.findings.find((f) => f.kind === p.kind && (f.subject.id === p.subject || (p.connector && f.subject.id === p.connector)));
      if (!hit) throw new Error(`planted ${p.kind} (${p.note}) not found; findings: ${report.findings.map((f) => `${f.kind}:${f.subject.id}`).join(' ')}`);
      expect({ kind: p.kind, evidence: hit.evidence.total > 0 && hit.evidence.eventIds.length > 0, baseline: !!hit.baseline.description }).toEqual({ kind: p.kind, evidence: true, baseline: true });
    }
    // Evidence ids are events of this org.
    const ids = report.findings.flatMap((f) => f.evidence.eventIds);
    const [{ n }] = await inOrg(ds, { orgId: planted.orgId }, (em) => em.query(`SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND id = ANY($2::uuid[])`, [planted.orgId, ids]));
    expect(n).toBe(new Set(ids).size);
  });

  it('raises at most one finding per 100 users on a month with nothing planted', async () => {
    const report = await inOrg(ds, { orgId: clean.orgId }, (em) => buildAnomalyReport(em, { orgId: clean.orgId, from: clean.periodStart, to: clean.end, timeZone: TZ }));
    expect(report.users).toBe(500);
    expect(report.eventsScanned).toBeGreaterThan(100_000);
    if (report.findings.length > 5) throw new Error(`too many findings: ${JSON.stringify(report.findings.map((f) => [f.kind, f.title]))}`);
  });

  it('replays the active policy over its own period with no difference', async () => {
    const r = await replayPolicy(ds, { orgId: planted.orgId, policy: planted.policy.document, policyVersion: planted.policy.version, now: planted.end, days: 181 });
    expect(r.replayed).toBe(planted.decisions);
    expect(r.notReplayable).toBe(0);
    expect({ changed: r.changed, sameLevelOtherRules: r.sameLevelOtherRules }).toEqual({ changed: 0, sameLevelOtherRules: 0 });
  });

  it('replays a draft with planted changes: exactly the decisions the generator predicts change', async () => {
    const r = await replayPolicy(ds, { orgId: planted.orgId, policy: planted.draft, now: planted.end, days: 181, listChanged: true });
    expect(planted.predictedChanges.length).toBeGreaterThan(1000);
    expect(new Set(r.changedEventIds)).toEqual(new Set(planted.predictedChanges));
    expect(r.changed).toBe(planted.predictedChanges.length);
    // The summary: stricter and looser changes, more approvals a day, the users and workflows concerned.
    expect(r.stricter).toBeGreaterThan(0);
    expect(r.looser).toBeGreaterThan(0);
    expect(r.byWorkflow.map((w) => w.workflow)).toContain('legal-triage');
    expect(r.byAction.map((a) => a.action).sort()).toEqual(['drive.update', 'file.delete', 'saas.read']);
    expect(r.examples.length).toBeGreaterThan(0);
    expect(r.approvalsPerDay.after).not.toBe(r.approvalsPerDay.before);
  });
});
