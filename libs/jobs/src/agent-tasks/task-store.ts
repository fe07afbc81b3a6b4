import { createHash } from 'node:crypto';
import { AgentTaskJob, newId, QueueName } from '@steward/common';
import { BatchWriter, type DataSource, type EntityManager, inOrg, outsideOrg } from '@steward/db';
import { type KeyProvider, openSecret, sealSecret } from '@steward/vault';

/**
 * The task's rows in Postgres, the source of truth: creation (task + outbox + first event in the
 * caller's transaction), sealing of prompts, transcripts and output (AES-256-GCM under a data key
 * wrapped by the vault's KEK, the AAD naming org, task and purpose, so a sealed value copied onto
 * another row does not open), fenced writes under the lease's epoch, and the event stream.
 */
export const TASK_STATES = ['queued', 'running', 'awaiting_approval', 'in_review', 'completed', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const TERMINAL_STATES: readonly TaskState[] = ['in_review', 'completed', 'failed', 'cancelled'];

export const promptAad = (orgId: string, taskId: string) => `task-prompt|${orgId}|${taskId}`;
export const transcriptAad = (orgId: string, taskId: string) => `task-transcript|${orgId}|${taskId}`;
export const eventAad = (orgId: string, taskId: string, seq: number) => `task-event|${orgId}|${taskId}|${seq}`;

export const sha256 = (v: string | Buffer) => createHash('sha256').update(v).digest('hex');

/** The job payload: which task, under which lease generation. */
export interface RunTaskPayload {
  orgId: string;
  taskId: string;
  epoch: number;
  /** Not to run before this time (ISO 8601): the relay hands BullMQ the job delayed until then. */
  notBefore?: string;
}
export const jobIdOf = (taskId: string, epoch: number) => `${taskId}-${epoch}`;

export interface NewTask {
  orgId: string;
  userId: string;
  prompt: string;
  workflow: string | null;
  connectors: string[];
  modelPreference: string | null;
  maxSteps: number;
  budgetMicros: number | null;
}

/** The channel the relay listens on for new outbox rows. */
export const OUTBOX_CHANNEL = 'steward_outbox'; // steward_task_accept_batch notifies it by name too

/** An audit event in its stored form (libs/audit `prepareEvent`), written with the task's rows. */
export interface TaskAuditEvent {
  id: string;
  occurredAt: Date;
  canonical: string;
}

/** One task as `steward_task_accept_batch` takes it: the task row, its outbox row and its audit event. */
interface AcceptRow {
  org: string;
  user: string;
  id: string;
  prompt_sealed: string;
  prompt_key: string;
  prompt_digest: string;
  prompt_bytes: number;
  workflow: string | null;
  connectors: string[];
  model_preference: string | null;
  max_steps: number;
  budget_micros: number | null;
  outbox_id: string;
  queue: string;
  job_name: string;
  job_id: string;
  payload: RunTaskPayload;
  event_id: string | null;
  event_at: Date | null;
  event: string | null;
}

async function acceptRow(keys: KeyProvider, t: NewTask, audit?: (taskId: string) => Promise<TaskAuditEvent>): Promise<AcceptRow> {
  const id = newId();
  const sealed = await sealSecret(keys, t.prompt, promptAad(t.orgId, id));
  const event = audit ? await audit(id) : null;
  return {
    org: t.orgId, user: t.userId, id,
    prompt_sealed: sealed.sealed.toString('base64'), prompt_key: sealed.wrappedKey, prompt_digest: sha256(t.prompt), prompt_bytes: Buffer.byteLength(t.prompt),
    workflow: t.workflow, connectors: t.connectors, model_preference: t.modelPreference, max_steps: t.maxSteps, budget_micros: t.budgetMicros,
    outbox_id: newId(), queue: QueueName.AgentTasks, job_name: AgentTaskJob.Run, job_id: jobIdOf(id, 1), payload: { orgId: t.orgId, taskId: id, epoch: 1 },
    event_id: event?.id ?? null, event_at: event?.occurredAt ?? null, event: event?.canonical ?? null,
  };
}

/**
 * Writes the task, its outbox row (the relay is woken when the transaction commits), its first
 * event and, when given, the audit event of its creation (built once the task's id is known) in
 * the caller's transaction, as one statement.
 */
export async function insertTask(em: EntityManager, keys: KeyProvider, t: NewTask, audit?: (taskId: string) => Promise<TaskAuditEvent>): Promise<{ id: string; epoch: number }> {
  const row = await acceptRow(keys, t, audit);
  await em.query(`SELECT steward_task_accept_batch($1::jsonb)`, [JSON.stringify([row])]);
  return { id: row.id, epoch: 1 };
}

/**
 * Accepts tasks on their own (the API's POST /v1/tasks): the task, its outbox row, first event and
 * audit event are committed before `accept` returns, together with the other tasks accepted
 * meanwhile (libs/db BatchWriter: one statement and one commit for a batch).
 */
export class TaskAccepter {
  private readonly writer: BatchWriter<AcceptRow>;

  constructor(ds: DataSource) {
    this.writer = new BatchWriter<AcceptRow>(ds, 'steward_task_accept_batch');
  }

  async accept(keys: KeyProvider, t: NewTask, audit?: (taskId: string) => Promise<TaskAuditEvent>): Promise<{ id: string; epoch: number }> {
    const row = await acceptRow(keys, t, audit);
    const r = await this.writer.write(row);
    if (r !== 'accepted') throw new Error(`the task was not accepted: ${r}`);
    return { id: row.id, epoch: 1 };
  }
}

export async function enqueueInOutbox(em: EntityManager, orgId: string, taskId: string, epoch: number, notBefore?: Date): Promise<void> {
  const payload: RunTaskPayload = { orgId, taskId, epoch, ...(notBefore ? { notBefore: notBefore.toISOString() } : {}) };
  // Kept on the task too: the sweep that enqueues it again after a Redis loss delays it as this did.
  await em.query(`UPDATE tasks SET not_before = $3 WHERE org_id = $1 AND id = $2`, [orgId, taskId, notBefore ?? null]);
  // The relay listens: NOTIFY is delivered when this transaction commits (a rolled-back task wakes nobody).
  await em.query(`WITH i AS (INSERT INTO outbox (org_id, id, queue, job_name, job_id, payload) VALUES ($1, $2, $3, $4, $5, $6)) SELECT pg_notify('${OUTBOX_CHANNEL}', '')`, [
    orgId,
    newId(),
    QueueName.AgentTasks,
    AgentTaskJob.Run,
    jobIdOf(taskId, epoch),
    JSON.stringify(payload),
  ]);
}

export async function openPrompt(keys: KeyProvider, orgId: string, taskId: string, row: { prompt_sealed: Buffer; prompt_key: string }): Promise<string> {
  return (await openSecret(keys, { sealed: row.prompt_sealed, wrappedKey: row.prompt_key }, promptAad(orgId, taskId))).toString('utf8');
}

export interface TaskEvent {
  kind: 'state' | 'model' | 'action' | 'output' | 'error' | 'requeued';
  data: Record<string, unknown>;
  /** Content (model text, output): sealed, opened only for the stream's reader. */
  secret?: string;
}

/** Appends events under the task's row lock (the caller's transaction already holds it, or takes it here). */
export async function appendEvents(em: EntityManager, keys: KeyProvider, orgId: string, taskId: string, events: TaskEvent[]): Promise<void> {
  if (!events.length) return;
  const [row]: { event_seq: number }[] = await em.query(`WITH u AS (UPDATE tasks SET event_seq = event_seq + $3 WHERE org_id = $1 AND id = $2 RETURNING event_seq) SELECT * FROM u`, [orgId, taskId, events.length]);
  if (!row) throw new Error('task not found for its events');
  let seq = row.event_seq - events.length;
  for (const e of events) {
    seq++;
    const sealed = e.secret !== undefined ? await sealSecret(keys, e.secret, eventAad(orgId, taskId, seq)) : null;
    await em.query(`INSERT INTO task_events (org_id, task_id, seq, kind, data, sealed, sealed_key) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      orgId,
      taskId,
      seq,
      e.kind,
      JSON.stringify(e.data),
      sealed?.sealed ?? null,
      sealed?.wrappedKey ?? null,
    ]);
  }
}

export interface StoredEvent {
  seq: number;
  kind: string;
  data: Record<string, unknown>;
  text: string | null;
  at: string;
}

/** Events after `afterSeq`, content opened (for the SSE stream and the task view). */
export async function readEvents(em: EntityManager, keys: KeyProvider, orgId: string, taskId: string, afterSeq: number, limit = 200): Promise<StoredEvent[]> {
  const rows: { seq: number; kind: string; data: Record<string, unknown>; sealed: Buffer | null; sealed_key: string | null; created_at: Date }[] = await em.query(
    `SELECT seq, kind, data, sealed, sealed_key, created_at FROM task_events WHERE org_id = $1 AND task_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
    [orgId, taskId, afterSeq, limit],
  );
  const out: StoredEvent[] = [];
  for (const r of rows) {
    const text = r.sealed && r.sealed_key ? (await openSecret(keys, { sealed: r.sealed, wrappedKey: r.sealed_key }, eventAad(orgId, taskId, r.seq))).toString('utf8') : null;
    out.push({ seq: r.seq, kind: r.kind, data: r.data, text, at: new Date(r.created_at).toISOString() });
  }
  return out;
}

/** The worker lost its lease (another worker holds a newer epoch): it must write nothing more. */
export class LeaseLost extends Error {
  constructor() {
    super('the lease on this task was taken over (newer epoch)');
    this.name = 'LeaseLost';
  }
}

export interface Lease {
  orgId: string;
  userId: string;
  taskId: string;
  epoch: number;
  holder: string;
}

/**
 * One step write of the worker: in one transaction, the task row is locked only if this worker
 * still holds the lease at this epoch (else `LeaseLost`, nothing written), then `work` runs.
 * Returns whether a cancel was requested meanwhile.
 */
export async function fenced<T>(ds: DataSource, lease: Lease, work: (em: EntityManager, task: { cancelRequested: boolean }) => Promise<T>): Promise<T> {
  return inOrg(ds, { orgId: lease.orgId, userId: lease.userId }, async (em) => {
    const [row]: { cancel_requested_at: Date | null }[] = await em.query(
      `WITH u AS (UPDATE tasks SET updated_at = now() WHERE org_id = $1 AND id = $2 AND epoch = $3 AND lease_holder = $4 AND state = 'running' RETURNING cancel_requested_at) SELECT * FROM u`,
      [lease.orgId, lease.taskId, lease.epoch, lease.holder],
    );
    if (!row) throw new LeaseLost();
    return work(em, { cancelRequested: row.cancel_requested_at !== null });
  });
}

/**
 * Takes the task for this job's epoch: queued, or running under an expired lease or our own.
 *
 * A queued task starts only while its org runs fewer tasks than it may (`limit`, the deployment's,
 * or the org's own lower one), and only in its turn: while some of the org's tasks are parked, a
 * task not yet parked parks behind them. Else it is parked (`busy`): it holds no worker and no job,
 * and `releaseParked` gives it a job again when a place frees. Every task of the org in `running`
 * counts, its lease current or not (one that crashed holds its place until it is taken over or
 * re-queued), so the limit holds through takeovers. The task's row is locked first, then the org's
 * lease takes go one at a time (a transaction-scoped advisory lock), so that two workers never both
 * take the last place; neither waits more than a few seconds (then the job fails and is retried).
 */
export async function acquireLease(ds: DataSource, p: RunTaskPayload, holder: string, seconds: number, opts: { limit: number; keys: KeyProvider }): Promise<{ userId: string } | 'busy' | null> {
  const limit = opts.limit;
  return inOrg(ds, { orgId: p.orgId }, async (em) => {
    await em.query(`SET LOCAL lock_timeout = '5s'`);
    const [t]: { state: string; expired: boolean; holder: string | null; parked_since: Date | null }[] = await em.query(
      `SELECT state, lease_until < now() AS expired, lease_holder AS holder, parked_since FROM tasks WHERE org_id = $1 AND id = $2 AND epoch = $3 FOR UPDATE`,
      [p.orgId, p.taskId, p.epoch],
    );
    const takeover = t?.state === 'running' && (t.expired || t.holder === holder);
    if (!t || (t.state !== 'queued' && !takeover)) return null;
    if (t.state === 'queued') {
      await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('steward:running:' || $1::text, 0))`, [p.orgId]);
      const [room]: { free: boolean }[] = await em.query(
        `SELECT (SELECT count(*) FROM tasks r WHERE r.org_id = $1 AND r.state = 'running') < least($3::int, coalesce((SELECT o.max_running_tasks FROM orgs o WHERE o.id = $1), $3::int))
                AND ($2::boolean OR NOT EXISTS (SELECT 1 FROM tasks w WHERE w.org_id = $1 AND w.parked)) AS free`,
        [p.orgId, t.parked_since !== null, limit],
      );
      if (!room!.free) {
        await em.query(`UPDATE tasks SET parked = true, parked_since = coalesce(parked_since, now()), enqueued_at = NULL, updated_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, p.taskId]);
        // Said once: a task released and beaten to the place waits again without a new event.
        if (t.parked_since === null) await appendEvents(em, opts.keys, p.orgId, p.taskId, [{ kind: 'requeued', data: { epoch: p.epoch, reason: 'org_busy', parked: true } }]);
        return 'busy';
      }
    }
    // A task that waited for a place: its approved actions get the time it waited back on their expiry
    // (they did not expire meanwhile), so each has the time to be redeemed it had when approved.
    if (t.parked_since !== null) {
      await em.query(`UPDATE approvals SET expires_at = expires_at + (now() - $3::timestamptz) WHERE org_id = $1 AND task_id = $2 AND state = 'approved'`, [p.orgId, p.taskId, t.parked_since]);
    }
    const [row]: { user_id: string }[] = await em.query(
      `WITH u AS (UPDATE tasks SET state = 'running', lease_holder = $3, lease_until = now() + make_interval(secs => $4), started_at = coalesce(started_at, now()), parked_since = NULL, updated_at = now()
                   WHERE org_id = $1 AND id = $2 RETURNING user_id) SELECT * FROM u`,
      [p.orgId, p.taskId, holder, seconds],
    );
    return { userId: row!.user_id };
  });
}

