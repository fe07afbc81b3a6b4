import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { QueueName } from '@steward/common';
import type { DataSource } from '@steward/db';
import type { GateObserver } from '@steward/gate';

const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed'] as const;

/**
 * The control plane's own Prometheus metrics, the same in the API and the worker. Counters are
 * per process (each counts the decisions it made: the gateway's in the API, the tasks' in the
 * worker; sum them in PromQL); the gauges are read from PostgreSQL and Redis when scraped, so
 * every process reports the same cluster-wide values.
 */
export class StewardMetrics {
  readonly decisions: Counter<'level' | 'refusal' | 'client'>;
  readonly connectorErrors: Counter<'code'>;
  readonly auditWrite: Histogram<'source'>;
  readonly approvalsPending: Gauge;
  readonly approvalsOldest: Gauge;
  readonly queueJobs: Gauge<'queue' | 'state'>;
  readonly queueOldest: Gauge<'queue'>;
  readonly sealingLag: Gauge;
  private queues?: Queue[];

  constructor(registry: Registry) {
    const registers = [registry];
    this.decisions = new Counter({ name: 'steward_gate_decisions_total', help: 'Gate decisions by trust level, refusal (none when not refused) and client', labelNames: ['level', 'refusal', 'client'], registers });
    this.connectorErrors = new Counter({ name: 'steward_connector_errors_total', help: 'Connector calls that failed (after retries), by connector error code', labelNames: ['code'], registers });
    this.auditWrite = new Histogram({
      name: 'steward_audit_write_seconds',
      help: 'Audit write latency: the gate write-ahead commit (decision, claim, audit event) and the API audit insert',
      labelNames: ['source'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.approvalsPending = new Gauge({ name: 'steward_approvals_pending', help: 'Approvals waiting for a person (all orgs)', registers });
    this.approvalsOldest = new Gauge({ name: 'steward_approvals_oldest_pending_seconds', help: 'How long the oldest pending approval has waited', registers });
    this.queueJobs = new Gauge({ name: 'steward_queue_jobs', help: 'BullMQ jobs by queue and state', labelNames: ['queue', 'state'], registers });
    this.queueOldest = new Gauge({ name: 'steward_queue_oldest_waiting_seconds', help: 'Age of the oldest job waiting to run, by queue (0 when none waits)', labelNames: ['queue'], registers });
    this.sealingLag = new Gauge({ name: 'steward_audit_sealing_lag_seconds', help: 'Seconds since the oldest audit event not yet sealed into its org chain was recorded', registers });
  }

  /** What the gate tells this process's metrics (pass as `GateDeps.observer`). */
  gateObserver(): GateObserver {
    return {
      decided: (e) => this.decisions.inc({ level: e.level, refusal: e.refusal ?? 'none', client: e.client }),
      wroteAhead: (seconds) => this.auditWrite.observe({ source: 'gate' }, seconds),
      connectorFailed: (e) => this.connectorErrors.inc({ code: e.code.slice(0, 40) }),
    };
  }

  /** Reads the gauges (at scrape time). A part that cannot be read keeps its last value; the error is returned. */
  async collect(ds: DataSource, redis: Redis, prefix: string): Promise<string[]> {
    const errors: string[] = [];
    try {
      const [a]: { pending: string; oldest_seconds: number }[] = await ds.query('SELECT pending, oldest_seconds FROM steward_ops_approvals()');
      this.approvalsPending.set(Number(a?.pending ?? 0));
      this.approvalsOldest.set(Math.max(0, Number(a?.oldest_seconds ?? 0)));
      const [l]: { lag: number }[] = await ds.query('SELECT steward_audit_sealing_lag() AS lag');
      this.sealingLag.set(Math.max(0, Number(l?.lag ?? 0)));
    } catch (err) {
      errors.push(`database: ${(err as Error).message}`);
    }
    try {
      // The caller's Redis connection, shared (closing these queues leaves it open).
      this.queues ??= Object.values(QueueName).map((name) => new Queue(name, { connection: redis, prefix: `${prefix}:bull` }));
      const now = Date.now();
      for (const q of this.queues) {
        const counts = await q.getJobCounts(...QUEUE_STATES);
        for (const state of QUEUE_STATES) this.queueJobs.set({ queue: q.name, state }, counts[state] ?? 0);
        const oldest = await q.getJobs(['wait', 'prioritized'], 0, 0, true);
        const first = Math.min(...oldest.map((j) => j.timestamp));
        this.queueOldest.set({ queue: q.name }, Number.isFinite(first) ? Math.max(0, (now - first) / 1000) : 0);
      }
    } catch (err) {
      errors.push(`redis: ${(err as Error).message}`);
    }
    return errors;
  }

  async close(): Promise<void> {
    for (const q of this.queues ?? []) await q.close().catch(() => undefined);
    this.queues = undefined;
  }
}
