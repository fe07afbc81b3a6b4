import type { EntityManager } from 'typeorm';
import type { AnomalyReport, Finding, Severity } from './findings';
import { type Baseline, baselineOf, median, robustZ, round } from './stats';

/**
 * The anomaly report of one org and period. Every measure is taken against the subject's own
 * history (the `baselineDays` before the period) with robust statistics — medians and MADs, which
 * a few odd days cannot move — and a finding needs both a large robust z-score and a material
 * size, so that a quiet user doing a little more is not news. Reads run in the caller's
 * transaction (org-scoped by RLS).
 *
 * The agent actions are the gate's decision events (`decision` set, actor an agent task); the user
 * an action was for is in the event (`payload.facts.user`, or the sealed part's subject for events
 * written before the gate recorded its facts).
 */
export interface ReportOptions {
  orgId: string;
  from: Date;
  to: Date;
  timeZone: string;
  /** History the period is measured against (default 180 days). */
  baselineDays?: number;
  now?: Date;
}

export const THRESHOLDS = {
  /** Volume spike: robust z, times the usual day, and a floor of actions. */
  spikeZ: 8,
  spikeRatio: 4,
  spikeMin: 30,
  /** History days a user needs before their volume is judged. */
  minHistoryDays: 20,
  /** Unusual hours: an hour is rare for a user below this share of their history. */
  rareHourShare: 0.005,
  rareMin: 15,
  minHistoryEvents: 150,
  /** Denials and rejections. */
  deniedMin: 10,
  rejectedMin: 8,
  rejectedShare: 0.5,
  /** Mass actions in one clock hour. */
  massDelete: 50,
  massSend: 40,
  massShare: 25,
  massRatio: 5,
  /** Cost spike (micro-dollars a day). */
  costMin: 5_000_000,
  costZ: 10,
  costRatio: 5,
  /** Approvals. */
  stampMin: 20,
  stampApproved: 0.95,
  stampSeconds: 15,
  slowMin: 5,
  slowHours: 8,
  slowRatio: 4,
} as const;

const DAY = 86_400_000;
const USER = 'subject_id';
const DECISIONS = `decision IS NOT NULL AND actor_type = 'agent_task'`;

const severityOf = (z: number, high: number, medium: number): Severity => (z >= high ? 'high' : z >= medium ? 'medium' : 'low');

interface DayRow {
  u: string;
  action: string | null;
  d: string | null;
  h: number | null;
  period: boolean | null;
  n: string;
  denied: string;
}

