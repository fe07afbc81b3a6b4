import type { Queue } from 'bullmq';
import type { Logger } from '@steward/common';
import { type DataSource, inOrg, outsideOrg } from '@steward/db';
import type { KeyProvider } from '@steward/vault';
import { appendEvents, enqueueInOutbox, jobIdOf, OUTBOX_CHANNEL } from './task-store';

/**
 * Postgres → BullMQ. The relay moves outbox rows to their queue (the job id, `taskId-epoch`,
 * deduplicates a row moved twice) and deletes them in the same transaction that locked them.
 * The sweeper hands tasks to a worker again: a running task whose lease expired gets a new epoch
 * (its old worker can write nothing more) and a new outbox row; a queued task whose job BullMQ no
 * longer knows (Redis lost its data) likewise. Redis holds nothing that Postgres cannot rebuild.
 */
// 'active' is not among them: a job taken by a worker that died before it took the lease would
// otherwise wait for BullMQ's stall check; a new epoch is safe (the old job's lease attempt fails).
const LIVE_JOB_STATES = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

export async function relayOutbox(ds: DataSource, queue: Queue, limit = 200): Promise<number> {
  const pending: { org_id: string; id: string }[] = await outsideOrg(ds, (em) => em.query('SELECT org_id, id FROM steward_outbox_pending($1)', [limit]));
  let moved = 0;
  for (const p of pending) {
    moved += await inOrg(ds, { orgId: p.org_id }, async (em) => {
      const [row]: { job_name: string; job_id: string; payload: { taskId?: string; epoch?: number; notBefore?: string } }[] = await em.query(
        `SELECT job_name, job_id, payload FROM outbox WHERE org_id = $1 AND id = $2 FOR UPDATE SKIP LOCKED`,
        [p.org_id, p.id],
      );
      if (!row) return 0;
      // A task that is to try again later (its model was unavailable) waits in BullMQ as a delayed job.
      const delay = row.payload.notBefore ? Math.max(0, Date.parse(row.payload.notBefore) - Date.now()) : 0;
      await queue.add(row.job_name, row.payload, { jobId: row.job_id, removeOnComplete: 1000, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 2000 }, ...(delay > 0 ? { delay } : {}) });
      await em.query(`DELETE FROM outbox WHERE org_id = $1 AND id = $2`, [p.org_id, p.id]);
      // (Not a task a worker already parked meanwhile — the job ran at once and found the org busy: it
      // waits for a place, with no job, and marked enqueued the sweep would take it for a lost job.)
      if (row.payload.taskId) await em.query(`UPDATE tasks SET enqueued_at = now() WHERE org_id = $1 AND id = $2 AND epoch = $3 AND NOT parked`, [p.org_id, row.payload.taskId, row.payload.epoch]);
      return 1;
    });
  }
  return moved;
}

