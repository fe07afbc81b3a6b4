import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { AgentTaskJob, inSpan, type Logger, MaintenanceJob, QueueName, SpanAttr, SpanKind, tracer } from '@steward/common';
import { type AgentDeps, runTask } from './agent-tasks/agent-loop';
import { deliverNotifications, sweepExpiredApprovals } from './agent-tasks/approval-timers';
import { sweepOutcomesUnknown } from './agent-tasks/outcome-unknown';
import { listenForOutbox, relayOutbox, sweepTasks } from './agent-tasks/relay';
import { runDueReports } from '@steward/oversight';
import { fireDueSchedules } from './agent-tasks/schedules';
import { releaseParked } from './agent-tasks/task-store';
import { incidentsForFindings } from './incidents/findings';
import { deliverIncidentNotifications, sweepIncidents } from './incidents/incidents';

export const HeartbeatPayload = z.strictObject({ scheduledBy: z.literal('scheduler') });
export const RewrapDataKeysPayload = z.strictObject({ scheduledBy: z.enum(['scheduler', 'boot']) });

export interface WorkerRuntimeOptions {
  redisUrl: string;
  prefix: string;
  concurrency: number;
  log: Logger;
  /** Seconds between heartbeats. */
  heartbeatEvery?: number;
  /**
   * Re-wraps every data key still under an older KEK version (batched and resumable: it picks up
   * whatever is left). Run at boot and hourly; without it the job records that it had nothing to do.
   */
  rewrapDataKeys?: () => Promise<unknown>;
  /** Minutes between rewrap runs (default 60). */
  rewrapEveryMinutes?: number;
  /** Agent tasks: the `agent-tasks` consumer, the outbox relay and the stale-task sweeper. */
  agentTasks?: AgentDeps & {
    relayIntervalMs: number;
    /** Seconds before a queued task's job is checked in BullMQ (default 10). */
    queuedAfterSeconds?: number;
    /** The console's external URL: approval notices link to the approval there. */
    consoleUrl?: string;
    /** Seconds after which an action still without an outcome that nothing else resolves (an MCP gateway call, a task that ended) goes to a person as "outcome unknown" (default 3600). */
    outcomeUnknownAfterSeconds?: number;
    /**
     * Wake the relay by LISTEN/NOTIFY on a connection of its own (default true). Off where the pool
     * has a single connection (the embedded development database): the relay then polls every
     * `relayIntervalMs`.
     */
    listen?: boolean;
  };
}

export const RunTaskPayloadSchema = z.strictObject({ orgId: z.uuid(), taskId: z.uuid(), epoch: z.int().min(1), notBefore: z.iso.datetime().optional() });

export interface WorkerRuntime {
  /** Time of the last heartbeat job this worker processed, or null. */
  lastHeartbeat(): Date | null;
  /** True while the worker is connected and running. */
  running(): boolean;
  close(): Promise<void>;
}

/** A span per job (no-op unless tracing is configured): queue, job name and id, the org and task of an agent task. */
const jobTracer = tracer('steward.worker');
const inJobSpan = <T>(queue: string, job: Job, attributes: Record<string, string | number>, fn: () => Promise<T>): Promise<T> =>
  inSpan(jobTracer, `job ${queue}/${job.name}`, { 'messaging.system': 'bullmq', 'messaging.destination.name': queue, 'messaging.operation.type': 'process', 'messaging.message.id': job.id ?? '', 'steward.job_attempt': job.attemptsMade + 1, ...attributes }, fn, SpanKind.CONSUMER);

/** Handlers by job name: boot fails if a queue's job name has none. */
type Handlers = Record<string, (job: Job) => Promise<unknown>>;

/**
 * The agent worker's runtime: BullMQ consumers of Steward's queues. Started by
 * apps/agent-worker, or inside the API process in embedded (development) mode.
 */
