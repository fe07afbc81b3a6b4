import { Client } from 'pg';
import { newId } from '@steward/common';
import { monthStart, previousMonth, wallClock } from '@steward/oversight';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * The anomaly report and the policy replay through the API: generated on demand for a period,
 * stored, listed, read and downloaded (HTML with inline SVG and nothing fetched, CSV, JSON), the
 * monthly schedule, bad input refused with problem+json and nothing stored, every step audited.
 * (The report's statistics and the replay are tested on a generated org in libs/oversight.)
 */
describe('anomaly reports and policy replay', () => {
  let h: Harness;
  let org: SeededOrg;
  let owner: string;
  let admin: string;
  let su: Client;

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'reports');
    owner = await login(h, org.users.owner.email);
    admin = await login(h, org.users.admin.email);
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    // Something to find: the active policy is 40 days past its review date, the member has two strikes.
    await su.query(`UPDATE policies SET review_due_at = now() - interval '40 days' WHERE org_id = $1 AND status = 'active'`, [org.id]);
    for (let i = 0; i < 2; i++) {
      await su.query(
        `INSERT INTO violations (org_id, id, action_id, user_id, connector, tool, action_type, args_digest, tainted, reason, state, decided_by, decided_at)
         VALUES ($1, $2, $3, $4, 'stripe', 'stripe.charge', 'payment.execute', repeat('0', 64), false, 'Forbidden', 'confirmed', $5, now() - interval '2 days')`,
        [org.id, newId(), newId(), org.users.member.id, org.users.security.id],
      );
    }
  });
  afterAll(async () => {
    await su?.end();
    await h?.close();
  });

  const count = async (sql: string, params: unknown[]) => (await su.query(sql, params)).rows[0].n as number;

  it('generates a report for a period, stores and lists it, and audits it', async () => {
    const from = new Date(Date.now() - 30 * 86_400_000).toISOString();
    const res = await h.http.post('/v1/reports').set('Cookie', admin).send({ from, timeZone: 'Europe/Berlin' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ trigger: 'manual', requestedBy: org.users.admin.id, timeZone: 'Europe/Berlin', from });
    const kinds = res.body.findingList.map((f: { kind: string; severity: string }) => `${f.kind}:${f.severity}`).sort();
    expect(kinds).toEqual(['policy_review_overdue:high', 'user_strikes:medium']);
    const strikes = res.body.findingList.find((f: { kind: string }) => f.kind === 'user_strikes');
    expect(strikes.subject).toEqual({ type: 'user', id: org.users.member.id, label: org.users.member.email });
    expect(strikes.baseline.description).toMatch(/warning/);

    const list = await h.http.get('/v1/reports').set('Cookie', owner);
    expect(list.status).toBe(200);
    expect(list.body.items.map((r: { id: string }) => r.id)).toContain(res.body.id);
    const one = await h.http.get(`/v1/reports/${res.body.id}`).set('Cookie', owner);
    expect(one.status).toBe(200);
    expect(one.body.findingList).toEqual(res.body.findingList);
    expect(await count(`SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND action = 'report.generate' AND target_id = $2`, [org.id, res.body.id])).toBe(1);
  });

  it('downloads as printable HTML with inline SVG charts and nothing fetched, as CSV and as JSON', async () => {
    const { body: created } = await h.http.post('/v1/reports').set('Cookie', owner).send({});
    const html = await h.http.get(`/v1/reports/${created.id}/download`).set('Cookie', owner);
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(html.text).toMatch(/<svg class="chart"/);
    expect(html.text).toMatch(/@media print/);
    expect(html.text).toContain('Policies past their review date');
    // Nothing remote: no scripts, no src or stylesheet links, links only to this API's audit events.
    expect(html.text).not.toMatch(/<script|\ssrc=|<link|@import|url\(/i);
    for (const m of html.text.matchAll(/href="([^"]+)"/g)) expect(m[1]).toMatch(/^\/v1\/audit-events\/[0-9a-f-]{36}$/);

    const csv = await h.http.get(`/v1/reports/${created.id}/download`).query({ format: 'csv' }).set('Cookie', owner);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('severity,kind,subject_type,subject,subject_label,action,title,score,observed,baseline,evidence_total,evidence_event_ids');
    expect(lines).toHaveLength(1 + created.findingList.length);

    const json = await h.http.get(`/v1/reports/${created.id}/download`).query({ format: 'json' }).set('Cookie', owner);
    expect(JSON.parse(json.text)).toMatchObject({ id: created.id, orgId: org.id, findings: created.findingList });
    expect(await count(`SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND action = 'report.download' AND target_id = $2`, [org.id, created.id])).toBe(3);
  });

  it("one report of an org at a time: another asked meanwhile is refused (409), so one org's reports cannot hold every org's connections", async () => {
    const before = await count(`SELECT count(*)::int AS n FROM anomaly_reports WHERE org_id = $1`, [org.id]);
    // A report of this org is being made (its lock held elsewhere).
    await su.query('BEGIN');
    try {
      await su.query(`SELECT pg_advisory_xact_lock(hashtextextended('steward:report:' || $1, 0))`, [org.id]);
      const busy = await h.http.post('/v1/reports').set('Cookie', admin).send({});
      expect(busy.status).toBe(409);
      expect(busy.body.detail).toMatch(/being generated/);
    } finally {
      await su.query('ROLLBACK');
    }
    expect(await count(`SELECT count(*)::int AS n FROM anomaly_reports WHERE org_id = $1`, [org.id])).toBe(before);
    expect((await h.http.post('/v1/reports').set('Cookie', admin).send({})).status).toBe(201);
  });

  it('refuses bad input with problem+json and stores nothing', async () => {
    const before = await count(`SELECT count(*)::int AS n FROM anomaly_reports WHERE org_id = $1`, [org.id]);
    const now = Date.now();
    for (const body of [
      { from: new Date(now - 86_400_000).toISOString(), to: new Date(now - 2 * 86_400_000).toISOString() },
      { from: new Date(now - 400 * 86_400_000).toISOString() },
      { from: new Date(now + 86_400_000).toISOString(), to: new Date(now + 2 * 86_400_000).toISOString() },
      { timeZone: 'Mars/Olympus' },
      { from: 'yesterday' },
      { period: 'last-month' },
    ]) {
      const res = await h.http.post('/v1/reports').set('Cookie', owner).send(body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
    expect(await count(`SELECT count(*)::int AS n FROM anomaly_reports WHERE org_id = $1`, [org.id])).toBe(before);
    expect((await h.http.get('/v1/reports/not-a-report').set('Cookie', owner)).status).toBe(404);
    expect((await h.http.get(`/v1/reports/${newId()}/download`).set('Cookie', owner)).status).toBe(404);
    expect((await h.http.get(`/v1/reports/${newId()}/download`).query({ format: 'pdf' }).set('Cookie', owner)).status).toBe(400);
  });

  it('sets the monthly schedule in the org’s zone (1st of the month, 01:00), audited', async () => {
    expect((await h.http.get('/v1/reports/schedule').set('Cookie', admin)).body).toMatchObject({ enabled: false, nextRunAt: null });
    expect((await h.http.put('/v1/reports/schedule').set('Cookie', admin).send({ timeZone: 'Mars/Olympus' })).status).toBe(400);
    const res = await h.http.put('/v1/reports/schedule').set('Cookie', admin).send({ timeZone: 'Asia/Tokyo' });
    expect(res.status).toBe(200);
    const next = new Date(res.body.nextRunAt);
    expect(new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Tokyo', day: 'numeric', hour: 'numeric', minute: '2-digit', hourCycle: 'h23' }).format(next)).toBe('1, 01:00');
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(await count(`SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND action = 'report.schedule'`, [org.id])).toBe(1);
    const off = await h.http.put('/v1/reports/schedule').set('Cookie', admin).send({ timeZone: 'Asia/Tokyo', enabled: false });
    expect(off.body).toMatchObject({ enabled: false, nextRunAt: null, timeZone: 'Asia/Tokyo' });
  });

  it('saving the schedule neither skips a month whose run is due nor reports a month again in a new zone; failures are shown', async () => {
    expect((await h.http.put('/v1/reports/schedule').set('Cookie', admin).send({ timeZone: 'UTC' })).status).toBe(200);
    // A run came due a moment ago (or keeps failing and is retried): saving keeps it due.
    await su.query(`UPDATE report_schedules SET next_run_at = now() - interval '5 minutes', failures = 2, last_error = 'canceling statement due to statement timeout' WHERE org_id = $1`, [org.id]);
    const due = (await su.query(`SELECT next_run_at FROM report_schedules WHERE org_id = $1`, [org.id])).rows[0].next_run_at as Date;
    const seen = (await h.http.get('/v1/reports/schedule').set('Cookie', admin)).body;
    expect(seen).toMatchObject({ failures: 2, lastError: 'canceling statement due to statement timeout' });
    expect(new Date((await h.http.put('/v1/reports/schedule').set('Cookie', admin).send({ timeZone: 'UTC' })).body.nextRunAt).getTime()).toBe(due.getTime());
    const kept = await h.http.put('/v1/reports/schedule').set('Cookie', admin).send({ timeZone: 'Europe/Paris' });
    // Still due, for the same month (now in Paris, where it has ended too).
    const monthOf = (zone: string, run: Date) => wallClock(zone, previousMonth(zone, run).from).toISOString().slice(0, 7);
    expect(new Date(kept.body.nextRunAt).getTime()).toBeLessThanOrEqual(Date.now());
    expect(monthOf('Europe/Paris', new Date(kept.body.nextRunAt))).toBe(monthOf('UTC', due));
    // A run due in Tokyo (its month ended there, hours before UTC): moved to UTC, it reports that month
    // once it has ended in UTC too — not the month before it, which Tokyo's last run reported.
    const tokyoRun = new Date(monthStart('Asia/Tokyo', new Date(Date.now() - 2 * 86_400_000)).getTime() + 3_600_000);
    await su.query(`UPDATE report_schedules SET time_zone = 'Asia/Tokyo', next_run_at = $2 WHERE org_id = $1`, [org.id, tokyoRun]);
    const toUtc = await h.http.put('/v1/reports/schedule').set('Cookie', admin).send({ timeZone: 'UTC' });
    expect(monthOf('UTC', new Date(toUtc.body.nextRunAt))).toBe(monthOf('Asia/Tokyo', tokyoRun));
    // The month now running in New York was already reported (by a zone ahead of it, where it had ended):
    // moving the org to New York does not report it again; the next run reports the month after.
    const nyMonth = `date_trunc('month', now() AT TIME ZONE 'America/New_York') AT TIME ZONE 'America/New_York'`;
    const reported = (await su.query(
      `INSERT INTO anomaly_reports (id, org_id, period_from, period_to, time_zone, trigger, findings, high, events_scanned, duration_ms, report)
       SELECT gen_random_uuid(), $1, ${nyMonth}, ${nyMonth} + interval '1 month', 'Asia/Tokyo', 'schedule', 0, 0, 0, 1, '{}' RETURNING id, period_to`,
      [org.id],
    )).rows[0];
    await su.query(`UPDATE report_schedules SET next_run_at = now() + interval '20 days', last_report_id = $2, failures = 0, last_error = NULL WHERE org_id = $1`, [org.id, reported.id]);
    const moved = await h.http.put('/v1/reports/schedule').set('Cookie', admin).send({ timeZone: 'America/New_York' });
    expect(moved.status).toBe(200);
    // Its run is on the 1st after the reported month's end plus a month: it reports the month after.
    expect(new Date(moved.body.nextRunAt).getTime()).toBeGreaterThan(new Date(reported.period_to).getTime() + 27 * 86_400_000);
  });

  it('replays a policy version over the trail and audits the read', async () => {
    const draft = await h.http.post('/v1/policies').set('Cookie', owner).send({ note: 'stricter deletes' });
    expect(draft.status).toBe(201);
    const res = await h.http.post(`/v1/policies/${draft.body.id}/replay`).set('Cookie', admin).send({ days: 30 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ policyId: draft.body.id, status: 'draft', days: 30, changed: 0, approvalsPerDay: { delta: 0 } });
    expect((await h.http.post(`/v1/policies/${draft.body.id}/replay`).set('Cookie', admin).send({ days: 0 })).status).toBe(400);
    expect((await h.http.post(`/v1/policies/${newId()}/replay`).set('Cookie', admin).send({})).status).toBe(404);
    expect(await count(`SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND action = 'policy.replay' AND target_id = $2`, [org.id, draft.body.id])).toBe(1);
  });
});
