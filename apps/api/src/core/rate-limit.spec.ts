import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { countWindows, rateLimit } from './rate-limit';

/**
 * The per-address limit when Redis does not answer: a real ioredis client with no server behind
 * it (port 1, no offline queue: every command fails at once), as the API's is during an outage.
 */
describe('rate limits without Redis', () => {
  let down: Redis;

  beforeAll(() => {
    down = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on('error', () => undefined);
  });
  afterAll(() => down.disconnect());

  it('still holds the limit: counted in this process, with the RateLimit headers, then 429', async () => {
    const app = express();
    app.use(rateLimit(down, { prefix: `test-${Date.now()}`, limit: 3, windowSeconds: 60 }));
    app.get('/x', (_req, res) => res.json({ ok: true }));
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await request(app).get('/x');
      statuses.push(res.status);
      if (i === 0) expect(res.headers['ratelimit-remaining']).toBe('2');
      if (res.status === 429) expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });

  it('counts several windows at once, and reports the outage once rather than on every request', async () => {
    const key = `test-${Date.now()}`;
    const first = await countWindows(down, [{ key: `${key}:a`, by: 1, ttlSeconds: 60 }, { key: `${key}:b`, by: 7, ttlSeconds: 2 }]);
    const second = await countWindows(down, [{ key: `${key}:a`, by: 1, ttlSeconds: 60 }, { key: `${key}:b`, by: 7, ttlSeconds: 2 }]);
    expect([first.counts, second.counts]).toEqual([
      [1, 7],
      [2, 14],
    ]);
    expect(second.report).toBeNull();
  });
});
