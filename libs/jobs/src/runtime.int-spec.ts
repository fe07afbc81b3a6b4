import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { createLogger } from '@steward/common';
import { redisUrl } from '../../../test/support/db-urls';
import { startWorkerRuntime } from './runtime';

describe('worker runtime (real Redis)', () => {
  const prefix = `steward-test-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(redisUrl());
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('runs the scheduled heartbeat job and records it in Redis', async () => {
    const log = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
    const runtime = await startWorkerRuntime({ redisUrl: redisUrl(), prefix, concurrency: 1, log, heartbeatEvery: 1 });
    try {
      expect(runtime.running()).toBe(true);
      for (let i = 0; i < 50 && !runtime.lastHeartbeat(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(runtime.lastHeartbeat()).toBeInstanceOf(Date);
      const stored = await redis.get(`${prefix}:worker:heartbeat`);
      expect(new Date(stored!).getTime()).toBe(runtime.lastHeartbeat()!.getTime());
    } finally {
      await runtime.close();
    }
    expect(runtime.running()).toBe(false);
  });
});