/**
 * Gives parked tasks a job again as their orgs' places free up, oldest first (a new epoch and an
 * outbox row each). Runs on the workers' timer, outside any org; each org's release under the same
 * advisory lock as its lease takes. Released tasks keep `parked_since` (their turn) until they start.
 */
export async function releaseParked(ds: DataSource, limit = 20): Promise<number> {
  const orgs: { org_id: string }[] = await outsideOrg(ds, (em) => em.query('SELECT org_id FROM steward_tasks_parked_orgs($1)', [1000]));
  let released = 0;
  for (const { org_id: orgId } of orgs) {
    released += await inOrg(ds, { orgId }, async (em) => {
      await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('steward:running:' || $1::text, 0))`, [orgId]);
      // The places left: the limit less the tasks running and those released already (queued, a job on its way).
      const rows: { id: string; epoch: number }[] = await em.query(
        `WITH free AS (SELECT least($2::int, coalesce((SELECT o.max_running_tasks FROM orgs o WHERE o.id = $1), $2::int))
                              - (SELECT count(*) FROM tasks r WHERE r.org_id = $1 AND (r.state = 'running' OR (r.state = 'queued' AND NOT r.parked AND r.parked_since IS NOT NULL))) AS n),
              next AS (SELECT id FROM tasks WHERE org_id = $1 AND parked AND state = 'queued' ORDER BY parked_since, id LIMIT greatest((SELECT n FROM free), 0) FOR UPDATE SKIP LOCKED),
              u AS (UPDATE tasks t SET parked = false, epoch = t.epoch + 1, updated_at = now() FROM next WHERE t.org_id = $1 AND t.id = next.id RETURNING t.id, t.epoch)
         SELECT * FROM u`,
        [orgId, limit],
      );
      for (const r of rows) await enqueueInOutbox(em, orgId, r.id, r.epoch);
      // A parked task cancelled or ended meanwhile is no longer waiting for a place.
      await em.query(`UPDATE tasks SET parked = false WHERE org_id = $1 AND parked AND state <> 'queued'`, [orgId]);
      return rows.length;
    });
  }
  return released;
}

export async function renewLease(ds: DataSource, lease: Lease, seconds: number): Promise<boolean> {
  return inOrg(ds, { orgId: lease.orgId }, async (em) => {
    const rows: unknown[] = await em.query(
      `WITH u AS (UPDATE tasks SET lease_until = now() + make_interval(secs => $5) WHERE org_id = $1 AND id = $2 AND epoch = $3 AND lease_holder = $4 AND state = 'running' RETURNING id) SELECT * FROM u`,
      [lease.orgId, lease.taskId, lease.epoch, lease.holder, seconds],
    );
    return rows.length > 0;
  });
}

/** Gives up a running task's lease at once (its run failed and the job will be retried by another run). */
export async function releaseLease(ds: DataSource, lease: Lease): Promise<void> {
  await inOrg(ds, { orgId: lease.orgId }, (em) =>
    em.query(`UPDATE tasks SET lease_until = now() - interval '1 second' WHERE org_id = $1 AND id = $2 AND epoch = $3 AND lease_holder = $4 AND state = 'running'`, [lease.orgId, lease.taskId, lease.epoch, lease.holder]),
  );
}

/**
 * A task that waited for a human goes back to a worker (after an approval, a rejection, an
 * expiry, a settled outcome): a new epoch and its outbox row, in the caller's transaction.
 * Returns false when the task was not waiting (cancelled meanwhile, or already resumed).
 */
/**
 * Locks the row of the task an approval belongs to (if any), before the approval is decided: the
 * worker ending a turn updates the task's row first and then looks at its approvals, so a decision
 * made at that moment is seen by one side or the other (see `finish` in agent-loop.ts).
 */
export async function lockTaskOfApproval(em: EntityManager, orgId: string, approvalId: string): Promise<void> {
  if (!/^[0-9a-f-]{36}$/i.test(approvalId)) return;
  await em.query(`SELECT 1 FROM tasks WHERE org_id = $1 AND id = (SELECT task_id FROM approvals WHERE org_id = $1 AND id = $2) FOR UPDATE`, [orgId, approvalId]);
}

export async function resumeWaitingTask(em: EntityManager, keys: KeyProvider, orgId: string, taskId: string, reason: string): Promise<boolean> {
  const [row]: { epoch: number }[] = await em.query(
    `WITH u AS (UPDATE tasks SET epoch = epoch + 1, state = 'queued', lease_holder = NULL, lease_until = NULL, enqueued_at = NULL, updated_at = now()
      WHERE org_id = $1 AND id = $2 AND state = 'awaiting_approval' RETURNING epoch) SELECT * FROM u`,
    [orgId, taskId],
  );
  if (!row) return false;
  await enqueueInOutbox(em, orgId, taskId, row.epoch);
  await appendEvents(em, keys, orgId, taskId, [{ kind: 'requeued', data: { epoch: row.epoch, reason } }]);
  return true;
}
