import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, UUID_PATTERN } from '@steward/common';
import type { EntityManager } from '@steward/db';
import { insertSchedule, monthlyUsage, nextRunAt, ScheduleError, sealSchedulePrompt } from '@steward/jobs';
import { subjectOf } from '@steward/policy';
import { ConfigKeyProvider } from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import type { CreateScheduleBody, ListSchedulesQuery, ScheduleView, UpdateScheduleBody, UsageView } from './schedules.schemas';
import { assertWorkflowUsable } from '../workflows/workflow-access';

interface ScheduleRow {
  id: string;
  user_id: string;
  name: string;
  cron: string;
  time_zone: string;
  workflow: string | null;
  connectors: string[];
  model_preference: string | null;
  max_steps: number;
  budget_micros: string | null;
  paused_at: Date | null;
  next_run_at: Date;
  last_run_at: Date | null;
  last_task_id: string | null;
  runs: number;
  skipped: number;
  written_with_key: string | null;
  created_at: Date;
  updated_at: Date;
}

/** The API key a principal is (what a schedule records as having written it), null for a session. */
const keyOf = (p: Principal): string | null => (p.kind === 'api_key' ? p.credentialId : null);

const COLUMNS = `id, user_id, name, cron, time_zone, workflow, connectors, model_preference, max_steps, budget_micros, paused_at, next_run_at, last_run_at, last_task_id, runs, skipped, written_with_key, created_at, updated_at`;

/**
 * Task schedules (the worker fires them from Postgres) and this month's usage.
 *
 * RBAC rides on the Task subject, since a schedule creates tasks as its owner: creating one needs
 * `create` on Task (one's own); reading follows `read` on Task (the org's, or one's own); changing
 * or deleting one is for whoever may create tasks as its owner; pausing and resuming for whoever
 * may cancel the owner's tasks (security can stop anyone's schedule, as it can stop their tasks).
 */
