import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createLogger, QueueName } from '@steward/common';
import { createDataSource, type DataSource } from '@steward/db';
import { StewardMetrics } from '@steward/jobs';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { createHealthServer, type HealthServerDeps } from './health-server';

/** The worker's health port: liveness, and /metrics behind METRICS_TOKEN (real PostgreSQL and Redis). */
describe('worker health server', () => {
  const TOKEN = 'worker-metrics-token-0123456789abcdefghij';
  const prefix = `worker-health-${process.pid}-${Date.now()}`;
  let db: TestDatabase;
  let ds: DataSource;
  let redis: Redis;
  let queue: Queue;
  const servers: import('node:http').Server[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 2 });
    await ds.initialize();
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
    queue = new Queue(QueueName.AgentTasks, { connection: redis, prefix: `${prefix}:bull` });
  });
  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    // Whatever else the queues the metrics read left under this test's prefix.
    const left = redis ? await redis.keys(`${prefix}:*`) : [];
    if (left.length) await redis.del(...left);
    redis?.disconnect();
    await ds?.destroy();
    await db?.drop();
  });

  async function serve(config: HealthServerDeps['config'], running = true) {
    const registry = new Registry();
    const metrics = new StewardMetrics(registry);
    const server = createHealthServer({ config, runtime: { running: () => running, lastHeartbeat: () => null }, registry, metrics, ds, redis, log: createLogger({ level: 'silent' }) });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, metrics };
  }

  it('answers /healthz by whether the BullMQ worker runs', async () => {
    const up = await serve({ NODE_ENV: 'production', REDIS_PREFIX: prefix });
    expect((await fetch(`${up.base}/healthz`)).status).toBe(200);
    const down = await serve({ NODE_ENV: 'production', REDIS_PREFIX: prefix }, false);
    expect(await (await fetch(`${down.base}/healthz`)).json()).toEqual({ status: 'stopped', lastHeartbeat: null });
  });

  it("answers /readyz (the chart's readiness probe) while the worker runs and PostgreSQL answers", async () => {
    const up = await serve({ NODE_ENV: 'production', REDIS_PREFIX: prefix });
    const ready = await fetch(`${up.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', database: 'ok' });
    const down = await serve({ NODE_ENV: 'production', REDIS_PREFIX: prefix }, false);
    expect((await fetch(`${down.base}/readyz`)).status).toBe(503);
  });

  it('serves /metrics only with the token, off in production without one', async () => {
    const off = await serve({ NODE_ENV: 'production', REDIS_PREFIX: prefix });
    expect((await fetch(`${off.base}/metrics`)).status).toBe(404);
    const { base, metrics } = await serve({ METRICS_TOKEN: TOKEN, NODE_ENV: 'production', REDIS_PREFIX: prefix });
    const none = await fetch(`${base}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);

    await queue.add('run-task', { probe: true }, { timestamp: Date.now() - 30_000 });
    metrics.gateObserver().decided?.({ level: 'batched', refusal: null, client: 'worker' });
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^steward_queue_jobs\{queue="agent-tasks",state="waiting"\} 1$/m);
    expect(Number(/^steward_queue_oldest_waiting_seconds\{queue="agent-tasks"\} (\S+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(30);
    expect(text).toMatch(/^steward_approvals_pending 0$/m);
    expect(text).toMatch(/^steward_audit_sealing_lag_seconds \d/m);
    expect(text).toMatch(/^steward_gate_decisions_total\{level="batched",refusal="none",client="worker"\} 1$/m);
    await metrics.close();
  });
});
