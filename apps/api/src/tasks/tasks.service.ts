import { Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { AppError, type Config, ErrorCode, type Logger, UUID_PATTERN } from '@steward/common';
import type { EntityManager } from '@steward/db';
import { appendEvents, budgetMessage, monthlyBudgetBlock, readEvents, TASK_BUILTIN_CONNECTORS, TaskAccepter, TERMINAL_STATES, type TaskState, voidOpenApprovals } from '@steward/jobs';
import { buildAbility, subjectOf } from '@steward/policy';
import { ConfigKeyProvider } from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG, LOGGER } from '../core/tokens';
import type { CreateTaskBody, ListTasksQuery, TaskView } from './tasks.schemas';
import { assertWorkflowUsable } from '../workflows/workflow-access';

interface TaskRow {
  id: string;
  user_id: string;
  state: TaskState;
  workflow: string | null;
  connectors: string[];
  model_preference: string | null;
  model: string | null;
  step: number;
  max_steps: number;
  turns: number;
  input_tokens: string;
  output_tokens: string;
  cost_micros: string;
  budget_micros: string | null;
  tainted: boolean;
  error_code: string | null;
  error_message: string | null;
  cancel_requested_at: Date | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  rating: number | null;
}

const COLUMNS = `id, user_id, state, workflow, connectors, model_preference, model, step, max_steps, turns, input_tokens, output_tokens, cost_micros, budget_micros,
                 tainted, error_code, error_message, cancel_requested_at, created_at, started_at, finished_at,
                 (SELECT r.rating FROM task_ratings r WHERE r.org_id = tasks.org_id AND r.task_id = tasks.id) AS rating`;