@Injectable()
export class SchedulesService {
  private readonly keys: ConfigKeyProvider;

  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
  ) {
    this.keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  }

  private view(r: ScheduleRow): z.infer<typeof ScheduleView> {
    return {
      id: r.id,
      userId: r.user_id,
      name: r.name,
      cron: r.cron,
      timeZone: r.time_zone,
      workflow: r.workflow,
      connectors: r.connectors,
      modelPreference: r.model_preference,
      maxSteps: r.max_steps,
      budgetUsd: r.budget_micros === null ? null : Number(r.budget_micros) / 1e6,
      paused: r.paused_at !== null,
      nextRunAt: r.paused_at ? null : r.next_run_at.toISOString(),
      lastRunAt: r.last_run_at?.toISOString() ?? null,
      lastTaskId: r.last_task_id,
      runs: r.runs,
      skipped: r.skipped,
      writtenWithApiKey: r.written_with_key,
      createdAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
    };
  }

  private next(cron: string, timeZone: string): Date {
    try {
      return nextRunAt(cron, timeZone, new Date());
    } catch (err) {
      if (err instanceof ScheduleError) throw AppError.validation([{ path: err.field, message: err.message }]);
      throw err;
    }
  }

  private limits(body: { maxSteps?: number; budgetUsd?: number }) {
    return {
      maxSteps: Math.min(body.maxSteps ?? this.config.TASK_MAX_STEPS, this.config.TASK_MAX_STEPS),
      budgetMicros: Math.round(Math.min(body.budgetUsd ?? this.config.TASK_BUDGET_USD, this.config.TASK_BUDGET_USD) * 1e6),
    };
  }

  async create(p: Principal, body: z.infer<typeof CreateScheduleBody>) {
    await this.access.authorize(p, 'create', 'Task');
    this.next(body.cron, body.timeZone);
    return this.db.inOrg(p, async (em) => {
      if (body.workflow) await assertWorkflowUsable(em, p.orgId, p.userId, body.workflow);
      const [{ n }] = await em.query(`SELECT count(*)::int AS n FROM task_schedules WHERE org_id = $1 AND user_id = $2`, [p.orgId, p.userId]);
      if (n >= 100) throw AppError.conflict('You have 100 schedules already; delete one first.');
      const { maxSteps, budgetMicros } = this.limits(body);
      const id = await insertSchedule(em, this.keys, {
        orgId: p.orgId,
        userId: p.userId,
        name: body.name,
        cron: body.cron,
        timeZone: body.timeZone,
        prompt: body.prompt,
        workflow: body.workflow ?? null,
        connectors: [...new Set(body.connectors)],
        modelPreference: body.model ?? null,
        maxSteps,
        budgetMicros,
        writtenWithKey: keyOf(p),
      });
      await this.audit.record(em, p, { action: 'schedule.create', targetType: 'TaskSchedule', targetId: id, payload: { name: body.name, cron: body.cron, timeZone: body.timeZone, workflow: body.workflow ?? null, maxSteps, budgetMicros, promptBytes: Buffer.byteLength(body.prompt) } });
      return this.view(await this.load(em, p, id));
    });
  }

  private async load(em: EntityManager, p: Principal, id: string, lock = false): Promise<ScheduleRow> {
    const [row]: ScheduleRow[] = UUID_PATTERN.test(id) ? await em.query(`SELECT ${COLUMNS} FROM task_schedules WHERE org_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [p.orgId, id]) : [];
    if (!row) throw AppError.notFound('schedule');
    return row;
  }

  /** A schedule the caller may read (404 otherwise, as if it did not exist). */
  private async readable(em: EntityManager, p: Principal, id: string, lock = false): Promise<ScheduleRow> {
    const row = await this.load(em, p, id, lock);
    if (!p.ability.can('read', subjectOf('Task', { userId: row.user_id }))) throw AppError.notFound('schedule');
    return row;
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Task', { id, userId: p.userId });
    return this.db.inOrg(p, async (em) => this.view(await this.readable(em, p, id)));
  }

  async list(p: Principal, q: z.infer<typeof ListSchedulesQuery>) {
    const reach = this.access.reach(p, 'read', 'Task');
    if (reach === 'none') await this.access.authorize(p, 'read', 'Task');
    const params: unknown[] = [p.orgId];
    const where = ['org_id = $1'];
    if (reach === 'own') where.push(`user_id = $${params.push(p.userId)}`);
    else if (q.userId) where.push(`user_id = $${params.push(q.userId)}`);
    if (q.cursor) {
      const id = Buffer.from(q.cursor, 'base64url').toString('utf8');
      if (!UUID_PATTERN.test(id)) throw AppError.validation([{ path: 'cursor', message: 'not a cursor this API returned' }]);
      where.push(`id < $${params.push(id)}`);
    }
    return this.db.inOrg(p, async (em) => {
      const rows: ScheduleRow[] = await em.query(`SELECT ${COLUMNS} FROM task_schedules WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.push(q.limit + 1)}`, params);
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit);
      return { items: items.map((r) => this.view(r)), nextCursor: more ? Buffer.from(items[items.length - 1].id).toString('base64url') : null };
    });
  }

  async update(p: Principal, id: string, body: z.infer<typeof UpdateScheduleBody>) {
    return this.db.inOrg(p, async (em) => {
      const row = await this.readable(em, p, id, true);
      await this.access.authorize(p, 'create', 'Task', { id, userId: row.user_id });
      // Its runs act as its owner: what they ask is the owner's alone to change (an admin may pause or delete it).
      if (body.prompt !== undefined && row.user_id !== p.userId) {
        await this.access.deny(p, 'create', 'Task', id, 'not_schedule_owner', "Only the schedule's owner changes its prompt: its runs act as them. You may pause or delete it.");
      }
      const cron = body.cron ?? row.cron;
      const timeZone = body.timeZone ?? row.time_zone;
      const next = this.next(cron, timeZone);
      const limits = this.limits({ maxSteps: body.maxSteps ?? row.max_steps, budgetUsd: body.budgetUsd ?? (row.budget_micros === null ? undefined : Number(row.budget_micros) / 1e6) });
      const sealed = body.prompt !== undefined ? await sealSchedulePrompt(this.keys, p.orgId, id, body.prompt) : null;
      await em.query(
        `UPDATE task_schedules SET name = $3, cron = $4, time_zone = $5, next_run_at = $6, max_steps = $7, budget_micros = $8, updated_at = now(),
                prompt_sealed = coalesce($9, prompt_sealed), prompt_key = coalesce($10, prompt_key), prompt_digest = coalesce($11, prompt_digest), prompt_bytes = coalesce($12, prompt_bytes),
                written_with_key = CASE WHEN $9::bytea IS NOT NULL THEN $13::uuid ELSE written_with_key END
          WHERE org_id = $1 AND id = $2`,
        [p.orgId, id, body.name ?? row.name, cron, timeZone, next, limits.maxSteps, limits.budgetMicros, sealed?.sealed ?? null, sealed?.key ?? null, sealed?.digest ?? null, sealed?.bytes ?? null, keyOf(p)],
      );
      await this.audit.record(em, p, {
        action: 'schedule.update',
        targetType: 'TaskSchedule',
        targetId: id,
        payload: { changed: Object.keys(body), before: { name: row.name, cron: row.cron, timeZone: row.time_zone }, after: { name: body.name ?? row.name, cron, timeZone }, ...(sealed ? { promptBytes: sealed.bytes } : {}) },
      });
      return this.view(await this.load(em, p, id));
    });
  }

  async remove(p: Principal, id: string): Promise<void> {
    await this.db.inOrg(p, async (em) => {
      const row = await this.readable(em, p, id, true);
      await this.access.authorize(p, 'create', 'Task', { id, userId: row.user_id });
      await em.query(`DELETE FROM task_schedules WHERE org_id = $1 AND id = $2`, [p.orgId, id]);
      await this.audit.record(em, p, { action: 'schedule.delete', targetType: 'TaskSchedule', targetId: id, payload: { name: row.name, runs: row.runs } });
    });
  }

  async setPaused(p: Principal, id: string, paused: boolean) {
    return this.db.inOrg(p, async (em) => {
      const row = await this.readable(em, p, id, true);
      await this.access.authorize(p, 'cancel', 'Task', { id, userId: row.user_id });
      // Resuming starts from the next time after now: missed runs are not caught up.
      const next = paused ? row.next_run_at : this.next(row.cron, row.time_zone);
      await em.query(`UPDATE task_schedules SET paused_at = ${paused ? 'coalesce(paused_at, now())' : 'NULL'}, next_run_at = $3, updated_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, id, next]);
      await this.audit.record(em, p, { action: paused ? 'schedule.pause' : 'schedule.resume', targetType: 'TaskSchedule', targetId: id, payload: { wasPaused: row.paused_at !== null } });
      return this.view(await this.load(em, p, id));
    });
  }

  async usage(p: Principal): Promise<z.infer<typeof UsageView>> {
    const reach = this.access.reach(p, 'read', 'Task');
    if (reach === 'none') await this.access.authorize(p, 'read', 'Task');
    const u = await this.db.inOrg(p, (em) => monthlyUsage(em, p.orgId, reach === 'own' ? p.userId : undefined));
    const usd = (m: number | null) => (m === null ? null : m / 1e6);
    const spend = (s: { spentMicros: number; budgetMicros: number | null; tasks: number; inputTokens: number; outputTokens: number }) => ({ spentUsd: s.spentMicros / 1e6, budgetUsd: usd(s.budgetMicros), tasks: s.tasks, inputTokens: s.inputTokens, outputTokens: s.outputTokens });
    const users = u.users.map((x) => ({ userId: x.userId, ...spend(x) }));
    // A caller who reads only their own tasks sees their own line (zero when they ran nothing).
    if (reach === 'own' && !users.length) users.push({ userId: p.userId, spentUsd: 0, budgetUsd: usd(u.users[0]?.budgetMicros ?? null), tasks: 0, inputTokens: 0, outputTokens: 0 });
    return { month: u.month, org: reach === 'all' ? spend(u.org) : null, users };
  }
}
