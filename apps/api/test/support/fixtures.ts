import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newId } from '@steward/common';
import { inOrg } from '@steward/db';
import { generate } from 'otplib';
import { addUser, type Harness, login, PASSWORD, type RoleKey, type SeededOrg } from './harness';
import { type FakeAuthServer, type FakeMcp, startFakeAuthServer, startFakeMcp } from './fakes';

export interface Call {
  path: string;
  body?: unknown;
  /** Send with this cookie instead of the role's (for routes that end or change a session). */
  cookie?: string;
}

export interface Ctx {
  h: Harness;
  org: SeededOrg;
  role: RoleKey;
  /** The role's own session cookie. */
  cookie: string;
  /** The org owner's session cookie, for preparing records. */
  ownerCookie: string;
}

const rnd = () => randomBytes(4).toString('hex');

async function ok<T = Record<string, unknown>>(res: { status: number; body: unknown }, expected: number, what: string): Promise<T> {
  if (res.status !== expected) throw new Error(`fixture ${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as T;
}

export async function newGroup(c: Ctx, cookie = c.ownerCookie): Promise<string> {
  const body = await ok<{ id: string }>(await c.h.http.post('/v1/groups').set('Cookie', cookie).send({ name: `g-${rnd()}` }), 201, 'group');
  return body.id;
}

export async function newRole(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(
    await c.h.http.post('/v1/roles').set('Cookie', c.ownerCookie).send({ key: `r-${rnd()}`, name: 'Reviewer', permissions: [{ action: 'read', subject: 'Group' }] }),
    201,
    'role',
  );
  return body.id;
}

export async function newInvitation(c: Ctx): Promise<{ id: string; token: string }> {
  const body = await ok<{ invitation: { id: string }; token: string }>(
    await c.h.http.post('/v1/invitations').set('Cookie', c.ownerCookie).send({ email: `inv-${rnd()}@elsewhere.example`, roles: ['member'] }),
    201,
    'invitation',
  );
  return { id: body.invitation.id, token: body.token };
}

export async function newApiKey(h: Harness, cookie: string, scopes = ['read:Org']): Promise<{ id: string; secret: string }> {
  const body = await ok<{ apiKey: { id: string }; secret: string }>(
    await h.http.post('/v1/api-keys').set('Cookie', cookie).send({ name: `k-${rnd()}`, scopes }),
    201,
    'api key',
  );
  return { id: body.apiKey.id, secret: body.secret };
}

export async function newHold(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(await c.h.http.post('/v1/legal-holds').set('Cookie', c.ownerCookie).send({ from: '2026-01-01T00:00:00Z', reason: `hold ${rnd()}` }), 201, 'hold');
  return body.id;
}

export async function releaseAllHolds(c: Ctx): Promise<void> {
  const list = await ok<{ items: { id: string; releasedAt: string | null }[] }>(await c.h.http.get('/v1/legal-holds').set('Cookie', c.ownerCookie), 200, 'holds');
  for (const h of list.items.filter((x) => !x.releasedAt)) await ok(await c.h.http.post(`/v1/legal-holds/${h.id}/release`).set('Cookie', c.ownerCookie), 200, 'release hold');
}

export async function newSiemSink(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(await c.h.http.post('/v1/siem-sinks').set('Cookie', c.ownerCookie).send({ url: 'https://splunk.example.com:8088', token: `tok-${rnd()}`, enabled: false }), 201, 'siem sink');
  return body.id;
}

export async function newDraft(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(await c.h.http.post('/v1/policies').set('Cookie', c.ownerCookie).send({ note: `draft ${rnd()}` }), 201, 'draft');
  return body.id;
}

export async function newWorkflow(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(
    await c.h.http.post('/v1/workflows').set('Cookie', c.ownerCookie).send({ key: `wf-${rnd()}`, name: 'Weekly exec brief', actionTypes: ['drive.read', 'drive.create', 'chat.send'] }),
    201,
    'workflow',
  );
  return body.id;
}

/** A fresh user of the role with an enrolled authenticator; returns its cookie and a code generator. */
export async function totpUser(c: Ctx): Promise<{ cookie: string; code: (stepsAhead: number) => Promise<string> }> {
  const user = await addUser(c.h.ds, c.org, c.role);
  const cookie = await login(c.h, user.email, { org: c.org.slug });
  const enrolled = await ok<{ secret: string }>(await c.h.http.post('/v1/auth/totp/enroll').set('Cookie', cookie).send({ password: PASSWORD }), 200, 'enroll');
  const code = (stepsAhead: number) => generate({ secret: enrolled.secret, epoch: Math.floor(Date.now() / 1000) + stepsAhead * 30 });
  await ok(await c.h.http.post('/v1/auth/totp/confirm').set('Cookie', cookie).send({ totpCode: await code(0) }), 204, 'confirm');
  return { cookie, code };
}

/** A fake MCP server and OAuth server per harness (started on first use, closed with the harness). */
const connectorFakes = new WeakMap<Harness, Promise<{ mcp: FakeMcp; as: FakeAuthServer }>>();
export function fakesOf(h: Harness): Promise<{ mcp: FakeMcp; as: FakeAuthServer }> {
  let f = connectorFakes.get(h);
  if (!f) {
    f = (async () => {
      const mcp = await startFakeMcp([{ name: 'lookup', description: 'Look up a company profile.' }]);
      const as = await startFakeAuthServer({ prefix: 'fixture' });
      h.onClose(async () => {
        await mcp.close();
        await as.close();
      });
      return { mcp, as };
    })();
    connectorFakes.set(h, f);
  }
  return f;
}

/** The org allows its connectors to reach the loopback fakes. */
export async function allowLoopback(c: Ctx): Promise<void> {
  await ok(await c.h.http.put('/v1/egress/allow-hosts').set('Cookie', c.ownerCookie).send({ hosts: ['127.0.0.1'] }), 200, 'egress allowlist');
}

export async function newRemoteConnector(c: Ctx, scope: 'org' | 'user' = 'org'): Promise<string> {
  const { mcp } = await fakesOf(c.h);
  await allowLoopback(c);
  const body = await ok<{ id: string }>(
    await c.h.http.post('/v1/connectors').set('Cookie', c.ownerCookie).send({ name: `partner-${rnd()}`, url: `${mcp.url}/mcp`, auth: { kind: 'api_key' }, credentialScope: scope }),
    201,
    'connector',
  );
  return body.id;
}

export async function newOAuthConnector(c: Ctx, scope: 'org' | 'user' = 'user'): Promise<string> {
  const { mcp, as } = await fakesOf(c.h);
  await allowLoopback(c);
  const body = await ok<{ id: string }>(
    await c.h.http
      .post('/v1/connectors')
      .set('Cookie', c.ownerCookie)
      .send({ name: `oauth-${rnd()}`, url: `${mcp.url}/mcp`, auth: { kind: 'oauth2', authorizationUrl: as.authorizationUrl, tokenUrl: as.tokenUrl, clientId: as.clientId, clientSecret: as.clientSecret, scopes: ['read'] }, credentialScope: scope }),
    201,
    'oauth connector',
  );
  return body.id;
}

/** An org credential on a remote connector, set by the owner. */
export async function newOrgCredential(c: Ctx): Promise<string> {
  const connector = await newRemoteConnector(c, 'org');
  const body = await ok<{ id: string }>(await c.h.http.post(`/v1/connectors/${connector}/credentials`).set('Cookie', c.ownerCookie).send({ secret: `fixture-key-${rnd()}` }), 201, 'credential');
  return body.id;
}

async function toolHash(c: Ctx, connector: string, name: string): Promise<string> {
  const list = await ok<{ items: { name: string; hash: string }[] }>(await c.h.http.get(`/v1/connectors/${connector}/tools`).set('Cookie', c.ownerCookie), 200, 'tools');
  return list.items.find((t) => t.name === name)!.hash;
}

/** A queued agent task of the org's owner (no worker runs in the API harness). */
export async function newTask(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(await c.h.http.post('/v1/tasks').set('Cookie', c.ownerCookie).send({ prompt: `[script:hello] fixture ${rnd()}` }), 201, 'task');
  return body.id;
}

/** A stored anomaly report of the org (last month, generated by its owner). */
export async function newReport(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(await c.h.http.post('/v1/reports').set('Cookie', c.ownerCookie).send({}), 201, 'report');
  return body.id;
}

/** A task schedule of the org's owner (Fridays 17:00 Tokyo time). */
export async function newSchedule(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(
    await c.h.http.post('/v1/task-schedules').set('Cookie', c.ownerCookie).send({ name: `Weekly brief ${rnd()}`, cron: '0 17 * * 5', timeZone: 'Asia/Tokyo', prompt: '[script:hello] weekly brief' }),
    201,
    'schedule',
  );
  return body.id;
}

async function freshSession(c: Ctx): Promise<string> {
  const user = await addUser(c.h.ds, c.org, c.role);
  return login(c.h, user.email, { org: c.org.slug });
}

/** How to make a valid call of each route, for a given role. */
/** A pending approval request of the org's member (inserted as the gate's write-ahead writes it). */
export async function newApproval(c: Ctx, kind: 'action' | 'outcome_unknown' = 'action'): Promise<string> {
  const id = newId();
  await inOrg(c.h.ds, { orgId: c.org.id }, (em) =>
    em.query(
      `INSERT INTO approvals (org_id, id, kind, action_id, requested_by, connector, tool, action_type, args_digest, reason, quorum, expires_at)
       VALUES ($1, $2, $3, $4, $5, 'workspace-files', 'files.delete', 'file.delete', $6, 'Watched: fixture', 1, now() + interval '1 hour')`,
      [c.org.id, id, kind, newId(), c.org.users.member.id, '0'.repeat(64)],
    ),
  );
  return id;
}

/** A task of the member in review, with one Batched write whose undo deletes a real workspace file. */
export async function newReview(c: Ctx): Promise<string> {
  const member = await login(c.h, c.org.users.member.email);
  const task = await ok<{ id: string }>(await c.h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: `[script:hello] review fixture ${rnd()}` }), 201, 'task');
  const path = `briefs/fixture-${rnd()}.md`;
  const folder = join(c.h.config.STEWARD_DATA_DIR, 'workspaces', c.org.id, c.org.users.member.id);
  mkdirSync(join(folder, 'briefs'), { recursive: true });
  writeFileSync(join(folder, path), '# brief\n');
  await inOrg(c.h.ds, { orgId: c.org.id }, async (em) => {
    await em.query(`UPDATE tasks SET state = 'in_review', finished_at = now() WHERE org_id = $1 AND id = $2`, [c.org.id, task.id]);
    await em.query(
      `INSERT INTO task_actions (org_id, id, task_id, step, user_id, connector, tool, action_type, level, rule_ids, reason, args_digest, tainted, reversible, state, undo, finished_at)
       VALUES ($1, $2, $3, 2, $4, 'workspace-files', 'files.write', 'file.create', 'batched', '{seed.file.create}', 'Batched: fixture', $5, false, true, 'succeeded', $6, now())`,
      [c.org.id, newId(), task.id, c.org.users.member.id, '0'.repeat(64), JSON.stringify({ tool: 'files.delete', args: { path } })],
    );
  });
  return task.id;
}

/** A Batched file the member's MCP client wrote through the gateway (no task), waiting for a reviewer; its action id. */
export async function newGatewayReview(c: Ctx): Promise<string> {
  const path = `briefs/gateway-${rnd()}.md`;
  const folder = join(c.h.config.STEWARD_DATA_DIR, 'workspaces', c.org.id, c.org.users.member.id);
  mkdirSync(join(folder, 'briefs'), { recursive: true });
  writeFileSync(join(folder, path), '# brief\n');
  const id = newId();
  await inOrg(c.h.ds, { orgId: c.org.id }, (em) =>
    em.query(
      `INSERT INTO task_actions (org_id, id, gateway_key, user_id, connector, tool, action_type, level, rule_ids, reason, args_digest, tainted, reversible, state, undo, finished_at)
       VALUES ($1, $2, $3, $4, 'workspace-files', 'files.write', 'file.create', 'batched', '{seed.file.create}', 'Batched: fixture', $5, false, true, 'succeeded', $6, now())`,
      [c.org.id, id, `mcp:${id}`, c.org.users.member.id, '0'.repeat(64), JSON.stringify({ tool: 'files.delete', args: { path } })],
    ),
  );
  return id;
}

/** An action of a review whose revert was cut short ten minutes ago (as a crash leaves it): one for a person to settle. */
async function interrupted(c: Ctx, actionId: string): Promise<void> {
  await inOrg(c.h.ds, { orgId: c.org.id }, (em) =>
    em.query(`UPDATE task_actions SET review_state = 'reverting', reviewed_by = $3, reviewed_at = now() - interval '10 minutes' WHERE org_id = $1 AND id = $2`, [c.org.id, actionId, c.org.users.owner.id]),
  );
}

/** An open violation of a throwaway member (confirming two would suspend a real one). */
export async function newViolation(c: Ctx): Promise<string> {
  const user = await addUser(c.h.ds, c.org, 'member');
  const id = newId();
  await inOrg(c.h.ds, { orgId: c.org.id }, (em) =>
    em.query(
      `INSERT INTO violations (org_id, id, action_id, user_id, connector, tool, action_type, args_digest, tainted, reason)
       VALUES ($1, $2, $3, $4, 'workspace-files', 'files.write', 'file.create', $5, false, 'Forbidden: fixture')`,
      [c.org.id, id, newId(), user.id, '0'.repeat(64)],
    ),
  );
  return id;
}

/** An open incident of the org, opened by hand by the owner. */
export async function newIncident(c: Ctx): Promise<string> {
  const body = await ok<{ id: string }>(await c.h.http.post('/v1/incidents').set('Cookie', c.ownerCookie).send({ title: `Incident ${rnd()}`, severity: 'medium' }), 201, 'incident');
  return body.id;
}

/** An open sanction of a throwaway member (with the confirmed violation it came from). */
export async function newSanction(c: Ctx, kind: 'warning' | 'suspension' | 'disciplinary_review' = 'suspension'): Promise<string> {
  const user = await addUser(c.h.ds, c.org, 'member');
  const violation = newId();
  const id = newId();
  await inOrg(c.h.ds, { orgId: c.org.id }, async (em) => {
    await em.query(
      `INSERT INTO violations (org_id, id, action_id, user_id, connector, tool, action_type, args_digest, tainted, reason, state, decided_at)
       VALUES ($1, $2, $3, $4, 'workspace-files', 'files.write', 'file.create', $5, false, 'Forbidden: fixture', 'confirmed', now())`,
      [c.org.id, violation, newId(), user.id, '0'.repeat(64)],
    );
    await em.query(`INSERT INTO sanctions (org_id, id, user_id, violation_id, kind, strikes) VALUES ($1, $2, $3, $4, $5, 2)`, [c.org.id, id, user.id, violation, kind]);
  });
  return id;
}

/** A finished task of the caller's own when their role runs tasks, else the owner's. */
export async function newFinishedTask(c: Ctx): Promise<string> {
  let res = await c.h.http.post('/v1/tasks').set('Cookie', c.cookie).send({ prompt: `[script:hello] rated ${rnd()}` });
  if (res.status !== 201) res = await c.h.http.post('/v1/tasks').set('Cookie', c.ownerCookie).send({ prompt: `[script:hello] rated ${rnd()}` });
  const id = (await ok<{ id: string }>(res, 201, 'task')).id;
  await inOrg(c.h.ds, { orgId: c.org.id }, (em) => em.query(`UPDATE tasks SET state = 'completed', finished_at = now() WHERE org_id = $1 AND id = $2`, [c.org.id, id]));
  return id;
}

/** Enough fast approvals of chat.send for a "lower it" recommendation (inserted once per org). */
export async function ensureTuningData(c: Ctx): Promise<void> {
  await inOrg(c.h.ds, { orgId: c.org.id }, async (em) => {
    const [{ n }] = await em.query(`SELECT count(*)::int AS n FROM approvals WHERE org_id = $1 AND action_type = 'chat.send'`, [c.org.id]);
    for (let i = n; i < 30; i++) {
      await em.query(
        `INSERT INTO approvals (org_id, id, kind, action_id, requested_by, connector, tool, action_type, args_digest, reason, quorum, state, created_at, decided_at, expires_at)
         VALUES ($1, $2, 'action', $3, $4, 'slack', 'slack.post', 'chat.send', $5, 'Watched: fixture', 1, 'used', now() - interval '1 day', now() - interval '1 day' + interval '20 seconds', now())`,
        [c.org.id, newId(), newId(), c.org.users.member.id, '0'.repeat(64)],
      );
    }
  });
}

const SSO_BODY = { issuer: 'https://idp.acme.example', clientId: 'steward', clientSecret: 'fixture-client-secret', groupMap: {} };

export async function newScimToken(c: Ctx, cookie = c.ownerCookie): Promise<{ id: string; secret: string }> {
  const body = await ok<{ token: { id: string }; secret: string }>(await c.h.http.post('/v1/org/scim-tokens').set('Cookie', cookie).send({ name: `t-${rnd()}` }), 201, 'scim token');
  return { id: body.token.id, secret: body.secret };
}

/** A pending MCP client authorization (registered client, authorization endpoint): its request id. */
export async function newMcpAuthorization(c: Ctx): Promise<string> {
  const redirect = 'http://127.0.0.1:53682/callback';
  const client = await ok<{ client_id: string }>(await c.h.http.post('/oauth/register').send({ client_name: 'Fixture client', redirect_uris: [redirect] }), 201, 'mcp client');
  const res = await c.h.http.get('/oauth/authorize').query({ response_type: 'code', client_id: client.client_id, redirect_uri: redirect, code_challenge: 'b'.repeat(43), code_challenge_method: 'S256', state: 's' });
  if (res.status !== 302) throw new Error(`fixture mcp authorize: ${res.status} ${JSON.stringify(res.body)}`);
  return new URL(res.headers.location as string, 'http://x').searchParams.get('request')!;
}

/** A grant the role's own user gave an MCP client, as a client gets one: consent, then the code and its PKCE verifier at the token endpoint. */
export async function newMcpGrant(c: Ctx): Promise<string> {
  const redirect = 'http://127.0.0.1:53682/callback';
  const verifier = `v-${rnd()}`.padEnd(43, 'v');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const client = await ok<{ client_id: string }>(await c.h.http.post('/oauth/register').send({ client_name: 'Fixture client', redirect_uris: [redirect] }), 201, 'mcp client');
  const res = await c.h.http.get('/oauth/authorize').query({ response_type: 'code', client_id: client.client_id, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', state: 's' });
  if (res.status !== 302) throw new Error(`fixture mcp authorize: ${res.status} ${JSON.stringify(res.body)}`);
  const request = new URL(res.headers.location as string, 'http://x').searchParams.get('request')!;
  const decided = await ok<{ redirectTo: string }>(await c.h.http.post(`/v1/oauth/requests/${request}/approve`).set('Cookie', c.cookie), 200, 'mcp consent');
  const code = new URL(decided.redirectTo).searchParams.get('code')!;
  await ok(await c.h.http.post('/oauth/token').type('form').send({ grant_type: 'authorization_code', code, redirect_uri: redirect, client_id: client.client_id, code_verifier: verifier }), 200, 'mcp token');
  const user = c.org.users[c.role].id;
  const grants = await ok<{ items: { id: string; clientId: string }[] }>(await c.h.http.get('/v1/mcp-grants').query({ user, status: 'active' }).set('Cookie', c.ownerCookie), 200, 'mcp grants');
  return grants.items.find((g) => g.clientId === client.client_id)!.id;
}

/** The org's SSO configuration exists (written by the owner). */
export async function ensureSso(c: Ctx): Promise<void> {
  await ok(await c.h.http.put('/v1/org/sso').set('Cookie', c.ownerCookie).send(SSO_BODY), 200, 'sso config');
}

export const FIXTURES: Record<string, (c: Ctx) => Promise<Call>> = {
  'GET /docs': async () => ({ path: '/docs' }),
  'GET /healthz': async () => ({ path: '/healthz' }),
  'GET /metrics': async () => ({ path: '/metrics' }),
  'GET /openapi.json': async () => ({ path: '/openapi.json' }),
  'GET /readyz': async () => ({ path: '/readyz' }),
  'GET /v1/setup': async () => ({ path: '/v1/setup' }),
  'POST /v1/setup': async () => ({
    path: '/v1/setup',
    body: { setupToken: 'setup_not-a-valid-token', org: { name: 'Again', slug: `again-${rnd()}` }, owner: { email: `o-${rnd()}@x.example`, name: 'O', password: PASSWORD } },
  }),
  'POST /v1/auth/login': async (c) => ({ path: '/v1/auth/login', body: { email: c.org.users[c.role].email, password: PASSWORD, org: c.org.slug } }),
  'POST /v1/auth/logout': async (c) => ({ path: '/v1/auth/logout', cookie: await freshSession(c) }),
  'GET /v1/auth/session': async () => ({ path: '/v1/auth/session' }),
  'GET /v1/auth/orgs': async () => ({ path: '/v1/auth/orgs' }),
  // An org the caller is not in: not found (auth.e2e-spec switches for real).
  'POST /v1/auth/switch-org': async () => ({ path: '/v1/auth/switch-org', body: { org: 'no-such-org' } }),
  'POST /v1/auth/step-up': async (c) => {
    const u = await totpUser(c);
    return { path: '/v1/auth/step-up', body: { totpCode: await u.code(1) }, cookie: u.cookie };
  },
  'POST /v1/auth/totp/enroll': async (c) => ({ path: '/v1/auth/totp/enroll', body: { password: PASSWORD }, cookie: await freshSession(c) }),
  'POST /v1/auth/totp/confirm': async (c) => {
    const cookie = await freshSession(c);
    const enrolled = (await c.h.http.post('/v1/auth/totp/enroll').set('Cookie', cookie).send({ password: PASSWORD })).body as { secret: string };
    return { path: '/v1/auth/totp/confirm', body: { totpCode: await generate({ secret: enrolled.secret }) }, cookie };
  },
  'POST /v1/auth/totp/disable': async (c) => {
    const u = await totpUser(c);
    return { path: '/v1/auth/totp/disable', body: { password: PASSWORD, totpCode: await u.code(1) }, cookie: u.cookie };
  },
  'POST /v1/auth/recover': async () => ({ path: '/v1/auth/recover', body: { token: `sta_${randomBytes(32).toString('base64url')}`, newPassword: PASSWORD } }),
  'POST /v1/auth/password': async (c) => ({
    path: '/v1/auth/password',
    body: { currentPassword: PASSWORD, newPassword: 'another long passphrase' },
    cookie: await freshSession(c),
  }),
  'GET /v1/org': async () => ({ path: '/v1/org' }),
  'PATCH /v1/org': async () => ({ path: '/v1/org', body: { name: `Renamed ${rnd()}` } }),
  'GET /v1/org/domains': async () => ({ path: '/v1/org/domains' }),
  // The seeded domain is verified already: verifying it again asks no DNS.
  'POST /v1/org/domains/verify': async ({ org }) => ({ path: '/v1/org/domains/verify', body: { domain: `${org.slug}.example` } }),
  'GET /v1/org/sso': async (c) => ({ path: (await ensureSso(c), '/v1/org/sso') }),
  'PUT /v1/org/sso': async () => ({ path: '/v1/org/sso', body: SSO_BODY }),
  'DELETE /v1/org/sso': async (c) => ({ path: (await ensureSso(c), '/v1/org/sso') }),
  'POST /v1/auth/sso/start': async () => ({ path: '/v1/auth/sso/start', body: { org: `no-sso-${rnd()}` } }),
  'GET /v1/auth/sso/callback': async () => ({ path: `/v1/auth/sso/callback?code=abc&state=${rnd()}${rnd()}` }),
  'GET /v1/org/scim-tokens': async () => ({ path: '/v1/org/scim-tokens' }),
  'POST /v1/org/scim-tokens': async () => ({ path: '/v1/org/scim-tokens', body: { name: `Okta ${rnd()}` } }),
  'POST /v1/org/scim-tokens/{id}/rotate': async (c) => ({ path: `/v1/org/scim-tokens/${(await newScimToken(c)).id}/rotate` }),
  'DELETE /v1/org/scim-tokens/{id}': async (c) => ({ path: `/v1/org/scim-tokens/${(await newScimToken(c)).id}` }),
  'GET /scim/v2/ServiceProviderConfig': async () => ({ path: '/scim/v2/ServiceProviderConfig' }),
  'GET /scim/v2/Users': async () => ({ path: '/scim/v2/Users' }),
  'POST /scim/v2/Users': async () => ({ path: '/scim/v2/Users', body: { userName: `scim-${rnd()}@acme.example`, active: true } }),
  'GET /scim/v2/Users/{id}': async () => ({ path: `/scim/v2/Users/${newId()}` }),
  'PUT /scim/v2/Users/{id}': async () => ({ path: `/scim/v2/Users/${newId()}`, body: { userName: `scim-${rnd()}@acme.example`, active: true } }),
  'PATCH /scim/v2/Users/{id}': async () => ({ path: `/scim/v2/Users/${newId()}`, body: { Operations: [{ op: 'replace', value: { active: false } }] } }),
  'DELETE /scim/v2/Users/{id}': async () => ({ path: `/scim/v2/Users/${newId()}` }),
  'GET /scim/v2/Groups': async () => ({ path: '/scim/v2/Groups' }),
  'POST /scim/v2/Groups': async () => ({ path: '/scim/v2/Groups', body: { displayName: `SCIM ${rnd()}` } }),
  'GET /scim/v2/Groups/{id}': async () => ({ path: `/scim/v2/Groups/${newId()}` }),
  'PUT /scim/v2/Groups/{id}': async () => ({ path: `/scim/v2/Groups/${newId()}`, body: { displayName: `SCIM ${rnd()}` } }),
  'PATCH /scim/v2/Groups/{id}': async () => ({ path: `/scim/v2/Groups/${newId()}`, body: { Operations: [{ op: 'replace', path: 'displayName', value: 'x' }] } }),
  'DELETE /scim/v2/Groups/{id}': async () => ({ path: `/scim/v2/Groups/${newId()}` }),
  'GET /.well-known/oauth-protected-resource': async () => ({ path: '/.well-known/oauth-protected-resource' }),
  'GET /.well-known/oauth-protected-resource/mcp': async () => ({ path: '/.well-known/oauth-protected-resource/mcp' }),
  'GET /.well-known/oauth-authorization-server': async () => ({ path: '/.well-known/oauth-authorization-server' }),
  'POST /oauth/register': async () => ({ path: '/oauth/register', body: { client_name: `MCP ${rnd()}`, redirect_uris: ['http://127.0.0.1:53682/callback'] } }),
  'GET /oauth/authorize': async () => ({ path: `/oauth/authorize?response_type=code&client_id=mcp_unknown${rnd()}&redirect_uri=${encodeURIComponent('http://127.0.0.1:53682/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256` }),
  'POST /oauth/token': async () => ({ path: '/oauth/token', body: { grant_type: 'authorization_code', code: `never-issued-${rnd()}`, redirect_uri: 'http://127.0.0.1:53682/callback', client_id: 'mcp_unknown', code_verifier: 'v'.repeat(43) } }),
  'GET /v1/oauth/requests/{request}': async (c) => ({ path: `/v1/oauth/requests/${await newMcpAuthorization(c)}` }),
  'POST /v1/oauth/requests/{request}/approve': async (c) => ({ path: `/v1/oauth/requests/${await newMcpAuthorization(c)}/approve` }),
  'POST /v1/oauth/requests/{request}/deny': async (c) => ({ path: `/v1/oauth/requests/${await newMcpAuthorization(c)}/deny` }),
  'GET /v1/mcp-grants': async () => ({ path: '/v1/mcp-grants' }),
  'DELETE /v1/mcp-grants/{id}': async (c) => ({ path: `/v1/mcp-grants/${await newMcpGrant(c)}` }),
  'POST /oauth/revoke': async () => ({ path: '/oauth/revoke', body: { token: `str_never-issued-${rnd()}`, client_id: 'mcp_unknown' } }),
  'GET /oauth/consent': async (c) => ({ path: `/oauth/consent?request=${await newMcpAuthorization(c)}` }),
  'POST /oauth/consent/sign-in': async () => ({ path: '/oauth/consent/sign-in', body: { request: `unknown-${rnd()}`, csrf: 'x', email: 'nobody@acme.example', password: 'x' } }),
  'POST /oauth/consent/sso': async () => ({ path: '/oauth/consent/sso', body: { request: `unknown-${rnd()}`, csrf: 'x', email: 'nobody@acme.example' } }),
  'POST /oauth/consent': async (c) => ({ path: '/oauth/consent', body: { request: await newMcpAuthorization(c), csrf: 'forged', decision: 'approve' } }),
  // Pause then resume: the table runs them one after the other, so the org is not left paused.
  'POST /v1/org/agents/pause': async () => ({ path: '/v1/org/agents/pause', body: { reason: 'fixture' } }),
  'POST /v1/org/agents/resume': async () => ({ path: '/v1/org/agents/resume', body: {} }),
  'GET /v1/members': async () => ({ path: '/v1/members' }),
  'GET /v1/members/{userId}': async (c) => ({ path: `/v1/members/${c.org.users.member.id}` }),
  'PUT /v1/members/{userId}/roles': async (c) => ({ path: `/v1/members/${(await addUser(c.h.ds, c.org, 'member')).id}/roles`, body: { roles: ['member'] } }),
  'POST /v1/members/{userId}/suspend': async (c) => ({ path: `/v1/members/${(await addUser(c.h.ds, c.org, 'member')).id}/suspend`, body: { reason: 'left the company' } }),
  'POST /v1/members/{userId}/reactivate': async (c) => {
    const u = await addUser(c.h.ds, c.org, 'member');
    await ok(await c.h.http.post(`/v1/members/${u.id}/suspend`).set('Cookie', c.ownerCookie).send({ reason: 'test' }), 200, 'suspend');
    // (As if whoever suspended them is gone: the route's own permission is what the table checks, not the suspender's rank.)
    await inOrg(c.h.ds, { orgId: c.org.id }, (em) => em.query(`UPDATE memberships SET suspended_by = NULL WHERE org_id = $1 AND user_id = $2`, [c.org.id, u.id]));
    return { path: `/v1/members/${u.id}/reactivate` };
  },
  'POST /v1/members/{userId}/recovery': async (c) => ({ path: `/v1/members/${(await addUser(c.h.ds, c.org, 'member')).id}/recovery`, body: {} }),
  'DELETE /v1/members/{userId}/recovery': async (c) => {
    const u = await addUser(c.h.ds, c.org, 'member');
    await ok(await c.h.http.post(`/v1/members/${u.id}/recovery`).set('Cookie', c.ownerCookie).send({}), 201, 'recovery');
    return { path: `/v1/members/${u.id}/recovery` };
  },
  'GET /v1/invitations': async () => ({ path: '/v1/invitations' }),
  'POST /v1/invitations': async () => ({ path: '/v1/invitations', body: { email: `new-${rnd()}@elsewhere.example`, roles: ['member'] } }),
  'DELETE /v1/invitations/{id}': async (c) => ({ path: `/v1/invitations/${(await newInvitation(c)).id}` }),
  'POST /v1/invitations/accept': async (c) => ({ path: '/v1/invitations/accept', body: { token: (await newInvitation(c)).token, name: 'New Person', password: PASSWORD } }),
  'GET /v1/roles': async () => ({ path: '/v1/roles' }),
  'POST /v1/roles': async () => ({ path: '/v1/roles', body: { key: `r-${rnd()}`, name: 'Group reader', permissions: [{ action: 'read', subject: 'Group' }] } }),
  'GET /v1/roles/{id}': async (c) => ({ path: `/v1/roles/${await newRole(c)}` }),
  'PATCH /v1/roles/{id}': async (c) => ({ path: `/v1/roles/${await newRole(c)}`, body: { name: 'Renamed role' } }),
  'DELETE /v1/roles/{id}': async (c) => ({ path: `/v1/roles/${await newRole(c)}` }),
  'GET /v1/groups': async () => ({ path: '/v1/groups' }),
  'POST /v1/groups': async () => ({ path: '/v1/groups', body: { name: `Legal ${rnd()}`, description: 'Contract triage' } }),
  'GET /v1/groups/{id}': async (c) => ({ path: `/v1/groups/${await newGroup(c)}` }),
  'PATCH /v1/groups/{id}': async (c) => ({ path: `/v1/groups/${await newGroup(c)}`, body: { description: 'updated' } }),
  'DELETE /v1/groups/{id}': async (c) => ({ path: `/v1/groups/${await newGroup(c)}` }),
  'GET /v1/groups/{id}/members': async (c) => ({ path: `/v1/groups/${await newGroup(c)}/members` }),
  'PUT /v1/groups/{id}/members/{userId}': async (c) => ({ path: `/v1/groups/${await newGroup(c)}/members/${c.org.users.member.id}` }),
  'DELETE /v1/groups/{id}/members/{userId}': async (c) => {
    const g = await newGroup(c);
    await ok(await c.h.http.put(`/v1/groups/${g}/members/${c.org.users.member.id}`).set('Cookie', c.ownerCookie), 204, 'add member');
    return { path: `/v1/groups/${g}/members/${c.org.users.member.id}` };
  },
  'GET /v1/api-keys': async () => ({ path: '/v1/api-keys' }),
  'POST /v1/api-keys': async () => ({ path: '/v1/api-keys', body: { name: 'cli laptop', scopes: ['read:Org'] } }),
  'GET /v1/api-keys/{id}': async (c) => ({ path: `/v1/api-keys/${(await newApiKey(c.h, c.cookie)).id}` }),
  'DELETE /v1/api-keys/{id}': async (c) => ({ path: `/v1/api-keys/${(await newApiKey(c.h, c.cookie)).id}` }),
  'GET /v1/audit-events': async () => ({ path: '/v1/audit-events' }),
  'GET /v1/audit-events/{id}/sensitive': async (c) => {
    const inv = await newInvitation(c);
    const events = await ok<{ items: { id: string }[] }>(await c.h.http.get('/v1/audit-events').query({ action: 'invitation.create', targetId: inv.id }).set('Cookie', c.ownerCookie), 200, 'events');
    return { path: `/v1/audit-events/${events.items[0].id}/sensitive` };
  },
  'POST /v1/audit/verify': async () => ({ path: '/v1/audit/verify', body: {} }),
  'GET /v1/audit/checkpoints': async () => ({ path: '/v1/audit/checkpoints' }),
  'POST /v1/audit/checkpoints': async () => ({ path: '/v1/audit/checkpoints' }),
  'GET /v1/audit/erasures': async () => ({ path: '/v1/audit/erasures' }),
  'POST /v1/audit/erasures': async (c) => {
    await releaseAllHolds(c); // an erasure is refused while a hold covers the person
    return { path: '/v1/audit/erasures', body: { userId: c.org.users.approver.id, reason: 'APPI deletion request #4411' } };
  },
  'GET /v1/audit/public-key': async () => ({ path: '/v1/audit/public-key' }),
  'GET /v1/audit/export/manifest': async () => ({ path: '/v1/audit/export/manifest' }),
  'GET /v1/audit/export': async () => ({ path: '/v1/audit/export' }),
  'GET /v1/legal-holds': async () => ({ path: '/v1/legal-holds' }),
  'POST /v1/legal-holds': async (c) => ({ path: '/v1/legal-holds', body: { userId: c.org.users.member.id, from: '2026-01-01T00:00:00Z', reason: 'litigation hold: vendor dispute' } }),
  'POST /v1/legal-holds/{id}/release': async (c) => ({ path: `/v1/legal-holds/${await newHold(c)}/release` }),
  'GET /v1/siem-sinks': async () => ({ path: '/v1/siem-sinks' }),
  'POST /v1/siem-sinks': async () => ({ path: '/v1/siem-sinks', body: { url: 'https://splunk.example.com:8088', token: 'hec-secret-token', enabled: false } }),
  'PATCH /v1/siem-sinks/{id}': async (c) => ({ path: `/v1/siem-sinks/${await newSiemSink(c)}`, body: { batchSize: 100 } }),
  'DELETE /v1/siem-sinks/{id}': async (c) => ({ path: `/v1/siem-sinks/${await newSiemSink(c)}` }),
  'GET /v1/catalog/actions': async () => ({ path: '/v1/catalog/actions' }),
  'GET /v1/policies': async () => ({ path: '/v1/policies' }),
  'GET /v1/policies/active': async () => ({ path: '/v1/policies/active' }),
  'POST /v1/policies/explain': async () => ({ path: '/v1/policies/explain', body: { action: 'email.send', context: { recipients: ['client@customer.example'] } } }),
  'POST /v1/policies': async () => ({ path: '/v1/policies', body: { note: 'Tighten file.create for the pilot' } }),
  'GET /v1/policies/{id}': async (c) => ({ path: `/v1/policies/${await newDraft(c)}` }),
  'PATCH /v1/policies/{id}': async (c) => ({ path: `/v1/policies/${await newDraft(c)}`, body: { note: 'reworded' } }),
  'DELETE /v1/policies/{id}': async (c) => ({ path: `/v1/policies/${await newDraft(c)}` }),
  'POST /v1/policies/{id}/activate': async (c) => ({ path: `/v1/policies/${await newDraft(c)}/activate`, body: { note: 'approved by the owner' } }),
  'GET /v1/policies/{id}/diff': async (c) => ({ path: `/v1/policies/${await newDraft(c)}/diff` }),
  'POST /v1/policies/{id}/simulate': async (c) => ({ path: `/v1/policies/${await newDraft(c)}/simulate`, body: { actions: [{ action: 'file.delete', context: { resources: ['/tmp/a.txt'] } }] } }),
  'GET /v1/workflows': async () => ({ path: '/v1/workflows' }),
  'POST /v1/workflows': async () => ({ path: '/v1/workflows', body: { key: `brief-${rnd()}`, name: 'Weekly exec brief', description: 'Friday 17:00 numbers, competitors, summary to Slack', actionTypes: ['drive.read', 'saas.read', 'drive.create', 'chat.send'] } }),
  'GET /v1/workflows/{id}': async (c) => ({ path: `/v1/workflows/${await newWorkflow(c)}` }),
  'PATCH /v1/workflows/{id}': async (c) => ({ path: `/v1/workflows/${await newWorkflow(c)}`, body: { description: 'updated' } }),
  'DELETE /v1/workflows/{id}': async (c) => ({ path: `/v1/workflows/${await newWorkflow(c)}` }),
  'GET /v1/workflows/{id}/classification': async (c) => ({ path: `/v1/workflows/${await newWorkflow(c)}/classification` }),
  'GET /v1/catalog/connectors': async () => ({ path: '/v1/catalog/connectors' }),
  'GET /v1/egress/allow-hosts': async () => ({ path: '/v1/egress/allow-hosts' }),
  'PUT /v1/egress/allow-hosts': async () => ({ path: '/v1/egress/allow-hosts', body: { hosts: ['127.0.0.1'] } }),
  'GET /v1/connectors': async () => ({ path: '/v1/connectors' }),
  'POST /v1/connectors': async (c) => {
    const { mcp } = await fakesOf(c.h);
    await allowLoopback(c);
    return { path: '/v1/connectors', body: { name: `partner-${rnd()}`, url: `${mcp.url}/mcp`, auth: { kind: 'api_key' }, credentialScope: 'org' } };
  },
  'GET /v1/connectors/{id}': async (c) => ({ path: `/v1/connectors/${await newRemoteConnector(c)}` }),
  'PATCH /v1/connectors/{id}': async (c) => ({ path: `/v1/connectors/${await newRemoteConnector(c)}`, body: { relaySampling: true } }),
  'DELETE /v1/connectors/{id}': async (c) => ({ path: `/v1/connectors/${await newRemoteConnector(c)}` }),
  'POST /v1/connectors/{id}/discover': async (c) => ({ path: `/v1/connectors/${await newRemoteConnector(c)}/discover` }),
  'GET /v1/connectors/{id}/tools': async (c) => ({ path: `/v1/connectors/${await newRemoteConnector(c)}/tools` }),
  'PATCH /v1/connectors/{id}/tools/{name}': async (c) => ({ path: `/v1/connectors/${await newRemoteConnector(c)}/tools/lookup`, body: { action: 'saas.read' } }),
  'POST /v1/connectors/{id}/tools/{name}/approve': async (c) => {
    const id = await newRemoteConnector(c);
    return { path: `/v1/connectors/${id}/tools/lookup/approve`, body: { hash: await toolHash(c, id, 'lookup'), action: 'saas.read' } };
  },
  'POST /v1/connectors/{id}/tools/{name}/hold': async (c) => ({ path: `/v1/connectors/${await newRemoteConnector(c)}/tools/lookup/hold`, body: { reason: 'under review' } }),
  'POST /v1/connectors/{id}/credentials': async (c) => ({ path: `/v1/connectors/${await newRemoteConnector(c, 'user')}/credentials`, body: { secret: `fixture-key-${rnd()}` } }),
  'POST /v1/connectors/{id}/oauth/start': async (c) => ({ path: `/v1/connectors/${await newOAuthConnector(c)}/oauth/start`, body: { redirectUri: 'http://localhost:3000/connectors/callback' } }),
  'POST /v1/oauth/callback': async (c) => {
    const { as } = await fakesOf(c.h);
    const connector = await newOAuthConnector(c);
    // Roles that may not connect get a state someone else started (refused as not theirs).
    let res = await c.h.http.post(`/v1/connectors/${connector}/oauth/start`).set('Cookie', c.cookie).send({ redirectUri: 'http://localhost:3000/connectors/callback' });
    if (res.status !== 200) res = await c.h.http.post(`/v1/connectors/${connector}/oauth/start`).set('Cookie', c.ownerCookie).send({ redirectUri: 'http://localhost:3000/connectors/callback' });
    const started = await ok<{ authorizationUrl: string }>(res, 200, 'oauth start');
    return { path: '/v1/oauth/callback', body: await as.consent(started.authorizationUrl) };
  },
  'GET /v1/credentials': async () => ({ path: '/v1/credentials' }),
  'POST /v1/credentials/{id}/test': async (c) => ({ path: `/v1/credentials/${await newOrgCredential(c)}/test` }),
  'POST /v1/credentials/{id}/rotate': async (c) => ({ path: `/v1/credentials/${await newOrgCredential(c)}/rotate`, body: { secret: `rotated-${rnd()}` } }),
  'POST /v1/credentials/{id}/revoke': async (c) => ({ path: `/v1/credentials/${await newOrgCredential(c)}/revoke` }),
  'POST /v1/tasks': async () => ({ path: '/v1/tasks', body: { prompt: 'Weekly exec brief: last week numbers and competitor moves', connectors: ['workspace-files'] } }),
  'GET /v1/tasks': async () => ({ path: '/v1/tasks' }),
  'GET /v1/tasks/{id}': async (c) => ({ path: `/v1/tasks/${await newTask(c)}` }),
  'POST /v1/tasks/{id}/cancel': async (c) => ({ path: `/v1/tasks/${await newTask(c)}/cancel` }),
  'GET /v1/tasks/{id}/events': async (c) => ({ path: `/v1/tasks/${await newTask(c)}/events?follow=false` }),
  'GET /v1/approvals': async () => ({ path: '/v1/approvals?state=pending' }),
  'GET /v1/approvals/{id}': async (c) => ({ path: `/v1/approvals/${await newApproval(c)}` }),
  'POST /v1/approvals/{id}/approve': async (c) => ({ path: `/v1/approvals/${await newApproval(c)}/approve`, body: { reason: 'looks right' } }),
  'POST /v1/approvals/{id}/reject': async (c) => ({ path: `/v1/approvals/${await newApproval(c)}/reject`, body: { reason: 'not this file' } }),
  'POST /v1/approvals/{id}/settle': async (c) => ({ path: `/v1/approvals/${await newApproval(c, 'outcome_unknown')}/settle`, body: { done: true } }),
  'GET /v1/reviews': async () => ({ path: '/v1/reviews' }),
  'GET /v1/reviews/{id}': async (c) => ({ path: `/v1/reviews/${await newReview(c)}` }),
  'GET /v1/reviews/gateway': async () => ({ path: '/v1/reviews/gateway' }),
  'POST /v1/reviews/gateway/actions/{actionId}/settle': async (c) => {
    const id = await newGatewayReview(c);
    await interrupted(c, id);
    return { path: `/v1/reviews/gateway/actions/${id}/settle`, body: { done: false } };
  },
  'POST /v1/reviews/{id}/actions/{actionId}/settle': async (c) => {
    const id = await newReview(c);
    const [a] = await inOrg(c.h.ds, { orgId: c.org.id }, (em) => em.query(`SELECT id FROM task_actions WHERE org_id = $1 AND task_id = $2`, [c.org.id, id]));
    await interrupted(c, a.id);
    return { path: `/v1/reviews/${id}/actions/${a.id}/settle`, body: { done: true, reason: 'the file is gone' } };
  },
  'POST /v1/reviews/gateway/accept': async (c) => ({ path: '/v1/reviews/gateway/accept', body: { actionIds: [await newGatewayReview(c)] } }),
  'POST /v1/reviews/gateway/revert': async (c) => ({ path: '/v1/reviews/gateway/revert', body: { actionIds: [await newGatewayReview(c)], reason: 'not needed' } }),
  'POST /v1/reviews/gateway/dismiss': async (c) => ({ path: '/v1/reviews/gateway/dismiss', body: { actionIds: [await newGatewayReview(c)], reason: 'the folder was removed' } }),
  'POST /v1/reviews/{id}/accept': async (c) => ({ path: `/v1/reviews/${await newReview(c)}/accept`, body: {} }),
  'POST /v1/reviews/{id}/revert': async (c) => ({ path: `/v1/reviews/${await newReview(c)}/revert`, body: { reason: 'not needed' } }),
  'POST /v1/reviews/{id}/actions/{actionId}/accept': async (c) => {
    const id = await newReview(c);
    const [a] = await inOrg(c.h.ds, { orgId: c.org.id }, (em) => em.query(`SELECT id FROM task_actions WHERE org_id = $1 AND task_id = $2`, [c.org.id, id]));
    return { path: `/v1/reviews/${id}/actions/${a.id}/accept`, body: {} };
  },
  'POST /v1/reviews/{id}/actions/{actionId}/dismiss': async (c) => {
    const id = await newReview(c);
    const [a] = await inOrg(c.h.ds, { orgId: c.org.id }, (em) => em.query(`SELECT id FROM task_actions WHERE org_id = $1 AND task_id = $2`, [c.org.id, id]));
    return { path: `/v1/reviews/${id}/actions/${a.id}/dismiss`, body: { reason: 'the connector was removed' } };
  },
  'POST /v1/reviews/{id}/actions/{actionId}/revert': async (c) => {
    const id = await newReview(c);
    const [a] = await inOrg(c.h.ds, { orgId: c.org.id }, (em) => em.query(`SELECT id FROM task_actions WHERE org_id = $1 AND task_id = $2`, [c.org.id, id]));
    return { path: `/v1/reviews/${id}/actions/${a.id}/revert`, body: {} };
  },
  'GET /v1/incidents': async () => ({ path: '/v1/incidents' }),
  'POST /v1/incidents': async () => ({ path: '/v1/incidents', body: { title: `Shared link sent outside ${rnd()}`, severity: 'high' } }),
  'GET /v1/incidents/{id}': async (c) => ({ path: `/v1/incidents/${await newIncident(c)}` }),
  'POST /v1/incidents/{id}/acknowledge': async (c) => ({ path: `/v1/incidents/${await newIncident(c)}/acknowledge`, body: { note: 'on it' } }),
  'POST /v1/incidents/{id}/assign': async (c) => ({ path: `/v1/incidents/${await newIncident(c)}/assign`, body: { ownerId: c.org.users.security.id } }),
  'POST /v1/incidents/{id}/resolve': async (c) => ({ path: `/v1/incidents/${await newIncident(c)}/resolve`, body: { resolution: 'link revoked' } }),
  'POST /v1/incidents/{id}/close': async (c) => ({ path: `/v1/incidents/${await newIncident(c)}/close`, body: {} }),
  'POST /v1/incidents/{id}/comments': async (c) => ({ path: `/v1/incidents/${await newIncident(c)}/comments`, body: { body: 'looking' } }),
  'GET /v1/incident-settings': async () => ({ path: '/v1/incident-settings' }),
  'PUT /v1/incident-settings': async () => ({ path: '/v1/incident-settings', body: { channels: ['email'], smtp: { host: '127.0.0.1', port: 2525, from: 'steward@acme.example' } } }),
  'GET /v1/sanctions': async () => ({ path: '/v1/sanctions' }),
  'GET /v1/members/{userId}/strikes': async (c) => ({ path: `/v1/members/${c.org.users.member.id}/strikes` }),
  'POST /v1/sanctions/{id}/lift': async (c) => ({ path: `/v1/sanctions/${await newSanction(c, 'suspension')}/lift`, body: { note: 'retrained' } }),
  'POST /v1/sanctions/{id}/outcome': async (c) => ({ path: `/v1/sanctions/${await newSanction(c, 'disciplinary_review')}/outcome`, body: { outcome: 'final_warning', note: 'reviewed with HR' } }),
  'GET /v1/violations/{id}/evidence': async (c) => ({ path: `/v1/violations/${await newViolation(c)}/evidence` }),
  'GET /v1/trust-recommendations': async () => ({ path: '/v1/trust-recommendations' }),
  'POST /v1/trust-recommendations/draft': async (c) => {
    await ensureTuningData(c);
    return { path: '/v1/trust-recommendations/draft', body: { items: [{ actionType: 'chat.send', scope: { type: 'org' } }] } };
  },
  'GET /v1/pilot/metrics': async () => ({ path: '/v1/pilot/metrics' }),
  'PUT /v1/workflows/{id}/baseline': async (c) => ({ path: `/v1/workflows/${await newWorkflow(c)}/baseline`, body: { manualMinutes: 180 } }),
  'PUT /v1/tasks/{id}/rating': async (c) => ({ path: `/v1/tasks/${await newFinishedTask(c)}/rating`, body: { rating: 4 } }),
  'GET /v1/violations': async () => ({ path: '/v1/violations' }),
  'GET /v1/violations/{id}': async (c) => ({ path: `/v1/violations/${await newViolation(c)}` }),
  'POST /v1/violations/{id}/confirm': async (c) => ({ path: `/v1/violations/${await newViolation(c)}/confirm`, body: { note: 'the user asked for it' } }),
  'POST /v1/violations/{id}/dismiss': async (c) => ({ path: `/v1/violations/${await newViolation(c)}/dismiss`, body: { note: 'injected instruction in a web page' } }),
  'POST /v1/task-schedules': async () => ({ path: '/v1/task-schedules', body: { name: 'Weekly executive brief', cron: '0 17 * * 5', timeZone: 'Asia/Tokyo', prompt: 'Weekly exec brief: last week numbers and competitor moves' } }),
  'GET /v1/task-schedules': async () => ({ path: '/v1/task-schedules' }),
  'POST /v1/reports': async () => ({ path: '/v1/reports', body: { timeZone: 'Europe/Berlin' } }),
  'GET /v1/reports': async () => ({ path: '/v1/reports' }),
  'GET /v1/reports/{id}': async (c) => ({ path: `/v1/reports/${await newReport(c)}` }),
  'GET /v1/reports/{id}/download': async (c) => ({ path: `/v1/reports/${await newReport(c)}/download?format=csv` }),
  'GET /v1/reports/schedule': async () => ({ path: '/v1/reports/schedule' }),
  'PUT /v1/reports/schedule': async () => ({ path: '/v1/reports/schedule', body: { timeZone: 'Europe/Berlin', enabled: true } }),
  'POST /v1/policies/{id}/replay': async (c) => ({ path: `/v1/policies/${await newDraft(c)}/replay`, body: { days: 30 } }),
  'GET /v1/task-schedules/{id}': async (c) => ({ path: `/v1/task-schedules/${await newSchedule(c)}` }),
  'PATCH /v1/task-schedules/{id}': async (c) => ({ path: `/v1/task-schedules/${await newSchedule(c)}`, body: { cron: '30 8 * * 1', timeZone: 'Europe/Paris' } }),
  'DELETE /v1/task-schedules/{id}': async (c) => ({ path: `/v1/task-schedules/${await newSchedule(c)}` }),
  'POST /v1/task-schedules/{id}/pause': async (c) => ({ path: `/v1/task-schedules/${await newSchedule(c)}/pause` }),
  'POST /v1/task-schedules/{id}/resume': async (c) => ({ path: `/v1/task-schedules/${await newSchedule(c)}/resume` }),
  'GET /v1/usage': async () => ({ path: '/v1/usage' }),
};
