import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { trace } from '@opentelemetry/api';
import { Redis } from 'ioredis';
import { createLogger, parseConfig } from '@steward/common';
import { redisUrl } from '../../../test/support/db-urls';
import { fakeCollector } from '../../../test/support/otlp-collector';
import { startWorkerRuntime } from './runtime';
import { startTracing } from './tracing';

const CONSUMER = 5; // OTLP SpanKind

const env = {
  STEWARD_TOKEN_PEPPER: 'p'.repeat(40),
  STEWARD_MASTER_KEY: `v1:${Buffer.alloc(32, 1).toString('base64')}`,
  STEWARD_AUDIT_SIGNING_KEY: Buffer.alloc(32, 2).toString('base64'),
};

describe('worker traces (real Redis, a fake OTLP/HTTP collector)', () => {
  const prefix = `steward-test-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(redisUrl());
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('registers nothing without an endpoint: spans stay the API no-op', () => {
    const tracing = startTracing(parseConfig(env), 'steward-worker');
    expect(tracing.enabled).toBe(false);
    const span = trace.getTracer('probe').startSpan('probe');
    expect(span.isRecording()).toBe(false);
    span.end();
  });

  it('exports a consumer span per job, named after the queue and the job, under the worker service name', async () => {
    const collector = await fakeCollector();
    const tracing = startTracing(parseConfig({ ...env, OTEL_EXPORTER_OTLP_ENDPOINT: collector.url }), 'steward-worker');
    const log = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
    const runtime = await startWorkerRuntime({ redisUrl: redisUrl(), prefix, concurrency: 1, log, heartbeatEvery: 1 });
    try {
      expect(tracing.enabled).toBe(true);
      for (let i = 0; i < 50 && !runtime.lastHeartbeat(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(runtime.lastHeartbeat()).toBeInstanceOf(Date);
    } finally {
      await runtime.close();
      await tracing.shutdown();
      await collector.close();
    }
    const job = collector.spans().find((s) => s.span.name === 'job maintenance/record-heartbeat');
    expect(job).toBeDefined();
    expect(job!.span.kind).toBe(CONSUMER);
    expect(job!.service).toBe('steward-worker');
    expect(job!.attrs).toMatchObject({ 'messaging.system': 'bullmq', 'messaging.destination.name': 'maintenance', 'messaging.operation.type': 'process', 'steward.job_attempt': 1 });
    expect(job!.attrs['messaging.message.id']).toEqual(expect.any(String));
  });
});