/** Agent tasks: accepted with their outbox row in one commit; run by the worker; read from Postgres. */
@Injectable()
export class TasksService {
  private readonly keys: ConfigKeyProvider;
  private readonly accepter: TaskAccepter;

  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
    this.accepter = new TaskAccepter(db.dataSource);
  }

  private view(r: TaskRow): z.infer<typeof TaskView> {
    return {
      id: r.id,
      userId: r.user_id,
      state: r.state,
      workflow: r.workflow,
      connectors: r.connectors,
      modelPreference: r.model_preference,
      model: r.model,
      offlineModel: !this.config.ANTHROPIC_API_KEY,
      steps: r.step,
      maxSteps: r.max_steps,
      turns: r.turns,
      usage: { inputTokens: Number(r.input_tokens), outputTokens: Number(r.output_tokens), costUsd: Number(r.cost_micros) / 1e6 },
      budgetUsd: r.budget_micros === null ? null : Number(r.budget_micros) / 1e6,
      tainted: r.tainted,
      error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null,
      cancelRequested: r.cancel_requested_at !== null,
      rating: r.rating ?? null,
      createdAt: r.created_at.toISOString(),
      startedAt: r.started_at?.toISOString() ?? null,
      finishedAt: r.finished_at?.toISOString() ?? null,
    };
  }

  async create(p: Principal, body: z.infer<typeof CreateTaskBody>) {
    // A task is always the caller's own, so an "own" create rule is satisfied by construction.
    await this.access.authorize(p, 'create', 'Task');
    const task = await this.db.inOrg(p, async (em) => {
      if (body.workflow) await assertWorkflowUsable(em, p.orgId, p.userId, body.workflow);
      const installed = new Map(((await em.query(`SELECT name, kind, catalog_id FROM connectors WHERE org_id = $1`, [p.orgId])) as { name: string; kind: string; catalog_id: string | null }[]).map((r) => [r.name, r]));
      const problems = body.connectors.flatMap((c, i) => {
        if (c === 'workspace-files') return [];
        const row = installed.get(c);
        if (!row) return [{ path: `connectors.${i}`, message: `no connector named "${c.slice(0, 200)}" is installed in the org` }];
        if (row.kind === 'builtin' && !TASK_BUILTIN_CONNECTORS.includes(row.catalog_id ?? '')) return [{ path: `connectors.${i}`, message: `"${c.slice(0, 200)}" cannot be used by agent tasks yet (only through the API)` }];
        return [];
      });
      if (problems.length) throw AppError.validation(problems);
      // No new task once the org's or the caller's monthly budget is spent.
      const spent = await monthlyBudgetBlock(em, p.orgId, p.userId);
      if (spent) throw new AppError(409, ErrorCode.BudgetExceeded, 'Monthly budget spent', `No new task: ${budgetMessage(spent)}.`);
      const maxSteps = Math.min(body.maxSteps ?? this.config.TASK_MAX_STEPS, this.config.TASK_MAX_STEPS);
      const budgetMicros = Math.round(Math.min(body.budgetUsd ?? this.config.TASK_BUDGET_USD, this.config.TASK_BUDGET_USD) * 1e6);
      return { orgId: p.orgId, userId: p.userId, prompt: body.prompt, workflow: body.workflow ?? null, connectors: [...new Set(body.connectors)], modelPreference: body.model ?? null, maxSteps, budgetMicros };
    });
    // The task, its outbox row, first event and audit event are committed together, in one statement
    // with the other tasks accepted meanwhile (the prompt is sealed in the task row; the trail names it by size only).
    const { id } = await this.accepter.accept(this.keys, task, (taskId) =>
      this.audit.prepare(null, p, { action: 'task.create', targetType: 'Task', targetId: taskId, payload: { workflow: task.workflow, connectors: body.connectors, model: task.modelPreference, maxSteps: task.maxSteps, budgetMicros: task.budgetMicros, promptBytes: Buffer.byteLength(body.prompt) } }),
    );
    return this.db.inOrg(p, async (em) => this.view(await this.load(em, p, id)));
  }

  private async load(em: EntityManager, p: Principal, id: string): Promise<TaskRow> {
    const [row]: TaskRow[] = UUID_PATTERN.test(id) ? await em.query(`SELECT ${COLUMNS} FROM tasks WHERE org_id = $1 AND id = $2`, [p.orgId, id]) : [];
    if (!row) throw AppError.notFound('task');
    return row;
  }

  /** Loads a task the caller may read (404 otherwise, as if it did not exist). */
  private async readable(em: EntityManager, p: Principal, id: string): Promise<TaskRow> {
    const row = await this.load(em, p, id).catch((err) => {
      throw err;
    });
    if (!p.ability.can('read', subjectOf('Task', { userId: row.user_id }))) throw AppError.notFound('task');
    return row;
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Task', { id, userId: p.userId });
    return this.db.inOrg(p, async (em) => this.view(await this.readable(em, p, id)));
  }

  async list(p: Principal, q: z.infer<typeof ListTasksQuery>) {
    const reach = this.access.reach(p, 'read', 'Task');
    if (reach === 'none') await this.access.authorize(p, 'read', 'Task');
    const params: unknown[] = [p.orgId];
    const where = ['org_id = $1'];
    if (reach === 'own') where.push(`user_id = $${params.push(p.userId)}`);
    else if (q.userId) where.push(`user_id = $${params.push(q.userId)}`);
    if (q.state) where.push(`state = $${params.push(q.state)}`);
    if (q.cursor) {
      const id = Buffer.from(q.cursor, 'base64url').toString('utf8');
      if (!UUID_PATTERN.test(id)) throw AppError.validation([{ path: 'cursor', message: 'not a cursor this API returned' }]);
      where.push(`id < $${params.push(id)}`);
    }
    return this.db.inOrg(p, async (em) => {
      const rows: TaskRow[] = await em.query(`SELECT ${COLUMNS} FROM tasks WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.push(q.limit + 1)}`, params);
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit);
      return { items: items.map((r) => this.view(r)), nextCursor: more ? Buffer.from(items[items.length - 1].id).toString('base64url') : null };
    });
  }

  async cancel(p: Principal, id: string) {
    return this.db.inOrg(p, async (em) => {
      const row = await this.readable(em, p, id);
      await this.access.authorize(p, 'cancel', 'Task', { id, userId: row.user_id });
      // Its state now, under the row's lock: a worker that is just leaving the task (to wait for a
      // person, say) has committed first, and the cancel acts on what it left.
      [{ state: row.state }] = await em.query(`SELECT state FROM tasks WHERE org_id = $1 AND id = $2 FOR UPDATE`, [p.orgId, id]);
      if (TERMINAL_STATES.includes(row.state)) throw AppError.conflict(`The task is already ${row.state}.`);
      // Queued or waiting for an approval: cancelled now. Running: the worker stops at its next step.
      const now = row.state === 'queued' || row.state === 'awaiting_approval';
      await em.query(
        `UPDATE tasks SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()${now ? `, state = 'cancelled', finished_at = now(), lease_holder = NULL, lease_until = NULL` : ''} WHERE org_id = $1 AND id = $2`,
        [p.orgId, id],
      );
      await appendEvents(em, this.keys, p.orgId, id, [{ kind: 'state', data: now ? { state: 'cancelled' } : { cancelRequested: true } }]);
      await this.audit.record(em, p, { action: 'task.cancel', targetType: 'Task', targetId: id, payload: { from: row.state } });
      // Its approvals will never be redeemed: voided (a running task's are voided by its worker as it stops).
      if (now) await voidOpenApprovals(em, this.audit.keyring, p.orgId, id, 'cancelled');
      return this.view(await this.load(em, p, id));
    });
  }

  /** Task event streams open in this process, per member. */
  private readonly streams = new Map<string, number>();

  /** Server-sent events from the task's rows: what there is after `after`, then (when following) new ones until the task stops. */
  async stream(p: Principal, id: string, after: number, follow: boolean, res: Response): Promise<void> {
    await this.access.authorize(p, 'read', 'Task', { id, userId: p.userId });
    const owner = (await this.db.inOrg(p, (em) => this.readable(em, p, id))).user_id;
    // Streams open at once per member, in this process (each holds a connection's worth of polling, or
    // of events waiting for a client that does not read): followed or not, each counts.
    const open = this.streams.get(p.userId) ?? 0;
    if (open >= STREAMS_PER_USER) throw new AppError(429, ErrorCode.RateLimited, 'Too many streams', `At most ${STREAMS_PER_USER} task event streams per member at once: close one first.`);
    this.streams.set(p.userId, open + 1);
    res.on('close', () => {
      const n = (this.streams.get(p.userId) ?? 1) - 1;
      if (n > 0) this.streams.set(p.userId, n);
      else this.streams.delete(p.userId);
    });
    res.status(200);
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache, no-transform');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    let closed = false;
    res.on('close', () => (closed = true));
    let last = after;
    const deadline = Date.now() + 30 * 60_000;
    let checked = Date.now();
    try {
      while (!closed) {
        // What it streams is the member's: a revoked key or session, or a member no longer active, ends it within seconds.
        if (follow && Date.now() - checked >= RECHECK_MS) {
          checked = Date.now();
          if (!(await this.db.inOrg(p, (em) => stillSignedIn(em, p)))) break;
          // Another member's task: the reader's roles as they are now must still let them read it (a role
          // taken away ends the stream; the credential's own scopes, which cannot widen, still hold too).
          if (owner !== p.userId) {
            const { rules } = await this.db.inOrg(p, (em) => this.access.roleSet(em, p.orgId, p.userId));
            if (!buildAbility(rules, p.userId).can('read', subjectOf('Task', { userId: owner }))) break;
          }
        }
        // The state first, then the events: a task that ended between the two reads still has its last
        // events (its output) sent before the stream stops.
        const { events, state } = await this.db.inOrg(p, async (em) => {
          const state = ((await em.query(`SELECT state FROM tasks WHERE org_id = $1 AND id = $2`, [p.orgId, id]))[0]?.state ?? 'cancelled') as TaskState;
          return { state, events: await readEvents(em, this.keys, p.orgId, id, last) };
        });
        let room = true;
        for (const e of events) {
          room = res.write(`id: ${e.seq}\nevent: ${e.kind}\ndata: ${JSON.stringify({ seq: e.seq, kind: e.kind, at: e.at, ...e.data, ...(e.text !== null ? { text: e.text } : {}) })}\n\n`) && room;
          last = e.seq;
        }
        // A client that does not read holds the next page back (the events wait in the database, not in this process's memory).
        if (!room && !closed) {
          await new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.once('drain', done);
            res.once('close', done);
          });
        }
        if (events.length === 200) continue;
        // Stop when not following, when the task stopped (or waits for a human), or after 30 minutes (clients reconnect with Last-Event-ID).
        if (!follow || TERMINAL_STATES.includes(state) || state === 'awaiting_approval' || Date.now() > deadline) break;
        res.write(': keep-alive\n\n');
        await new Promise((r) => setTimeout(r, 250));
      }
    } catch (err) {
      // The headers are sent: the client learns of the failure by the stream's end (it may resume with Last-Event-ID).
      this.log.warn({ err: (err as Error).message, taskId: id }, 'task event stream failed');
    } finally {
      res.end();
    }
  }
}

const STREAMS_PER_USER = 20;
const RECHECK_MS = 5_000;

/** Whether the credential a principal came with still stands (not revoked, not expired) and its member is still active. */
async function stillSignedIn(em: EntityManager, p: Principal): Promise<boolean> {
  const table = p.kind === 'api_key' ? 'api_keys' : p.kind === 'mcp_token' ? 'mcp_access_tokens' : 'sessions';
  const rows: unknown[] = await em.query(
    `SELECT 1 FROM ${table} c JOIN memberships m ON m.org_id = c.org_id AND m.user_id = c.user_id AND m.status = 'active'
      WHERE c.org_id = $1 AND c.id = $2 AND c.user_id = $3 AND c.revoked_at IS NULL AND c.expires_at > now()`,
    [p.orgId, p.credentialId, p.userId],
  );
  return rows.length > 0;
}
