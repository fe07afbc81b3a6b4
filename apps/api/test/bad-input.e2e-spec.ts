import { OpenApiService } from '../src/core/openapi';
import { type Call, FIXTURES } from './support/fixtures';
import { type Harness, login, orgSnapshot, type SeededOrg, seedOrg, startHarness } from './support/harness';

type Json = Record<string, unknown>;

/** Every variant of a body with one leaf replaced. */
function* leaves(body: Json, path: string[] = []): Generator<{ path: string[]; value: unknown }> {
  for (const [k, v] of Object.entries(body)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) yield* leaves(v as Json, [...path, k]);
    else yield { path: [...path, k], value: v };
  }
}

function replaced(body: Json, path: string[], value: unknown): Json {
  const copy = structuredClone(body);
  let cur: Json = copy;
  for (const k of path.slice(0, -1)) cur = cur[k] as Json;
  cur[path[path.length - 1]] = value;
  return copy;
}

function wrongType(v: unknown): unknown {
  if (typeof v === 'string') return 12345;
  if (typeof v === 'number') return 'twelve';
  if (typeof v === 'boolean') return 'yes';
  if (Array.isArray(v)) return 'not-a-list';
  return ['unexpected'];
}

describe('bad input on every write route', () => {
  let h: Harness;
  let org: SeededOrg;
  let owner: string;
  let calls: { method: string; key: string; call: Call }[];

  beforeAll(async () => {
    h = await startHarness({ env: { BODY_LIMIT_BYTES: '16384' } });
    org = await seedOrg(h.ds, 'acme');
    owner = await login(h, org.users.owner.email);
    // SCIM routes take the org's SCIM token and accept unknown attributes (RFC 7644); OAuth's registration
    // must ignore unknown client metadata (RFC 7591) and its token endpoint takes a form (RFC 6749):
    // scim.e2e-spec and mcp-auth.e2e-spec cover their bad input.
    const routes = h.app.get(OpenApiService).routes().filter((r) => r.method !== 'GET' && !r.path.startsWith('/scim/') && !r.path.startsWith('/oauth/'));
    calls = [];
    for (const r of routes) {
      const key = `${r.method} ${r.path}`;
      calls.push({ method: r.method.toLowerCase(), key, call: await FIXTURES[key]({ h, org, role: 'owner', cookie: owner, ownerCookie: owner }) });
    }
  });
  afterAll(() => h?.close());

  const send = (method: string, call: Call, body: string | Json | unknown[] | undefined, type = 'application/json') => {
    let req = h.http[method as 'post'](call.path).set('Cookie', call.cookie ?? owner);
    if (body !== undefined) req = req.set('Content-Type', type).send(typeof body === 'string' ? body : JSON.stringify(body));
    return req;
  };

  it('refuses each kind of bad input with 4xx problem+json and changes nothing', async () => {
    const before = await orgSnapshot(h.ds, org.id);
    const wrong: string[] = [];
    const expect4xx = async (label: string, res: { status: number; headers: Record<string, string>; body: Json }, status?: number) => {
      const okStatus = status ? res.status === status : res.status >= 400 && res.status < 500;
      if (!okStatus || !/application\/problem\+json/.test(res.headers['content-type'] ?? '') || typeof res.body.code !== 'string') {
        wrong.push(`${label}: ${res.status} ${JSON.stringify(res.body).slice(0, 160)}`);
      }
    };
    let cases = 0;
    for (const { method, key, call } of calls) {
      const body = (call.body ?? {}) as Json;
      const hasBody = call.body !== undefined;
      await expect4xx(`${key} malformed JSON`, await send(method, call, '{"name": "unterminated'), 400);
      await expect4xx(`${key} unknown field`, await send(method, call, { ...body, extraneous: 'x' }), 400);
      await expect4xx(`${key} array body`, await send(method, call, ['x']), 400);
      await expect4xx(`${key} oversize`, await send(method, call, { ...body, padding: 'x'.repeat(20_000) }), 413);
      await expect4xx(`${key} form-encoded`, await send(method, call, 'name=x', 'application/x-www-form-urlencoded'), 415);
      cases += 5;
      if (!hasBody) continue;
      await expect4xx(`${key} empty body`, await send(method, call, undefined), undefined);
      for (const leaf of leaves(body)) {
        await expect4xx(`${key} ${leaf.path.join('.')} wrong type`, await send(method, call, replaced(body, leaf.path, wrongType(leaf.value))), 400);
        cases += 1;
        if (typeof leaf.value === 'string') {
          await expect4xx(`${key} ${leaf.path.join('.')} over-long`, await send(method, call, replaced(body, leaf.path, 'x'.repeat(5000))), 400);
          // PostgreSQL cannot store U+0000 in text or jsonb: refused before any route runs.
          await expect4xx(`${key} ${leaf.path.join('.')} NUL`, await send(method, call, replaced(body, leaf.path, `${leaf.value}\u0000`)), 400);
          cases += 2;
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(cases).toBeGreaterThan(150);
    expect(await orgSnapshot(h.ds, org.id)).toEqual(before);
  });

  it('refuses bad query strings and malformed ids', async () => {
    // A cursor this API never wrote: a well-formed date and 36 hyphens for an id.
    const forged = Buffer.from(`2024-01-01T00:00:00.000Z|${'-'.repeat(36)}`).toString('base64url');
    for (const path of [
      '/v1/members?limit=abc',
      '/v1/members?limit=100000',
      '/v1/groups?sort=name',
      '/v1/audit-events?since=yesterday',
      '/v1/audit-events?since=0000-01-01T00:00:00Z',
      `/v1/audit-events?cursor=${forged}`,
      '/v1/audit-events?connector=a%00b',
    ]) {
      const res = await h.http.get(path).set('Cookie', owner);
      expect({ path, status: res.status, code: res.body.code }).toEqual({ path, status: 400, code: 'validation_failed' });
    }
    // Without signing in too: the OAuth endpoints.
    const authorize = await h.http.get('/oauth/authorize?response_type=code&client_id=%00&redirect_uri=https%3A%2F%2Fa.example%2Fcb&code_challenge=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&code_challenge_method=S256');
    const register = await h.http.post('/oauth/register').set('Content-Type', 'application/json').send('{"redirect_uris":["https://a.example/cb"],"client_name":"x\\u0000"}');
    for (const r of [authorize, register]) expect({ status: r.status, type: r.headers['content-type'], detail: r.body.detail }).toEqual({ status: 400, type: expect.stringMatching(/problem\+json/), detail: expect.stringContaining('U+0000') });
    const res = await h.http.get('/v1/groups/not-a-uuid').set('Cookie', owner);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
  });

  it('answers unknown routes and methods with problem+json', async () => {
    const missing = await h.http.get('/v1/nope').set('Cookie', owner);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ status: 404, code: 'not_found', instance: '/v1/nope' });
    const unauth = await h.http.get('/v1/org');
    expect(unauth.status).toBe(401);
    expect(unauth.body).toMatchObject({ code: 'unauthenticated', type: expect.stringContaining('unauthenticated') });
  });
});
