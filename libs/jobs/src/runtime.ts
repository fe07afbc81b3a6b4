import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { type Logger, MaintenanceJob, QueueName } from '@steward/common';

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
}

export interface WorkerRuntime {
  /** Time of the last heartbeat job this worker processed, or null. */
  lastHeartbeat(): Date | null;
  /** True while the worker is connected and running. */
  running(): boolean;
  close(): Promise<void>;
}

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
      return handler(job);
    },
    { connection, prefix: queuePrefix, concurrency: options.concurrency },
  );
  worker.on('failed', (job, err) => options.log.warn({ jobId: job?.id, job: job?.name, err }, 'job failed'));
  worker.on('error', (err) => options.log.error({ err }, 'worker error'));
  await worker.waitUntilReady();
  options.log.info({ queues: [QueueName.Maintenance], concurrency: options.concurrency }, 'worker started');

  return {
    lastHeartbeat: () => last,
    running: () => worker.isRunning(),
    async close() {
      await worker.close();
      await queue.close();
      connection.disconnect();
    },
  };
}