/** Re-enqueues stale tasks; returns how many got a new epoch. */
export async function sweepTasks(ds: DataSource, queue: Queue, keys: KeyProvider, log: Logger, queuedAfterSeconds: number, limit = 200): Promise<number> {
  const stale: { org_id: string; id: string }[] = await outsideOrg(ds, (em) => em.query('SELECT org_id, id FROM steward_tasks_stale($1, $2)', [queuedAfterSeconds, limit]));
  let requeued = 0;
  for (const s of stale) {
    const [row]: { state: string; epoch: number; expired: boolean; not_before: Date | null }[] = await inOrg(ds, { orgId: s.org_id }, (em) =>
      em.query(`SELECT state, epoch, lease_until < now() AS expired, CASE WHEN not_before > now() THEN not_before END AS not_before FROM tasks WHERE org_id = $1 AND id = $2`, [s.org_id, s.id]),
    );
    if (!row) continue;
    if (row.state === 'queued') {
      const jobState = await queue.getJobState(jobIdOf(s.id, row.epoch));
      if (LIVE_JOB_STATES.has(jobState)) {
        await inOrg(ds, { orgId: s.org_id }, (em) => em.query(`UPDATE tasks SET enqueued_at = now() WHERE org_id = $1 AND id = $2 AND epoch = $3 AND state = 'queued'`, [s.org_id, s.id, row.epoch]));
        continue;
      }
    }
    const done = await inOrg(ds, { orgId: s.org_id }, async (em) => {
      // SKIP LOCKED: a task whose row a (frozen) worker still locks inside an open transaction is
      // left for a later tick instead of stalling the sweep of every other task.
      const [bumped]: { epoch: number }[] = await em.query(
        `WITH c AS (SELECT org_id, id FROM tasks WHERE org_id = $1 AND id = $2 AND epoch = $3 AND (state = 'queued' OR (state = 'running' AND lease_until < now())) FOR UPDATE SKIP LOCKED),
              u AS (UPDATE tasks t SET epoch = t.epoch + 1, state = 'queued', lease_holder = NULL, lease_until = NULL, enqueued_at = NULL, updated_at = now()
                      FROM c WHERE t.org_id = c.org_id AND t.id = c.id RETURNING t.epoch)
         SELECT * FROM u`,
        [s.org_id, s.id, row.epoch],
      );
      if (!bumped) return false;
      // (A task that was to wait — its model unavailable — still waits until then: its delayed job was what Redis lost.)
      await enqueueInOutbox(em, s.org_id, s.id, bumped.epoch, row.state === 'queued' && row.not_before ? new Date(row.not_before) : undefined);
      await appendEvents(em, keys, s.org_id, s.id, [{ kind: 'requeued', data: { epoch: bumped.epoch, reason: row.state === 'running' ? 'lease_expired' : 'job_missing' } }]);
      return true;
    });
    if (done) {
      requeued++;
      log.info({ orgId: s.org_id, taskId: s.id, from: row.state }, 'task re-enqueued from Postgres');
    }
  }
  return requeued;
}

/**
 * Wakes the relay as soon as an outbox row commits (LISTEN on a connection of its own; the
 * interval tick stays as the fallback). A lost connection is listened on again after a second.
 * Returns the function that stops listening.
 */
export async function listenForOutbox(ds: DataSource, onNotify: () => void, log: Logger): Promise<() => Promise<void>> {
  let stopped = false;
  let current: { release(): Promise<void> } | null = null;
  let retry: NodeJS.Timeout | undefined;
  const listen = async (): Promise<void> => {
    if (stopped) return;
    const qr = ds.createQueryRunner();
    try {
      await qr.connect();
      type Handler = (m: { channel?: string }) => void;
      const client = (qr as unknown as { databaseConnection: { on(ev: string, f: Handler): void; removeListener(ev: string, f: Handler): void } }).databaseConnection;
      let lost = false;
      const notified: Handler = (m) => {
        if (m.channel === OUTBOX_CHANNEL) onNotify();
      };
      const detach = () => {
        client.removeListener('notification', notified);
        client.removeListener('error', again);
        client.removeListener('end', again);
      };
      const again = () => {
        if (lost || stopped) return;
        lost = true;
        current = null;
        detach();
        void qr.release().catch(() => undefined);
        retry = setTimeout(() => void listen(), 1000);
      };
      client.on('notification', notified);
      client.on('error', again);
      client.on('end', again);
      await qr.query(`LISTEN ${OUTBOX_CHANNEL}`);
      current = {
        release: async () => {
          lost = true;
          detach();
          await qr.query(`UNLISTEN ${OUTBOX_CHANNEL}`).catch(() => undefined);
          await qr.release().catch(() => undefined);
        },
      };
    } catch (err) {
      await qr.release().catch(() => undefined);
      log.warn({ err: (err as Error).message }, 'relay: cannot LISTEN for new tasks (polling only); trying again');
      retry = setTimeout(() => void listen(), 5000);
    }
  };
  await listen();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    await current?.release();
  };
}
