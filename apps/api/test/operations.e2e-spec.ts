import type { Redis } from 'ioredis';
import { REDIS } from '../src/core/tokens';
import { type Harness, startHarness } from './support/harness';

describe('operations endpoints', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.close());

  it('reports liveness and the database mode', async () => {
    const res = await h.http.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', mode: 'external', version: expect.any(String) });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('is ready when PostgreSQL and Redis answer, and says which one does not', async () => {
    expect((await h.http.get('/readyz')).body).toEqual({ status: 'ready', checks: { database: 'ok', redis: 'ok', auditSealing: 'ok' }, auditSealingLagSeconds: expect.any(Number) });
    const broken = await startHarness({ db: h.db });
    const live = broken.app.get<Redis>(REDIS);
    live.disconnect(); // Redis goes away under a running API
    try {
      const res = await broken.http.get('/readyz');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ code: 'service_unavailable', detail: 'Not answering: redis.' });
    } finally {
      await live.connect().catch(() => undefined);
      await broken.close();
    }
  });

  it('exports Prometheus metrics, request counts included', async () => {
    await h.http.get('/healthz');
    const res = await h.http.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.text).toMatch(/steward_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    expect(res.text).toContain('steward_process_cpu_seconds_total');
  });

  it('serves its OpenAPI 3.1 document and a docs page', async () => {
    const doc = await h.http.get('/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/members/{userId}/roles', '/v1/auth/login', '/healthz']));
    const login = doc.body.paths['/v1/auth/login'].post;
    expect(login.security).toEqual([]);
    expect(login.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
    const page = await h.http.get('/docs');
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.text).toContain('/v1/groups/{id}/members/{userId}');
  });
});
