import { Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { AppError, UUID_PATTERN } from '@steward/common';
import { type EntityManager, Org, PolicyVersion } from '@steward/db';
import type { PolicyDocument } from '@steward/policy';
import { type AnomalyReport, generateReport, isTimeZone, monthStart, nextMonthlyRun, previousMonth, replayPolicy, reportCsv, reportHtml, wallClock, zonedMidnight } from '@steward/oversight';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { CreateReportBody, ListReportsQuery, ReplayBody, ReportSummaryView, UpdateReportScheduleBody } from './reports.schemas';

interface ReportRow {
  id: string;
  period_from: Date;
  period_to: Date;
  time_zone: string;
  trigger: 'schedule' | 'manual';
  requested_by: string | null;
  findings: number;
  high: number;
  events_scanned: string;
  duration_ms: number;
  created_at: Date;
}

const COLUMNS = 'id, period_from, period_to, time_zone, trigger, requested_by, findings, high, events_scanned, duration_ms, created_at';
const MAX_PERIOD_DAYS = 366;

/**
 * The anomaly report (libs/oversight): generated on demand for any period or by the worker on the
 * 1st of each month in the org's zone; stored, listed, downloaded as HTML, CSV or JSON; and the
 * policy replay. RBAC: the AnomalyReport subject (IT admins, security, owners; auditors read); a
 * replay reads the whole trail, so it needs `read` on both Policy and AuditEvent. Generation,
 * schedule changes, downloads and replays are audit events.
 */
@Injectable()
export class ReportsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  private summary(r: ReportRow): z.infer<typeof ReportSummaryView> {
    return {
      id: r.id,
      from: r.period_from.toISOString(),
      to: r.period_to.toISOString(),
      timeZone: r.time_zone,
      trigger: r.trigger,
      requestedBy: r.requested_by,
      findings: r.findings,
      high: r.high,
      eventsScanned: Number(r.events_scanned),
      durationMs: r.duration_ms,
      createdAt: r.created_at.toISOString(),
    };
  }

  private async zoneOf(em: EntityManager, orgId: string): Promise<string> {
    const [s] = await em.query(`SELECT time_zone FROM report_schedules WHERE org_id = $1`, [orgId]);
    return s?.time_zone ?? 'UTC';
  }

  async create(p: Principal, body: z.infer<typeof CreateReportBody>) {
    await this.access.authorize(p, 'create', 'AnomalyReport');
    if (body.timeZone && !isTimeZone(body.timeZone)) throw AppError.validation([{ path: 'timeZone', message: 'not a time zone this server knows' }]);
    return this.db.inOrg(p, async (em) => {
      const timeZone = body.timeZone ?? (await this.zoneOf(em, p.orgId));
      const now = new Date();
      const from = body.from ? new Date(body.from) : monthStart(timeZone, now, -1);
      const to = body.to ? new Date(body.to) : body.from ? now : monthStart(timeZone, now, 0);
      const problems = [];
      if (!(to > from)) problems.push({ path: 'to', message: 'must be after from' });
      if (to.getTime() - from.getTime() > MAX_PERIOD_DAYS * 86_400_000) problems.push({ path: 'to', message: `a period is at most ${MAX_PERIOD_DAYS} days` });
      if (from > now) problems.push({ path: 'from', message: 'must not be in the future' });
      if (problems.length) throw AppError.validation(problems);
      // One report of an org at a time (each holds a pooled connection for as long as it takes): a
      // burst of year-long reports from one org cannot hold the connections every org's requests need.
      const [{ free }]: { free: boolean }[] = await em.query(`SELECT pg_try_advisory_xact_lock(hashtextextended('steward:report:' || $1, 0)) AS free`, [p.orgId]);
      if (!free) throw AppError.conflict('A report of this org is being generated: wait for it, then ask again.');
      const { id, report, meta } = await generateReport(em, { orgId: p.orgId, from, to, timeZone, trigger: 'manual', requestedBy: p.userId });
      await this.audit.record(em, p, {
        action: 'report.generate',
        targetType: 'AnomalyReport',
        targetId: id,
        payload: { trigger: 'manual', from: from.toISOString(), to: to.toISOString(), timeZone, findings: meta.findings, high: meta.high },
      });
      return this.full(await this.load(em, p, id), report);
    });
  }

  private full(row: ReportRow, report: AnomalyReport) {
    return { ...this.summary(row), baselineFrom: report.baselineFrom, users: report.users, findingList: report.findings };
  }

  private async load(em: EntityManager, p: Principal, id: string): Promise<ReportRow> {
    const [row]: ReportRow[] = UUID_PATTERN.test(id) ? await em.query(`SELECT ${COLUMNS} FROM anomaly_reports WHERE org_id = $1 AND id = $2`, [p.orgId, id]) : [];
    if (!row) throw AppError.notFound('report');
    return row;
  }

  private async document(em: EntityManager, p: Principal, id: string): Promise<AnomalyReport> {
    const [row] = await em.query(`SELECT report FROM anomaly_reports WHERE org_id = $1 AND id = $2`, [p.orgId, id]);
    return row.report as AnomalyReport;
  }

  async list(p: Principal, q: z.infer<typeof ListReportsQuery>) {
    await this.access.authorize(p, 'read', 'AnomalyReport');
    const params: unknown[] = [p.orgId];
    const where = ['org_id = $1'];
    if (q.cursor) {
      const id = Buffer.from(q.cursor, 'base64url').toString('utf8');
      if (!UUID_PATTERN.test(id)) throw AppError.validation([{ path: 'cursor', message: 'not a cursor this API returned' }]);
      where.push(`id < $${params.push(id)}`);
    }
    return this.db.inOrg(p, async (em) => {
      const rows: ReportRow[] = await em.query(`SELECT ${COLUMNS} FROM anomaly_reports WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.push(q.limit + 1)}`, params);
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit);
      return { items: items.map((r) => this.summary(r)), nextCursor: more ? Buffer.from(items[items.length - 1].id).toString('base64url') : null };
    });
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'AnomalyReport');
    return this.db.inOrg(p, async (em) => {
      const row = await this.load(em, p, id);
      await this.audit.record(em, p, { action: 'report.read', targetType: 'AnomalyReport', targetId: id, payload: { format: 'view' } });
      return this.full(row, await this.document(em, p, id));
    });
  }

  async download(p: Principal, id: string, format: 'html' | 'csv' | 'json', res: Response): Promise<void> {
    await this.access.authorize(p, 'read', 'AnomalyReport');
    const { report, orgName, row } = await this.db.inOrg(p, async (em) => {
      const r = await this.load(em, p, id);
      const org = await em.findOneByOrFail(Org, { id: p.orgId });
      await this.audit.record(em, p, { action: 'report.download', targetType: 'AnomalyReport', targetId: id, payload: { format } });
      return { row: r, report: await this.document(em, p, id), orgName: org.name };
    });
    const name = `anomaly-report-${row.period_from.toISOString().slice(0, 10)}-${row.period_to.toISOString().slice(0, 10)}`;
    res.status(200);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (format === 'html') {
      // A self-contained page: nothing it may load from elsewhere (charts are inline SVG).
      res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Content-Disposition', `inline; filename="${name}.html"`);
      res.end(reportHtml({ ...report, id }, orgName, (eventId) => `/v1/audit-events/${eventId}`));
    } else if (format === 'csv') {
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="${name}.csv"`);
      res.end(reportCsv(report));
    } else {
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="${name}.json"`);
      res.end(JSON.stringify({ id, ...report }, null, 2));
    }
  }

  private scheduleView(s: { time_zone: string; enabled: boolean; next_run_at: Date; last_run_at: Date | null; last_report_id: string | null; failures: number; last_error: string | null } | undefined) {
    return {
      timeZone: s?.time_zone ?? null,
      enabled: s?.enabled ?? false,
      nextRunAt: s?.enabled ? s.next_run_at.toISOString() : null,
      lastRunAt: s?.last_run_at?.toISOString() ?? null,
      lastReportId: s?.last_report_id ?? null,
      failures: s?.failures ?? 0,
      lastError: s?.last_error ?? null,
    };
  }

  async schedule(p: Principal) {
    await this.access.authorize(p, 'read', 'AnomalyReport');
    return this.db.inOrg(p, async (em) => {
      const [s] = await em.query(`SELECT time_zone, enabled, next_run_at, last_run_at, last_report_id, failures, last_error FROM report_schedules WHERE org_id = $1`, [p.orgId]);
      return this.scheduleView(s);
    });
  }

  async setSchedule(p: Principal, body: z.infer<typeof UpdateReportScheduleBody>) {
    await this.access.authorize(p, 'schedule', 'AnomalyReport');
    if (!isTimeZone(body.timeZone)) throw AppError.validation([{ path: 'timeZone', message: 'not a time zone this server knows' }]);
    return this.db.inOrg(p, async (em) => {
      const now = new Date();
      let next = nextMonthlyRun(body.timeZone, now);
      const [before]: { time_zone: string; enabled: boolean; next_run_at: Date; last_period_to: Date | null }[] = await em.query(
        `SELECT s.time_zone, s.enabled, s.next_run_at, r.period_to AS last_period_to FROM report_schedules s
           LEFT JOIN anomaly_reports r ON r.org_id = s.org_id AND r.id = s.last_report_id
          WHERE s.org_id = $1 FOR UPDATE OF s`,
        [p.orgId],
      );
      // A run that came due and is not made yet (a moment ago, or failing and retried) stays due: saving
      // the schedule must not skip a month. And a month already reported (in the zone it had then) is
      // not reported again in the new zone: the next run is then the one after.
      if (before?.enabled && body.enabled && new Date(before.next_run_at) <= now) {
        // The month that run reports (in the zone it came due in) is still the one reported, in the new
        // zone once that month has ended there (the same run when the zone stays): never the month before it again.
        const month = wallClock(before.time_zone, previousMonth(before.time_zone, new Date(before.next_run_at)).from);
        next = body.timeZone === before.time_zone ? new Date(before.next_run_at) : new Date(zonedMidnight(body.timeZone, month.getUTCFullYear(), month.getUTCMonth() + 1, 1).getTime() + 3_600_000);
      } else if (before?.last_period_to) {
        for (let i = 0; i < 2 && previousMonth(body.timeZone, next).from < new Date(before.last_period_to); i++) next = nextMonthlyRun(body.timeZone, new Date(next.getTime() + 60_000));
      }
      const [s] = await em.query(
        `INSERT INTO report_schedules (org_id, time_zone, enabled, next_run_at, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (org_id) DO UPDATE SET time_zone = $2, enabled = $3, next_run_at = $4, updated_by = $5, updated_at = now()
         RETURNING time_zone, enabled, next_run_at, last_run_at, last_report_id, failures, last_error`,
        [p.orgId, body.timeZone, body.enabled, next, p.userId],
      );
      await this.audit.record(em, p, {
        action: 'report.schedule',
        targetType: 'Org',
        targetId: p.orgId,
        payload: { before: before ? { timeZone: before.time_zone, enabled: before.enabled } : null, after: { timeZone: body.timeZone, enabled: body.enabled }, nextRunAt: next.toISOString() },
      });
      return this.scheduleView(s);
    });
  }

  async replay(p: Principal, id: string, body: z.infer<typeof ReplayBody>) {
    await this.access.authorize(p, 'read', 'Policy');
    await this.access.authorize(p, 'read', 'AuditEvent');
    const version = await this.db.inOrg(p, async (em) => {
      const v = UUID_PATTERN.test(id) ? await em.findOneBy(PolicyVersion, { orgId: p.orgId, id }) : null;
      if (!v) throw AppError.notFound('policy');
      // The read of the trail is audited before it happens (the replay reads in several transactions).
      await this.audit.record(em, p, { action: 'policy.replay', targetType: 'Policy', targetId: v.id, payload: { version: v.version, status: v.status, days: body.days } });
      return v;
    });
    const result = await replayPolicy(this.db.dataSource, { orgId: p.orgId, policy: version.document as unknown as PolicyDocument, days: body.days, examples: body.examples });
    const emails = await this.db.inOrg(p, async (em) => {
      const ids = result.byUser.map((u) => u.user);
      const rows: { id: string; email: string }[] = ids.length
        ? await em.query(`SELECT u.id, u.email FROM users u JOIN memberships m ON m.user_id = u.id AND m.org_id = $1 WHERE u.id = ANY($2::uuid[])`, [p.orgId, ids])
        : [];
      return new Map(rows.map((r) => [r.id, r.email]));
    });
    return {
      policyId: version.id,
      version: version.version,
      status: version.status,
      ...result,
      byUser: result.byUser.map((u) => ({ ...u, email: emails.get(u.user) ?? null })),
    };
  }
}
