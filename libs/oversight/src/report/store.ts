import type { DataSource, EntityManager } from 'typeorm';
import { type AuditKeyring, recordEvent } from '@steward/audit';
import { newId } from '@steward/common';
import { inOrg, outsideOrg } from '@steward/db';
import { monthStart } from '../zone';
import { buildAnomalyReport } from './anomalies';
import type { AnomalyReport, Finding } from './findings';

/** Stored reports and the monthly schedule (swept from Postgres by the worker, like task schedules). */

export interface StoredReportMeta {
  id: string;
  periodFrom: Date;
  periodTo: Date;
  timeZone: string;
  trigger: 'schedule' | 'manual';
  requestedBy: string | null;
  findings: number;
  high: number;
  eventsScanned: number;
  durationMs: number;
  createdAt: Date;
}

/** A report reads months of the trail: more time than an API statement gets by default. */
export const REPORT_STATEMENT_TIMEOUT = '10min';

/** Builds the report of a period and stores it, in the caller's transaction; the caller records the audit event. */
export async function generateReport(
  em: EntityManager,
  o: { orgId: string; from: Date; to: Date; timeZone: string; trigger: 'schedule' | 'manual'; requestedBy: string | null; now?: Date },
): Promise<{ id: string; report: AnomalyReport; meta: StoredReportMeta }> {
  // Months of actions grouped in memory (hash aggregates), and more time than an API statement gets.
  await em.query(`SELECT set_config('statement_timeout', $1, true), set_config('work_mem', '256MB', true)`, [REPORT_STATEMENT_TIMEOUT]);
  const t0 = Date.now();
  const report = await buildAnomalyReport(em, { orgId: o.orgId, from: o.from, to: o.to, timeZone: o.timeZone, now: o.now });
  const durationMs = Date.now() - t0;
  const id = newId(o.now?.getTime());
  const high = report.findings.filter((f) => f.severity === 'high').length;
  const [row] = await em.query(
    `INSERT INTO anomaly_reports (org_id, id, period_from, period_to, time_zone, trigger, requested_by, findings, high, events_scanned, duration_ms, report, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING created_at`,
    [o.orgId, id, o.from, o.to, o.timeZone, o.trigger, o.requestedBy, report.findings.length, high, report.eventsScanned, durationMs, JSON.stringify(report), o.now ?? new Date()],
  );
  return {
    id,
    report,
    meta: { id, periodFrom: o.from, periodTo: o.to, timeZone: o.timeZone, trigger: o.trigger, requestedBy: o.requestedBy, findings: report.findings.length, high, eventsScanned: report.eventsScanned, durationMs, createdAt: row.created_at },
  };
}

/** When the monthly report of an org in `timeZone` next runs after `after`: the 1st of the next month, 01:00 local. */
export function nextMonthlyRun(timeZone: string, after: Date): Date {
  return new Date(monthStart(timeZone, after, 1).getTime() + 3_600_000);
}

/** The month a run at `at` reports on: the calendar month before it, in the org's zone. */
export function previousMonth(timeZone: string, at: Date): { from: Date; to: Date } {
  return { from: monthStart(timeZone, at, -1), to: monthStart(timeZone, at, 0) };
}

export interface DueDeps {
  ds: DataSource;
  keyring: AuditKeyring;
  /** Called in the report's transaction with its high-severity findings (the worker opens an incident for each). */
  onHighFindings?: (em: EntityManager, o: { orgId: string; reportId: string; findings: Finding[]; now: Date }) => Promise<void>;
  log?: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void };
  now?: () => Date;
}

/**
 * Generates every due monthly report (each org in its own transaction, its schedule row locked so
 * two workers never run one twice) and moves the schedule to the next month. Missed months are not
 * caught up one by one: a run reports on the month before it.
 */
export async function runDueReports(deps: DueDeps, limit = 20): Promise<number> {
  const due: { org_id: string }[] = await outsideOrg(deps.ds, (em) => em.query('SELECT org_id FROM steward_reports_due($1)', [limit]));
  let made = 0;
  for (const d of due) {
    try {
      const done = await inOrg(deps.ds, { orgId: d.org_id }, async (em) => {
        const [s]: { time_zone: string; next_run_at: Date }[] = await em.query(
          `SELECT time_zone, next_run_at FROM report_schedules WHERE org_id = $1 AND enabled AND next_run_at <= now() AND (retry_at IS NULL OR retry_at <= now()) FOR UPDATE SKIP LOCKED`,
          [d.org_id],
        );
        if (!s) return false;
        const now = deps.now?.() ?? new Date();
        const { from, to } = previousMonth(s.time_zone, new Date(s.next_run_at));
        const { id, meta, report } = await generateReport(em, { orgId: d.org_id, from, to, timeZone: s.time_zone, trigger: 'schedule', requestedBy: null, now });
        const next = nextMonthlyRun(s.time_zone, now);
        await em.query(`UPDATE report_schedules SET next_run_at = $2, last_run_at = $3, last_report_id = $4, failures = 0, retry_at = NULL, last_error = NULL, updated_at = now() WHERE org_id = $1`, [d.org_id, next, now, id]);
        await recordEvent(em, deps.keyring, {
          id: newId(),
          orgId: d.org_id,
          occurredAt: now,
          actor: { type: 'system', id: null },
          action: 'report.generate',
          target: { type: 'AnomalyReport', id },
          outcome: 'success',
          client: 'worker',
          payload: { trigger: 'schedule', from: from.toISOString(), to: to.toISOString(), timeZone: s.time_zone, findings: meta.findings, high: meta.high, nextRunAt: next.toISOString() },
        });
        const high = report.findings.filter((f) => f.severity === 'high');
        if (high.length && deps.onHighFindings) await deps.onHighFindings(em, { orgId: d.org_id, reportId: id, findings: high, now });
        deps.log?.info({ orgId: d.org_id, reportId: id, findings: meta.findings }, 'monthly anomaly report generated');
        return true;
      });
      if (done) made++;
    } catch (err) {
      // Held back before it is tried again, longer each time (5 minutes, doubling, at most 6 hours):
      // a report that keeps failing does not take the worker's time at every tick.
      const message = (err as Error).message ?? String(err);
      const [r]: { failures: number; retry_at: Date }[] = await inOrg(deps.ds, { orgId: d.org_id }, (em) =>
        em.query(
          `WITH u AS (UPDATE report_schedules SET failures = failures + 1, last_error = $2,
                        retry_at = now() + least(interval '6 hours', interval '5 minutes' * power(2, least(failures, 10))), updated_at = now()
                      WHERE org_id = $1 RETURNING failures, retry_at) SELECT * FROM u`,
          [d.org_id, message.slice(0, 1000)],
        ),
      ).catch(() => []);
      deps.log?.warn({ err: message, orgId: d.org_id, failures: r?.failures, retryAt: r?.retry_at }, 'monthly anomaly report failed (retried later, with backoff)');
    }
  }
  return made;
}
