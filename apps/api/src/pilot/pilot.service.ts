import { Injectable } from '@nestjs/common';
import { AppError, UUID_PATTERN } from '@steward/common';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { PILOT_THRESHOLDS, pilotDecision } from './decision';
import type { BaselineBody, PilotMetricsQuery, PilotMetricsView, RateTaskBody } from './pilot.schemas';

const iso = (d: Date) => new Date(d).toISOString();

/**
 * Pilot metrics per workflow (the seed's 30-day pilot): tasks run, completion rate, time saved
 * (the org's manual baseline minutes × completed tasks), satisfaction (1–5 ratings per task from
 * any client) and the decision the seed's thresholds give.
 */
@Injectable()
export class PilotService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  /** The employee who ran the task rates it, once (a new rating replaces theirs). */
  async rate(p: Principal, taskId: string, body: z.infer<typeof RateTaskBody>) {
    await this.access.authorize(p, 'read', 'Task');
    return this.db.inOrg(p, async (em) => {
      const [t]: { user_id: string; state: string }[] = UUID_PATTERN.test(taskId) ? await em.query(`SELECT user_id, state FROM tasks WHERE org_id = $1 AND id = $2`, [p.orgId, taskId]) : [];
      if (!t) throw AppError.notFound('task');
      await this.access.authorize(p, 'read', 'Task', { id: taskId, userId: t.user_id });
      if (t.user_id !== p.userId) throw AppError.forbidden('Only the employee who ran the task rates it.');
      if (!['completed', 'failed', 'cancelled', 'in_review'].includes(t.state)) throw AppError.conflict(`The task is still ${t.state}: rate it when it has finished.`);
      const [r]: { rating: number; comment: string | null; client: string; created_at: Date; updated_at: Date }[] = await em.query(
        `INSERT INTO task_ratings (org_id, task_id, user_id, rating, comment, client) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (org_id, task_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, client = EXCLUDED.client, updated_at = now()
         RETURNING rating, comment, client, created_at, updated_at`,
        [p.orgId, taskId, p.userId, body.rating, body.comment ?? null, p.client],
      );
      await this.audit.record(em, p, { action: 'task.rate', targetType: 'Task', targetId: taskId, payload: { rating: body.rating, commented: Boolean(body.comment) } });
      return { taskId, userId: p.userId, rating: r.rating, comment: r.comment, client: r.client, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) };
    });
  }

  async setBaseline(p: Principal, workflowId: string, body: z.infer<typeof BaselineBody>) {
    await this.access.authorize(p, 'update', 'Workflow');
    return this.db.inOrg(p, async (em) => {
      const [w]: { key: string }[] = UUID_PATTERN.test(workflowId) ? await em.query(`SELECT key FROM workflows WHERE org_id = $1 AND id = $2`, [p.orgId, workflowId]) : [];
      if (!w) throw AppError.notFound('workflow');
      const [before]: { manual_minutes: number }[] = await em.query(`SELECT manual_minutes FROM pilot_baselines WHERE org_id = $1 AND workflow_key = $2`, [p.orgId, w.key]);
      const [r]: { updated_at: Date }[] = await em.query(
        `INSERT INTO pilot_baselines (org_id, workflow_key, manual_minutes, updated_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (org_id, workflow_key) DO UPDATE SET manual_minutes = EXCLUDED.manual_minutes, updated_by = EXCLUDED.updated_by, updated_at = now() RETURNING updated_at`,
        [p.orgId, w.key, body.manualMinutes, p.userId],
      );
      await this.audit.record(em, p, { action: 'workflow.set_baseline', targetType: 'Workflow', targetId: workflowId, payload: { workflow: w.key, manualMinutes: body.manualMinutes, previous: before?.manual_minutes ?? null } });
      return { workflow: w.key, manualMinutes: body.manualMinutes, updatedAt: iso(r.updated_at) };
    });
  }

  async metrics(p: Principal, q: z.infer<typeof PilotMetricsQuery>): Promise<z.infer<typeof PilotMetricsView>> {
    // Oversight data (completion, satisfaction, time saved per workflow): the roles that read anomaly reports.
    await this.access.authorize(p, 'read', 'Workflow');
    await this.access.authorize(p, 'read', 'AnomalyReport');
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 30 * 86_400_000);
    return this.db.inOrg(p, async (em) => {
      const rows: {
        key: string; name: string; manual_minutes: number | null; run: number; completed: number; failed: number; cancelled: number; in_review: number; ratings: number; satisfaction: string | null; incidents: number;
      }[] = await em.query(
        `SELECT w.key, w.name, b.manual_minutes,
                coalesce(t.run, 0)::int AS run, coalesce(t.completed, 0)::int AS completed, coalesce(t.failed, 0)::int AS failed,
                coalesce(t.cancelled, 0)::int AS cancelled, coalesce(t.in_review, 0)::int AS in_review,
                coalesce(r.n, 0)::int AS ratings, r.avg AS satisfaction, coalesce(i.n, 0)::int AS incidents
           FROM workflows w
           LEFT JOIN pilot_baselines b ON b.org_id = w.org_id AND b.workflow_key = w.key
           LEFT JOIN LATERAL (
             SELECT count(*) FILTER (WHERE state IN ('completed', 'failed', 'cancelled', 'in_review')) AS run,
                    count(*) FILTER (WHERE state = 'completed') AS completed, count(*) FILTER (WHERE state = 'failed') AS failed,
                    count(*) FILTER (WHERE state = 'cancelled') AS cancelled, count(*) FILTER (WHERE state = 'in_review') AS in_review
               FROM tasks WHERE org_id = w.org_id AND workflow = w.key AND created_at >= $2 AND created_at < $3) t ON true
           LEFT JOIN LATERAL (
             SELECT count(*) AS n, avg(tr.rating) AS avg FROM task_ratings tr JOIN tasks tk ON tk.org_id = tr.org_id AND tk.id = tr.task_id
              WHERE tr.org_id = w.org_id AND tk.workflow = w.key AND tk.created_at >= $2 AND tk.created_at < $3) r ON true
           LEFT JOIN LATERAL (
             SELECT count(*) AS n FROM incidents inc JOIN tasks tk ON tk.org_id = inc.org_id AND tk.id = inc.task_id
              WHERE inc.org_id = w.org_id AND tk.workflow = w.key AND inc.created_at >= $2 AND inc.created_at < $3) i ON true
          WHERE w.org_id = $1 ORDER BY w.key LIMIT 1000`,
        [p.orgId, from, to],
      );
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        thresholds: { ...PILOT_THRESHOLDS },
        workflows: rows.map((r) => {
          const completionRate = r.run ? r.completed / r.run : null;
          const satisfaction = r.satisfaction === null ? null : Math.round(Number(r.satisfaction) * 100) / 100;
          const d = pilotDecision({ tasksRun: r.run, completionRate, satisfaction, incidents: r.incidents });
          return {
            workflow: r.key,
            name: r.name,
            tasksRun: r.run,
            completed: r.completed,
            failed: r.failed,
            cancelled: r.cancelled,
            inReview: r.in_review,
            completionRate,
            manualBaselineMinutes: r.manual_minutes,
            timeSavedMinutes: r.manual_minutes === null ? null : r.manual_minutes * r.completed,
            ratings: r.ratings,
            satisfaction,
            incidents: r.incidents,
            decision: d.decision,
            decisionReason: d.reason,
          };
        }),
      };
    });
  }
}