export async function buildAnomalyReport(em: EntityManager, o: ReportOptions): Promise<AnomalyReport> {
  const baselineFrom = new Date(o.from.getTime() - (o.baselineDays ?? 180) * DAY);
  const tz = o.timeZone;
  const args = [o.orgId, baselineFrom, o.to, tz, o.from];
  const findings: Finding[] = [];

  // One scan of the agent actions: counts per user, action type and local day; per user, local hour and side of the period.
  const rows: DayRow[] = await em.query(
    `SELECT u, action, local::date::text AS d, extract(hour FROM local)::int AS h, period, count(*) AS n, count(*) FILTER (WHERE denied) AS denied
       FROM (SELECT subject_id AS u, action, occurred_at AT TIME ZONE $4 AS local, occurred_at >= $5 AS period, outcome = 'denied' AS denied
               FROM audit_events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ${DECISIONS} AND subject_id IS NOT NULL
             OFFSET 0) x
      GROUP BY GROUPING SETS ((u, action, local::date), (u, extract(hour FROM local)::int, period))`,
    args,
  );
  const periodFirstDay = localDay(o.from, tz);
  let eventsScanned = 0;
  // user → action → day → count; user → day → total; user → hour histograms
  const perAction = new Map<string, Map<string, Map<string, number>>>();
  const perDay = new Map<string, Map<string, number>>();
  const hours = new Map<string, { hist: number[]; period: number[] }>();
  const denials = new Map<string, { nh: number; dh: number; np: number; dp: number }>();
  for (const r of rows) {
    const n = Number(r.n);
    if (r.action !== null) {
      eventsScanned += n;
      let a = perAction.get(r.u);
      if (!a) perAction.set(r.u, (a = new Map()));
      let days = a.get(r.action!);
      if (!days) a.set(r.action!, (days = new Map()));
      days.set(r.d!, n);
      let t = perDay.get(r.u);
      if (!t) perDay.set(r.u, (t = new Map()));
      t.set(r.d!, (t.get(r.d!) ?? 0) + n);
    } else {
      let hh = hours.get(r.u);
      if (!hh) hours.set(r.u, (hh = { hist: new Array(24).fill(0), period: new Array(24).fill(0) }));
      (r.period ? hh.period : hh.hist)[r.h!] += n;
      let dn = denials.get(r.u);
      if (!dn) denials.set(r.u, (dn = { nh: 0, dh: 0, np: 0, dp: 0 }));
      if (r.period) {
        dn.np += n;
        dn.dp += Number(r.denied);
      } else {
        dn.nh += n;
        dn.dh += Number(r.denied);
      }
    }
  }

  // 1. Volume spikes per user and action type, against the user's own active days.
  for (const [u, actions] of perAction) {
    const totals = perDay.get(u)!;
    const histDays = [...totals.keys()].filter((d) => d < periodFirstDay);
    if (histDays.length < THRESHOLDS.minHistoryDays) continue;
    const usualDay = median(histDays.map((d) => totals.get(d)!));
    for (const [action, days] of actions) {
      const base = baselineOf(histDays.map((d) => days.get(d) ?? 0));
      let worst: { d: string; c: number; z: number } | null = null;
      for (const [d, c] of days) {
        if (d < periodFirstDay) continue;
        const z = robustZ(c, base);
        if (c >= THRESHOLDS.spikeMin && c >= THRESHOLDS.spikeRatio * Math.max(base.median, 1) && c >= 2 * usualDay && z >= THRESHOLDS.spikeZ && (!worst || z > worst.z)) worst = { d, c, z };
      }
      if (!worst) continue;
      const sorted = [...days.keys()].filter((d) => d >= addDays(periodFirstDay, -60)).sort();
      findings.push({
        kind: 'volume_spike',
        severity: severityOf(worst.z, 30, 15),
        subject: { type: 'user', id: u },
        action,
        title: `${worst.c} × ${action} on ${worst.d} (usually ${round(base.median, 1)} a day)`,
        observed: { day: worst.d, count: worst.c },
        baseline: baselineFields('the user’s own days of activity before the period', base),
        score: round(worst.z, 1),
        evidence: await evidence(em, o.orgId, `${USER} = $4 AND action = $5 AND ${DECISIONS} AND to_char(occurred_at AT TIME ZONE $6, 'YYYY-MM-DD') = $7`, dayRange(worst.d), [u, action, tz, worst.d]),
        series: { label: `${action} per day`, values: sorted.map((d) => days.get(d) ?? 0), markFrom: sorted.findIndex((d) => d >= periodFirstDay) },
      });
    }
  }

  // 2. Unusual hours: activity in hours that are rare in the user's own history.
  for (const [u, hh] of hours) {
    const total = hh.hist.reduce((a, b) => a + b, 0);
    if (total < THRESHOLDS.minHistoryEvents) continue;
    const rare = hh.hist.map((c) => c / total < THRESHOLDS.rareHourShare);
    const observed = hh.period.reduce((s, c, h) => s + (rare[h] ? c : 0), 0);
    const periodTotal = hh.period.reduce((a, b) => a + b, 0);
    const expected = (periodTotal * hh.hist.reduce((s, c, h) => s + (rare[h] ? c : 0), 0)) / total;
    if (observed < THRESHOLDS.rareMin || observed < expected + 6 * Math.sqrt(expected) + 10) continue;
    const rareHours = rare.map((r, h) => (r ? h : -1)).filter((h) => h >= 0);
    findings.push({
      kind: 'unusual_hours',
      severity: observed >= 50 ? 'high' : 'medium',
      subject: { type: 'user', id: u },
      title: `${observed} actions at hours this user almost never works (expected ${round(expected, 1)})`,
      observed: { actionsAtRareHours: observed, actionsInPeriod: periodTotal },
      baseline: { description: `hours below ${THRESHOLDS.rareHourShare * 100}% of the user’s ${total} actions before the period`, rareHours: rareHours.join(','), expected: round(expected, 2) },
      score: round((observed - expected) / Math.max(Math.sqrt(expected), 1), 1),
      evidence: await evidence(em, o.orgId, `${USER} = $4 AND ${DECISIONS} AND extract(hour FROM occurred_at AT TIME ZONE $5)::int = ANY($6::int[])`, [o.from, o.to], [u, tz, rareHours]),
      series: { label: 'share of actions per local hour (history, then period)', values: [...hh.hist.map((c) => round((100 * c) / total, 2)), ...hh.period.map((c) => round((100 * c) / Math.max(periodTotal, 1), 2))], markFrom: 24 },
    });
  }

  // 3. Denials by the gate, against the user's own rate.
  for (const [u, dn] of denials) {
    const rate = (dn.dh + 1) / (dn.nh + 50);
    const expected = dn.np * rate;
    if (dn.dp < THRESHOLDS.deniedMin || dn.dp < 3 * expected + 6 * Math.sqrt(expected)) continue;
    findings.push({
      kind: 'denial_rate',
      severity: dn.dp >= 50 ? 'high' : 'medium',
      subject: { type: 'user', id: u },
      title: `${dn.dp} of ${dn.np} actions refused (${round((100 * dn.dp) / dn.np, 1)}%; usually ${round(100 * (dn.dh / Math.max(dn.nh, 1)), 2)}%)`,
      observed: { denied: dn.dp, actions: dn.np },
      baseline: { description: 'the user’s own refusal rate before the period', denied: dn.dh, actions: dn.nh, expected: round(expected, 2) },
      score: round((dn.dp - expected) / Math.max(Math.sqrt(expected), 1), 1),
      evidence: await evidence(em, o.orgId, `${USER} = $4 AND ${DECISIONS} AND outcome = 'denied'`, [o.from, o.to], [u]),
    });
  }

  // 4. Approvals: rejections per requester, rubber stamps and slow approvals per approver.
  // Approval decisions in the range (the approvals and their votes: who asked, who decided, when).
  const approvals: { id: string; approver: string; requester: string; rejected: boolean; period: boolean; waited: number }[] = (
    await em.query(
      `SELECT v.approval_id AS id, v.user_id AS approver, a.requested_by AS requester, v.vote = 'reject' AS rejected, v.created_at >= $4 AS period,
              extract(epoch FROM v.created_at - a.created_at)::float8 AS waited
         FROM approval_votes v JOIN approvals a ON a.org_id = v.org_id AND a.id = v.approval_id
        WHERE v.org_id = $1 AND v.created_at >= $2 AND v.created_at < $3 AND v.vote IN ('approve', 'reject') AND a.kind = 'action'`,
      [o.orgId, baselineFrom, o.to, o.from],
    )
  ).map((a: { waited: number | string }) => ({ ...a, waited: Number(a.waited) }));
  const byRequester = new Map<string, { nh: number; rh: number; np: number; rp: number; ids: string[] }>();
  const byApprover = new Map<string, { n: number; approved: number; waits: number[]; ids: string[] }>();
  const allWaits: number[] = [];
  for (const a of approvals) {
    if (a.requester) {
      let q = byRequester.get(a.requester);
      if (!q) byRequester.set(a.requester, (q = { nh: 0, rh: 0, np: 0, rp: 0, ids: [] }));
      if (a.period) {
        q.np++;
        if (a.rejected) {
          q.rp++;
          q.ids.push(a.id);
        }
      } else {
        q.nh++;
        if (a.rejected) q.rh++;
      }
    }
    if (!a.period) continue;
    let p = byApprover.get(a.approver);
    if (!p) byApprover.set(a.approver, (p = { n: 0, approved: 0, waits: [], ids: [] }));
    p.n++;
    if (!a.rejected) p.approved++;
    p.waits.push(a.waited);
    allWaits.push(a.waited);
    p.ids.push(a.id);
  }
  for (const [u, q] of byRequester) {
    const rate = (q.rh + 1) / (q.nh + 20);
    if (q.rp < THRESHOLDS.rejectedMin || q.rp / q.np < THRESHOLDS.rejectedShare || q.rp / q.np < 3 * rate) continue;
    findings.push({
      kind: 'rejection_rate',
      severity: q.rp / q.np >= 0.8 ? 'high' : 'medium',
      subject: { type: 'user', id: u },
      title: `${q.rp} of ${q.np} approval requests rejected (usually ${round((100 * q.rh) / Math.max(q.nh, 1), 1)}%)`,
      observed: { rejected: q.rp, decided: q.np },
      baseline: { description: 'the user’s own rejection rate before the period', rejected: q.rh, decided: q.nh },
      evidence: await approvalEvidence(em, o, q.ids, null),
    });
  }
  const orgWait = median(allWaits);
  for (const [u, p] of byApprover) {
    const wait = median(p.waits);
    if (p.n >= THRESHOLDS.stampMin && p.approved / p.n >= THRESHOLDS.stampApproved && p.waits.length && wait <= THRESHOLDS.stampSeconds) {
      findings.push({
        kind: 'rubber_stamp',
        severity: 'high',
        subject: { type: 'user', id: u },
        title: `${p.approved} of ${p.n} requests approved, half of them within ${round(wait, 1)} s`,
        observed: { decided: p.n, approved: p.approved, medianSeconds: round(wait, 1) },
        baseline: { description: 'the org’s approvers in the period', medianSeconds: round(orgWait, 1) },
        evidence: await approvalEvidence(em, o, p.ids, u),
      });
    }
    if (p.waits.length >= THRESHOLDS.slowMin && wait >= THRESHOLDS.slowHours * 3600 && wait >= THRESHOLDS.slowRatio * orgWait) {
      findings.push({
        kind: 'slow_approval',
        severity: wait >= 24 * 3600 ? 'high' : 'medium',
        subject: { type: 'user', id: u },
        title: `approvals took ${round(wait / 3600, 1)} h at the median (the org: ${round(orgWait / 60, 1)} min)`,
        observed: { decided: p.n, medianHours: round(wait / 3600, 2) },
        baseline: { description: 'the org’s approvers in the period', medianMinutes: round(orgWait / 60, 2) },
        evidence: await approvalEvidence(em, o, p.ids, u),
      });
    }
  }

  // 5. First use of a connector in the org.
  const connectors: { connector: string; first: Date }[] = await em.query(
    `SELECT connector, min(occurred_at) AS first FROM audit_events WHERE org_id = $1 AND occurred_at < $2 AND ${DECISIONS} AND connector IS NOT NULL GROUP BY connector HAVING min(occurred_at) >= $3`,
    [o.orgId, o.to, o.from],
  );
  for (const c of connectors) {
    const users: { u: string; n: string }[] = await em.query(
      `SELECT subject_id AS u, count(*) AS n FROM audit_events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND connector = $4 AND ${DECISIONS} GROUP BY 1 ORDER BY 2 DESC`,
      [o.orgId, o.from, o.to, c.connector],
    );
    findings.push({
      kind: 'first_connector',
      severity: 'low',
      subject: { type: 'connector', id: c.connector },
      title: `${c.connector} used for the first time (${new Date(c.first).toISOString().slice(0, 10)})`,
      observed: { firstUse: new Date(c.first).toISOString(), users: users.map((x) => x.u).join(','), actions: users.reduce((s, x) => s + Number(x.n), 0) },
      baseline: { description: 'no event of the org named this connector before' },
      evidence: await evidence(em, o.orgId, `connector = $4`, [o.from, o.to], [c.connector]),
    });
  }

  // 6. Mass deletes, sends and external shares: actions in one clock hour against the user's busiest hour before.
  const SHARES = `('drive.update', 'drive.create', 'saas.write', 'file.update')`;
  const mass: { u: string; kind: 'mass_delete' | 'mass_send' | 'bulk_external_share'; hour: Date; period: boolean; n: string }[] = await em.query(
    `SELECT subject_id AS u, CASE WHEN action = 'file.delete' THEN 'mass_delete' WHEN action IN ('email.send', 'chat.send') THEN 'mass_send' ELSE 'bulk_external_share' END AS kind,
            date_trunc('hour', occurred_at) AS hour, false AS period, count(*) AS n
       FROM audit_events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ${DECISIONS} AND subject_id IS NOT NULL
        AND action IN ('file.delete', 'email.send', 'chat.send', 'drive.update', 'drive.create', 'saas.write', 'file.update')
      GROUP BY 1, 2, 3`,
    [o.orgId, baselineFrom, o.from],
  );
  // In the period, shares count only when they went outside the org (the recorded recipient scope).
  mass.push(
    ...(await em.query(
      `SELECT subject_id AS u, CASE WHEN action = 'file.delete' THEN 'mass_delete' WHEN action IN ('email.send', 'chat.send') THEN 'mass_send' ELSE 'bulk_external_share' END AS kind,
              date_trunc('hour', occurred_at) AS hour, true AS period, count(*) AS n
         FROM audit_events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ${DECISIONS} AND subject_id IS NOT NULL
          AND (action IN ('file.delete', 'email.send', 'chat.send')
               OR (action IN ${SHARES} AND (canonical::jsonb)->'payload'->'facts'->>'recipientScope' = 'external'))
        GROUP BY 1, 2, 3`,
      [o.orgId, o.from, o.to],
    )),
  );
  const busiest = new Map<string, number>();
  const peaks = new Map<string, { hour: Date; n: number }>();
  for (const m of mass) {
    const key = `${m.u}|${m.kind}`;
    const n = Number(m.n);
    if (!m.period) busiest.set(key, Math.max(busiest.get(key) ?? 0, n));
    else if (n > (peaks.get(key)?.n ?? 0)) peaks.set(key, { hour: new Date(m.hour), n });
  }
  for (const [key, peak] of peaks) {
    const [u, kind] = key.split('|') as [string, 'mass_delete' | 'mass_send' | 'bulk_external_share'];
    const floor = kind === 'mass_delete' ? THRESHOLDS.massDelete : kind === 'mass_send' ? THRESHOLDS.massSend : THRESHOLDS.massShare;
    const before = busiest.get(key) ?? 0;
    if (peak.n < floor || peak.n < THRESHOLDS.massRatio * Math.max(before, 1)) continue;
    const cond =
      kind === 'mass_delete'
        ? `action = 'file.delete'`
        : kind === 'mass_send'
          ? `action IN ('email.send', 'chat.send')`
          : `action IN ${SHARES} AND (canonical::jsonb)->'payload'->'facts'->>'recipientScope' = 'external'`;
    const words = kind === 'mass_delete' ? 'deletions' : kind === 'mass_send' ? 'messages sent' : 'items shared outside the org';
    findings.push({
      kind,
      severity: peak.n >= 3 * floor ? 'high' : 'medium',
      subject: { type: 'user', id: u },
      title: `${peak.n} ${words} within the hour from ${peak.hour.toISOString().slice(0, 16).replace('T', ' ')} UTC (busiest hour before: ${before})`,
      observed: { hour: peak.hour.toISOString(), count: peak.n },
      baseline: { description: kind === 'bulk_external_share' ? 'the user’s busiest hour of shares (any recipients) before the period' : 'the user’s busiest hour before the period', busiestHour: before, floor },
      evidence: await evidence(em, o.orgId, `${USER} = $4 AND ${DECISIONS} AND ${cond}`, [peak.hour, new Date(peak.hour.getTime() + 3_600_000)], [u]),
    });
  }

  // 7. Cost spikes: the model cost of a user's tasks per local day, against the user's own days.
  const costs: { u: string; d: string; micros: string }[] = await em.query(
    `SELECT u, local::date::text AS d, sum(cost_micros)::text AS micros
       FROM (SELECT user_id AS u, created_at AT TIME ZONE $4 AS local, cost_micros FROM tasks WHERE org_id = $1 AND created_at >= $2 AND created_at < $3 OFFSET 0) x
      GROUP BY u, local::date`,
    [o.orgId, baselineFrom, o.to, tz],
  );
  const costBy = new Map<string, { d: string; v: number }[]>();
  for (const c of costs) {
    let l = costBy.get(c.u);
    if (!l) costBy.set(c.u, (l = []));
    l.push({ d: c.d, v: Number(c.micros) });
  }
  for (const [u, days] of costBy) {
    const hist = days.filter((x) => x.d < periodFirstDay).map((x) => x.v);
    if (hist.length < THRESHOLDS.minHistoryDays) continue;
    const base = baselineOf(hist);
    let worst: { d: string; v: number; z: number } | null = null;
    for (const x of days) {
      if (x.d < periodFirstDay) continue;
      const z = robustZ(x.v, base);
      if (x.v >= THRESHOLDS.costMin && x.v >= THRESHOLDS.costRatio * base.median && z >= THRESHOLDS.costZ && (!worst || z > worst.z)) worst = { ...x, z };
    }
    if (!worst) continue;
    const series = days.filter((x) => x.d >= addDays(periodFirstDay, -60)).sort((a, b) => (a.d < b.d ? -1 : 1));
    // The day's costliest tasks, and their events.
    const top: { id: string }[] = await em.query(
      `SELECT id FROM tasks WHERE org_id = $1 AND user_id = $2 AND created_at >= $3 AND created_at < $4 AND (created_at AT TIME ZONE $5)::date::text = $6 ORDER BY cost_micros DESC LIMIT 5`,
      [o.orgId, u, ...dayRange(worst.d), tz, worst.d],
    );
    const ids = top.map((t) => t.id);
    const taskEvents: { id: string }[] = await em.query(
      `SELECT id FROM audit_events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND task_id = ANY($4::uuid[]) ORDER BY occurred_at LIMIT 20`,
      [o.orgId, ...dayRange(worst.d), ids],
    );
    findings.push({
      kind: 'cost_spike',
      severity: severityOf(worst.z, 50, 20),
      subject: { type: 'user', id: u },
      title: `model cost $${round(worst.v / 1e6, 2)} on ${worst.d} (usually $${round(base.median / 1e6, 2)} a day)`,
      observed: { day: worst.d, costUsd: round(worst.v / 1e6, 2), tasks: ids.join(',') },
      baseline: { ...baselineFields('the user’s own days with tasks before the period', base), unit: 'micro-dollars' },
      score: round(worst.z, 1),
      evidence: { eventIds: taskEvents.map((t) => t.id), total: taskEvents.length },
      series: { label: 'model cost per day (USD)', values: series.map((x) => round(x.v / 1e6, 2)), markFrom: series.findIndex((x) => x.d >= periodFirstDay) },
    });
  }

  // 8. Policies past their review date, and 9. users with strikes.
  const overdue: { id: string; version: number; review_due_at: Date }[] = await em.query(
    `SELECT id, version, review_due_at FROM policies WHERE org_id = $1 AND status = 'active' AND review_due_at IS NOT NULL AND review_due_at < $2`,
    [o.orgId, o.to],
  );
  for (const p of overdue) {
    const late = Math.floor((o.to.getTime() - new Date(p.review_due_at).getTime()) / DAY);
    // The version's own events (creation, changes, activation): admin operations named policy.*.
    const events: { id: string }[] = await em.query(
      `SELECT id FROM audit_events WHERE org_id = $1 AND action >= 'policy.' AND action < 'policy/' AND target_id = $2 ORDER BY occurred_at DESC LIMIT 20`,
      [o.orgId, p.id],
    );
    findings.push({
      kind: 'policy_review_overdue',
      severity: late > 30 ? 'high' : 'medium',
      subject: { type: 'policy', id: p.id, label: `version ${p.version}` },
      title: `the active policy (version ${p.version}) was due for review on ${new Date(p.review_due_at).toISOString().slice(0, 10)}`,
      observed: { reviewDueAt: new Date(p.review_due_at).toISOString(), daysLate: late },
      baseline: { description: 'the review cadence of the company policy (every six months)' },
      evidence: { eventIds: events.map((e) => e.id), total: events.length },
    });
  }
  const strikes: { user_id: string; n: string; attempts: { type: string; at: string }[] }[] = await em.query(
    `SELECT user_id, count(*) AS n, json_agg(json_build_object('type', action_type, 'at', created_at) ORDER BY decided_at) AS attempts FROM violations
      WHERE org_id = $1 AND state = 'confirmed' AND decided_at < $2 AND decided_at >= $2 - interval '365 days' GROUP BY user_id`,
    [o.orgId, o.to],
  );
  for (const s of strikes) {
    const n = Number(s.n);
    // The refused attempts themselves: the user's denied events of that action type at the violation's time.
    const events: { id: string }[] = [];
    for (const a of s.attempts.slice(0, 20)) {
      const at = new Date(a.at);
      events.push(
        ...(await em.query(
          `SELECT id FROM audit_events WHERE org_id = $1 AND subject_id = $2 AND action = $3 AND outcome = 'denied' AND decision IS NOT NULL
              AND occurred_at >= $4 AND occurred_at <= $5 ORDER BY occurred_at DESC LIMIT 1`,
          [o.orgId, s.user_id, a.type, new Date(at.getTime() - 3_600_000), new Date(at.getTime() + 3_600_000)],
        )),
      );
    }
    findings.push({
      kind: 'user_strikes',
      severity: n >= 3 ? 'high' : n === 2 ? 'medium' : 'low',
      subject: { type: 'user', id: s.user_id },
      title: `${n} confirmed violation${n === 1 ? '' : 's'} in the last 12 months (${n >= 3 ? 'disciplinary review' : n === 2 ? 'agent access suspended' : 'warning'})`,
      observed: { strikes: n },
      baseline: { description: 'the sanctions ladder: first a warning, second a suspension, third a disciplinary review' },
      evidence: { eventIds: events.map((e) => e.id), total: n },
    });
  }

  // Names for people.
  const ids = [...new Set(findings.filter((f) => f.subject.type === 'user').map((f) => f.subject.id))];
  if (ids.length) {
    const people: { id: string; email: string }[] = await em.query(
      `SELECT u.id, u.email FROM users u JOIN memberships m ON m.user_id = u.id AND m.org_id = $1 WHERE u.id = ANY($2::uuid[])`,
      [o.orgId, ids],
    );
    const emails = new Map(people.map((p) => [p.id, p.email]));
    for (const f of findings) if (f.subject.type === 'user' && emails.has(f.subject.id)) f.subject.label = emails.get(f.subject.id);
  }
  const [{ n: users }] = await em.query(`SELECT count(*)::int AS n FROM memberships WHERE org_id = $1 AND status = 'active'`, [o.orgId]);
  const order: Record<Severity, number> = { high: 0, medium: 1, low: 2 };
  findings.sort((a, b) => order[a.severity] - order[b.severity] || a.kind.localeCompare(b.kind) || (b.score ?? 0) - (a.score ?? 0));
  return {
    orgId: o.orgId,
    timeZone: tz,
    from: o.from.toISOString(),
    to: o.to.toISOString(),
    baselineFrom: baselineFrom.toISOString(),
    generatedAt: (o.now ?? new Date()).toISOString(),
    users,
    eventsScanned,
    findings,
  };
}