export async function startWorkerRuntime(options: WorkerRuntimeOptions): Promise<WorkerRuntime> {
  const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const queuePrefix = `${options.prefix}:bull`;
  let last: Date | null = null;

  const maintenance: Handlers = {
    [MaintenanceJob.Heartbeat]: async (job) => {
      HeartbeatPayload.parse(job.data);
      last = new Date();
      await connection.set(`${options.prefix}:worker:heartbeat`, last.toISOString(), 'EX', 600);
      return { at: last.toISOString() };
    },
    [MaintenanceJob.RewrapDataKeys]: async (job) => {
      RewrapDataKeysPayload.parse(job.data);
      if (!options.rewrapDataKeys) return { skipped: 'no key provider in this worker' };
      return options.rewrapDataKeys();
    },
  };
  for (const name of Object.values(MaintenanceJob)) {
    if (!maintenance[name]) throw new Error(`no handler for ${QueueName.Maintenance}/${name}`);
  }

  const queue = new Queue(QueueName.Maintenance, { connection, prefix: queuePrefix });
  await queue.upsertJobScheduler(
    'heartbeat',
    { every: (options.heartbeatEvery ?? 60) * 1000 },
    { name: MaintenanceJob.Heartbeat, data: { scheduledBy: 'scheduler' }, opts: { removeOnComplete: 100, removeOnFail: 100 } },
  );

  if (options.rewrapDataKeys) {
    const opts = { removeOnComplete: 20, removeOnFail: 50, attempts: 3, backoff: { type: 'exponential', delay: 5000 } };
    await queue.upsertJobScheduler('rewrap-data-keys', { every: (options.rewrapEveryMinutes ?? 60) * 60_000 }, { name: MaintenanceJob.RewrapDataKeys, data: { scheduledBy: 'scheduler' }, opts });
    // At boot too, so a new key version takes effect at once; one at a time across workers.
    await queue.add(MaintenanceJob.RewrapDataKeys, { scheduledBy: 'boot' }, { ...opts, deduplication: { id: 'rewrap-data-keys-boot', ttl: 60_000 } });
  }

  const worker = new Worker(
    QueueName.Maintenance,
    async (job) => {
      const handler = maintenance[job.name];
      if (!handler) throw new Error(`unknown job ${job.name}`);
      options.log.debug({ jobId: job.id, job: job.name }, 'job');
      return inJobSpan(QueueName.Maintenance, job, {}, () => handler(job));
    },
    { connection, prefix: queuePrefix, concurrency: options.concurrency },
  );
  worker.on('failed', (job, err) => options.log.warn({ jobId: job?.id, job: job?.name, err }, 'job failed'));
  worker.on('error', (err) => options.log.error({ err }, 'worker error'));
  await worker.waitUntilReady();

  // Agent tasks: run (or resume) a task under its lease; the relay and the sweeper feed the queue from
  // Postgres, and due task schedules fire from Postgres on the same tick (at boot too).
  const agent = options.agentTasks;
  let tasksQueue: Queue | undefined;
  let tasksWorker: Worker | undefined;
  let relayTimer: NodeJS.Timeout | undefined;
  let relayRunning: Promise<void> | undefined;
  let noticeTimer: NodeJS.Timeout | undefined;
  let noticesRunning: Promise<void> | undefined;
  let reportTimer: NodeJS.Timeout | undefined;
  let reportsRunning: Promise<void> | undefined;
  let closing = false;
  let stopListening: (() => Promise<void>) | undefined;
  if (agent) {
    // Tasks run knowing whether this worker is stopping (then each goes back to the queue at its next turn).
    const stopAware = { ...agent, stopping: () => closing };
    tasksQueue = new Queue(QueueName.AgentTasks, { connection, prefix: queuePrefix });
    tasksWorker = new Worker(
      QueueName.AgentTasks,
      async (job) => {
        if (job.name !== AgentTaskJob.Run) throw new Error(`unknown job ${job.name}`);
        const payload = RunTaskPayloadSchema.parse(job.data);
        // The task's gate calls (gate.action and its steps) are children of this span.
        return inJobSpan(QueueName.AgentTasks, job, { [SpanAttr.OrgId]: payload.orgId, [SpanAttr.TaskId]: payload.taskId, 'steward.epoch': payload.epoch }, async () => ({ outcome: await runTask(stopAware, payload) }));
      },
      { connection, prefix: queuePrefix, concurrency: options.concurrency, lockDuration: Math.max(30_000, agent.leaseSeconds * 1000) },
    );
    tasksWorker.on('failed', (job, err) => options.log.warn({ jobId: job?.id, err }, 'agent task job failed'));
    tasksWorker.on('error', (err) => options.log.error({ err }, 'agent task worker error'));
    await tasksWorker.waitUntilReady();
    const q = tasksQueue;
    // Postgres → Redis: outbox rows to BullMQ, and tasks whose job Redis lost. One pass at a time;
    // while Redis is away a pass waits (its commands wait for the connection), and the Postgres
    // timers below go on without it.
    let toRedis: Promise<void> | null = null;
    const moveToRedis = (queuedAfter: number): Promise<void> =>
      (toRedis ??= (async () => {
        await relayOutbox(agent.ds, q);
        if (await sweepTasks(agent.ds, q, agent.keys, options.log, queuedAfter)) await relayOutbox(agent.ds, q);
      })()
        .catch((err: unknown) => options.log.warn({ err }, 'task relay failed (retried on the next tick)'))
        .finally(() => {
          toRedis = null;
        }));
    /** One timer sweep, its failure logged and left for the next tick (it does not keep the others from running). */
    const sweep = async (what: string, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (err) {
        options.log.error({ err }, `${what} failed (retried on the next tick)`);
      }
    };
    const relay = async (queuedAfter: number, waitMs: number) => {
      // Due schedules (Postgres is their source of truth): each firing writes its task and outbox row.
      await sweep('firing schedules', () => fireDueSchedules({ ds: agent.ds, keys: agent.keys, keyring: agent.keyring, log: options.log, limits: agent.limits }));
      // Approval timers (an expiry resumes its task: an outbox row).
      await sweep('approval expiry', () => sweepExpiredApprovals(agent.ds, agent.keys, agent.keyring, options.log));
      // Actions whose outcome never came and that nothing will resolve (gateway calls, ended tasks): a person settles them.
      await sweep('outcome sweep', () => sweepOutcomesUnknown(agent.ds, agent.keyring, options.log, agent.outcomeUnknownAfterSeconds ?? 3600));
      // Incidents: Forbidden attempts open one; unacknowledged ones escalate (their notices go out in the delivery loop).
      await sweep('incidents', () => sweepIncidents(noticeDeps, new Date(), { deliver: false }));
      // Parked tasks (their org was running as many as it may) get a job again as places free up, oldest first.
      await sweep('parked tasks', () => releaseParked(agent.ds, agent.maxRunningPerOrg ?? 20));
      // Then what these wrote, and anything older, to Redis (waited for a while, not for ever).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([moveToRedis(queuedAfter), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    };
    // Notices (approval requests, incidents) go out in a loop of their own: they wait on servers an
    // org chose (its webhook, its SMTP server), which may be slow on purpose, and the timers above
    // (schedules, expiry, leases, sanctions) must not wait with them, for any org.
    const noticeDeps = { ds: agent.ds, keys: agent.keys, keyring: agent.keyring, log: options.log, ...(agent.connectors ? { connectors: agent.connectors, egress: agent.connectors.egress } : {}) };
    const deliverNotices = async () => {
      await sweep('notifications', () => deliverNotifications(noticeDeps, { consoleUrl: agent.consoleUrl }));
      await sweep('incident notices', () => deliverIncidentNotifications(noticeDeps, new Date()));
    };
    const noticeTick = () => {
      if (closing) return;
      noticesRunning = deliverNotices().finally(() => {
        if (!closing) noticeTimer = setTimeout(noticeTick, agent.relayIntervalMs);
      });
    };
    noticeTimer = setTimeout(noticeTick, agent.relayIntervalMs);
    // Monthly anomaly reports that are due (the 1st of the month in each org's zone), from Postgres
    // too, in a loop of their own: one report may take minutes (a large org, a year's period), and
    // the timers above must not wait for it. A report that fails is retried with backoff.
    // Each high-severity finding of a scheduled report opens an incident (once per report and finding).
    const reportTick = () => {
      if (closing) return;
      reportsRunning = sweep('anomaly reports', () => runDueReports({ ds: agent.ds, keyring: agent.keyring, log: options.log, onHighFindings: incidentsForFindings(agent.keyring) })).finally(() => {
        if (!closing) reportTimer = setTimeout(reportTick, Math.max(agent.relayIntervalMs, 1000));
      });
    };
    reportTimer = setTimeout(reportTick, agent.relayIntervalMs);
    // At boot every queued task whose job Redis lost is re-enqueued at once.
    await relay(0, 60_000);
    const tick = () => {
      if (closing) return;
      relayRunning = relay(agent.queuedAfterSeconds ?? 10, 2_000).finally(() => {
        if (!closing) relayTimer = setTimeout(tick, agent.relayIntervalMs);
      });
    };
    relayTimer = setTimeout(tick, agent.relayIntervalMs);
    // New tasks are relayed at once: their outbox rows NOTIFY on commit.
    let fastRunning = false;
    let fastAgain = false;
    const fast = async () => {
      if (fastRunning) {
        fastAgain = true;
        return;
      }
      fastRunning = true;
      try {
        do {
          fastAgain = false;
          await relayOutbox(agent.ds, q);
        } while (fastAgain && !closing);
      } catch (err) {
        options.log.warn({ err }, 'task relay failed (retried on the next tick)');
      } finally {
        fastRunning = false;
      }
    };
    if (agent.listen !== false) {
      stopListening = await listenForOutbox(agent.ds, () => {
        if (!closing) void fast();
      }, options.log);
    }
  }
  options.log.info({ queues: agent ? [QueueName.Maintenance, QueueName.AgentTasks] : [QueueName.Maintenance], concurrency: options.concurrency }, 'worker started');

  return {
    lastHeartbeat: () => last,
    running: () => worker.isRunning(),
    async close() {
      closing = true;
      // First: no new task is taken, and those running go back to the queue at their next turn (stopAware).
      const tasksStopped = tasksWorker?.close();
      clearTimeout(relayTimer);
      clearTimeout(noticeTimer);
      clearTimeout(reportTimer);
      await stopListening?.();
      await relayRunning;
      await noticesRunning;
      await reportsRunning;
      await tasksStopped;
      await tasksQueue?.close();
      await worker.close();
      await queue.close();
      connection.disconnect();
    },
  };
}
