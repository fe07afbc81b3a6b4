import { CronExpressionParser } from 'cron-parser';
import { type AuditKeyring, recordEvent } from '@steward/audit';
import { type Logger, newId } from '@steward/common';
import { type DataSource, type EntityManager, inOrg, outsideOrg } from '@steward/db';
import { buildAbility, type PermissionRule, rulesOfAssignments, subjectOf } from '@steward/policy';
import { type KeyProvider, openSecret, sealSecret } from '@steward/vault';
import { monthlyBudgetBlock } from './budgets';
import { appendEvents, insertTask, sha256 } from './task-store';

/**
 * Scheduled tasks: a template (prompt, workflow, connectors, limits) with a five-field cron
 * expression read in an IANA time zone — "0 17 * * 5" in "Asia/Tokyo" is Fridays 17:00 Tokyo time,
 * whatever the server's zone and across daylight-saving changes.
 *
 * Postgres is the source of truth: the worker sweeps due rows on its relay tick (at boot too, so
 * nothing needs rebuilding in Redis), and a firing writes the task, its outbox row, its audit
 * event and the schedule's next run in one transaction. A run that falls while the org's kill
 * switch is on, while the owner is not an active member, or while the month's budget is spent is
 * skipped, not caught up later; after downtime a schedule fires once, then moves to its next time.
 */
export const scheduleAad = (orgId: string, id: string) => `schedule-prompt|${orgId}|${id}`;

export class ScheduleError extends Error {
  constructor(
    readonly field: 'cron' | 'timeZone',
    message: string,
  ) {
    super(message);
    this.name = 'ScheduleError';
  }
}

export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz.length <= 64;
  } catch {
    return false;
  }
}

/** The first run strictly after `after` (throws ScheduleError on a bad expression or zone). */
export function nextRunAt(cron: string, timeZone: string, after: Date): Date {
  if (!validTimeZone(timeZone)) throw new ScheduleError('timeZone', `unknown time zone ${JSON.stringify(timeZone)} (use an IANA name such as Asia/Tokyo)`);
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5) throw new ScheduleError('cron', 'a cron expression has five fields: minute hour day-of-month month day-of-week');
  try {
    return CronExpressionParser.parse(cron, { currentDate: after, tz: timeZone, strict: false }).next().toDate();
  } catch (err) {
    throw new ScheduleError('cron', `not a valid cron expression: ${(err as Error).message.slice(0, 200)}`);
  }
}

export interface ScheduleTemplate {
  orgId: string;
  userId: string;
  name: string;
  cron: string;
  timeZone: string;
  prompt: string;
  workflow: string | null;
  connectors: string[];
  modelPreference: string | null;
  maxSteps: number;
  budgetMicros: number | null;
  /** The API key that wrote it (null: a person's session); revoking that key pauses it. */
  writtenWithKey?: string | null;
}