/** The approval events (approve or reject) of these approvals, by this approver when given. */
async function approvalEvidence(em: EntityManager, o: ReportOptions, approvalIds: string[], approver: string | null): Promise<{ eventIds: string[]; total: number }> {
  const rows: { id: string }[] = await em.query(
    `SELECT id FROM audit_events WHERE org_id = $1 AND action IN ('approval.approve', 'approval.reject') AND occurred_at >= $2 AND occurred_at < $3
        AND target_id = ANY($4::uuid[])${approver ? ' AND actor_id = $5' : ''} ORDER BY occurred_at LIMIT 20`,
    [o.orgId, o.from, o.to, approvalIds.slice(0, 200), ...(approver ? [approver] : [])],
  );
  return { eventIds: rows.map((r) => r.id), total: approvalIds.length };
}

function baselineFields(description: string, b: Baseline) {
  return { description, median: round(b.median, 2), mad: round(b.mad, 2), days: b.n };
}

/** Up to 20 event ids (and the count) matching a condition in a time range; $1 org, $2/$3 range, then the extra parameters. */
async function evidence(em: EntityManager, orgId: string, where: string, range: [Date, Date], params: unknown[]): Promise<{ eventIds: string[]; total: number }> {
  const rows: { id: string; total: string }[] = await em.query(
    `SELECT id, count(*) OVER () AS total FROM audit_events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ${where} ORDER BY occurred_at, id LIMIT 20`,
    [orgId, range[0], range[1], ...params],
  );
  return { eventIds: rows.map((r) => r.id), total: rows.length ? Number(rows[0].total) : 0 };
}

function localDay(at: Date, tz: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
  return parts;
}

function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY).toISOString().slice(0, 10);
}

/** A local day as an instant range, widened by the largest zone offsets (evidence queries filter exactly by the other conditions). */
function dayRange(day: string): [Date, Date] {
  const start = Date.parse(`${day}T00:00:00Z`);
  return [new Date(start - 14 * 3_600_000), new Date(start + DAY + 14 * 3_600_000)];
}