export async function insertSchedule(em: EntityManager, keys: KeyProvider, s: ScheduleTemplate, now = new Date()): Promise<string> {
  const id = newId();
  const next = nextRunAt(s.cron, s.timeZone, now);
  const sealed = await sealSecret(keys, s.prompt, scheduleAad(s.orgId, id));
  await em.query(
    `INSERT INTO task_schedules (org_id, id, user_id, name, cron, time_zone, prompt_sealed, prompt_key, prompt_digest, prompt_bytes, workflow, connectors, model_preference, max_steps, budget_micros, next_run_at, written_with_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
    [s.orgId, id, s.userId, s.name, s.cron, s.timeZone, sealed.sealed, sealed.wrappedKey, sha256(s.prompt), Buffer.byteLength(s.prompt), s.workflow, s.connectors, s.modelPreference, s.maxSteps, s.budgetMicros, next, s.writtenWithKey ?? null],
  );
  return id;
}

/** Seals a new prompt for a schedule (update). */
export async function sealSchedulePrompt(keys: KeyProvider, orgId: string, id: string, prompt: string) {
  const sealed = await sealSecret(keys, prompt, scheduleAad(orgId, id));
  return { sealed: sealed.sealed, key: sealed.wrappedKey, digest: sha256(prompt), bytes: Buffer.byteLength(prompt) };
}

export interface FireResult {
  fired: number;
  skipped: number;
}

/** Fires every due schedule (each in its own transaction, rows locked so two workers never fire one twice). */
/** A schedule's task budget under the deployment's ceiling as it is now (a schedule written under a higher one fires under this one). */
function fireBudget(written: string | number | null, ceiling: number | undefined): number | null {
  if (ceiling === undefined) return written === null ? null : Number(written);
  return written === null ? ceiling : Math.min(Number(written), ceiling);
}

/** Fires the schedules that are due; `limits`: the deployment's ceilings (TASK_MAX_STEPS, TASK_BUDGET_USD) as they are now. */
export async function fireDueSchedules(deps: FireDeps, limit = 100): Promise<FireResult> {
  const due: { org_id: string; id: string }[] = await outsideOrg(deps.ds, (em) => em.query('SELECT org_id, id FROM steward_schedules_due($1)', [limit]));
  const out: FireResult = { fired: 0, skipped: 0 };
  for (const d of due) {
    try {
      const r = await fireOne(deps, d.org_id, d.id);
      if (r === 'fired') out.fired++;
      else if (r) out.skipped++;
    } catch (err) {
      deps.log.warn({ err: (err as Error).message, orgId: d.org_id, scheduleId: d.id }, 'firing a schedule failed (retried on the next tick)');
    }
  }
  return out;
}

/** Whether the member's roles, as they are now, let them run agent tasks (a schedule runs as them). */
async function mayRunTasks(em: EntityManager, orgId: string, userId: string): Promise<boolean> {
  const rows: { role: string; key: string | null; permissions: PermissionRule[] | null }[] = await em.query(
    `SELECT a.role, r.key, r.permissions FROM role_assignments a LEFT JOIN roles r ON r.org_id = a.org_id AND r.id = a.custom_role_id WHERE a.org_id = $1 AND a.user_id = $2`,
    [orgId, userId],
  );
  const { rules } = rulesOfAssignments(rows.map((r) => ({ role: r.role, custom: r.key !== null ? { key: r.key, permissions: r.permissions ?? [] } : null })));
  return buildAbility(rules, userId).can('create', subjectOf('Task', { userId }));
}

type FireDeps = { ds: DataSource; keys: KeyProvider; keyring: AuditKeyring; log: Logger; limits?: { maxSteps: number; budgetMicros: number } };

async function fireOne(deps: FireDeps, orgId: string, id: string): Promise<'fired' | 'paused' | 'suspended' | 'not_permitted' | 'key_revoked' | 'budget' | null> {
  return inOrg(deps.ds, { orgId }, async (em) => {
    const [s] = await em.query(
      `SELECT s.*, o.agents_paused_at IS NOT NULL AS org_paused, m.status AS membership, steward_workflow_permitted(s.org_id, s.user_id, s.workflow) AS workflow_permitted,
              k.revoked_at IS NOT NULL AS key_revoked
         FROM task_schedules s
         JOIN orgs o ON o.id = s.org_id LEFT JOIN memberships m ON m.org_id = s.org_id AND m.user_id = s.user_id
         LEFT JOIN api_keys k ON k.org_id = s.org_id AND k.id = s.written_with_key
        WHERE s.org_id = $1 AND s.id = $2 AND s.paused_at IS NULL AND s.next_run_at <= now() FOR UPDATE OF s SKIP LOCKED`,
      [orgId, id],
    );
    if (!s) return null;
    const now = new Date();
    let next: Date;
    try {
      // After this run's own time as well as after now: a worker clock behind the database's would
      // otherwise get this same run back and fire it twice.
      next = nextRunAt(s.cron, s.time_zone, new Date(Math.max(now.getTime(), new Date(s.next_run_at).getTime())));
    } catch {
      // The zone database of this server no longer knows the zone: the schedule pauses itself.
      await em.query(`UPDATE task_schedules SET paused_at = now(), updated_at = now() WHERE org_id = $1 AND id = $2`, [orgId, id]);
      return null;
    }
    // The owner's state, roles and workflow access as they are at each run (a schedule made by
    // someone who may no longer run tasks, or no longer under its workflow, runs nothing).
    // Written by an API key since revoked (however: by its owner, an admin, or deprovisioning): it
    // pauses, as the revocation itself pauses it (this also catches a write that raced the revocation).
    const blocked = s.key_revoked
      ? 'key_revoked'
      : s.org_paused
      ? 'paused'
      : s.membership !== 'active'
        ? 'suspended'
        : !s.workflow_permitted || !(await mayRunTasks(em, orgId, s.user_id))
          ? 'not_permitted'
          : (await monthlyBudgetBlock(em, orgId, s.user_id))
            ? 'budget'
            : null;
    let taskId: string | null = null;
    if (!blocked) {
      const prompt = (await openSecret(deps.keys, { sealed: s.prompt_sealed, wrappedKey: s.prompt_key }, scheduleAad(orgId, id))).toString('utf8');
      taskId = (await insertTask(em, deps.keys, { orgId, userId: s.user_id, prompt, workflow: s.workflow, connectors: s.connectors, modelPreference: s.model_preference, maxSteps: Math.min(s.max_steps, deps.limits?.maxSteps ?? Infinity), budgetMicros: fireBudget(s.budget_micros, deps.limits?.budgetMicros) })).id;
      await appendEvents(em, deps.keys, orgId, taskId, [{ kind: 'state', data: { scheduledBy: id } }]);
    }
    await em.query(
      `UPDATE task_schedules SET next_run_at = $3, updated_at = now(), ${blocked ? 'skipped = skipped + 1' : 'runs = runs + 1, last_run_at = now(), last_task_id = $4'}${blocked === 'key_revoked' ? ', paused_at = now()' : ''} WHERE org_id = $1 AND id = $2`,
      blocked ? [orgId, id, next] : [orgId, id, next, taskId],
    );
    await recordEvent(em, deps.keyring, {
      id: newId(),
      orgId,
      occurredAt: now,
      actor: { type: 'system', id: null },
      action: blocked ? 'schedule.skip' : 'schedule.fire',
      target: { type: 'TaskSchedule', id },
      outcome: blocked ? 'denied' : 'success',
      task: taskId,
      client: 'worker',
      payload: { scheduleId: id, userId: s.user_id, taskId, reason: blocked, nextRunAt: next.toISOString() },
    });
    deps.log.info({ orgId, scheduleId: id, taskId, skipped: blocked }, blocked ? 'schedule skipped' : 'schedule fired');
    return blocked ?? 'fired';
  });
}
