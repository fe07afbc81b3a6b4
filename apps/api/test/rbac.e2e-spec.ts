import { OpenApiService } from '../src/core/openapi';
import { type Ctx, FIXTURES } from './support/fixtures';
import { type Harness, login, ROLES, type RoleKey, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * The role × route table. Every route of the API is here; a route missing from it
 * (or listed but gone) fails the test. "ok" means the route's success status.
 */
type Expect = 'ok' | number;
type Row = Record<RoleKey, Expect>;
const every = (v: Expect): Row => ({ owner: v, admin: v, security: v, auditor: v, approver: v, member: v });
const only = (allowed: RoleKey[], denied: Expect = 403): Row =>
  Object.fromEntries(ROLES.map((r) => [r, allowed.includes(r) ? 'ok' : denied])) as Row;

const READERS_OF_MEMBERS: RoleKey[] = ['owner', 'admin', 'security', 'auditor', 'approver'];
const AUDIT_READERS: RoleKey[] = ['owner', 'admin', 'security', 'auditor'];

const TABLE: Record<string, Row> = {
  'GET /docs': every('ok'),
  'GET /healthz': every('ok'),
  'GET /metrics': every('ok'),
  'GET /openapi.json': every('ok'),
  'GET /readyz': every('ok'),
  'GET /v1/setup': every('ok'),
  'POST /v1/setup': every(403), // setup is done once; the token is single-use
  'POST /v1/auth/login': every('ok'),
  'POST /v1/auth/logout': every('ok'),
  'GET /v1/auth/session': every('ok'),
  'GET /v1/auth/orgs': every('ok'),
  'POST /v1/auth/switch-org': every(404), // an org the caller is not in
  'POST /v1/auth/step-up': every('ok'),
  'POST /v1/auth/totp/enroll': every('ok'),
  'POST /v1/auth/totp/confirm': every('ok'),
  'POST /v1/auth/totp/disable': every('ok'),
  'POST /v1/auth/password': every('ok'),
  'POST /v1/auth/recover': every(404), // public; a link Steward never issued (auth.e2e-spec recovers an account for real)
  'GET /v1/org': every('ok'),
  'PATCH /v1/org': only(['owner']),
  'GET /v1/org/domains': every('ok'),
  'POST /v1/org/domains/verify': only(['owner']),
  'GET /v1/org/sso': only(['owner', 'admin', 'security']),
  'PUT /v1/org/sso': only(['owner']),
  'DELETE /v1/org/sso': only(['owner']),
  'POST /v1/auth/sso/start': every(404), // public; an org without SSO is not found (sso.e2e-spec signs in for real)
  'GET /v1/auth/sso/callback': every(401), // public; a state Steward never issued is refused
  'GET /v1/org/scim-tokens': only(['owner', 'admin', 'security']),
  'POST /v1/org/scim-tokens': only(['owner']),
  'POST /v1/org/scim-tokens/{id}/rotate': only(['owner']),
  'DELETE /v1/org/scim-tokens/{id}': only(['owner']),
  // SCIM answers only the org's SCIM token (scim.e2e-spec); a console session is unauthenticated there.
  'GET /scim/v2/ServiceProviderConfig': every(401),
  'GET /scim/v2/Users': every(401),
  'POST /scim/v2/Users': every(401),
  'GET /scim/v2/Users/{id}': every(401),
  'PUT /scim/v2/Users/{id}': every(401),
  'PATCH /scim/v2/Users/{id}': every(401),
  'DELETE /scim/v2/Users/{id}': every(401),
  'GET /scim/v2/Groups': every(401),
  'POST /scim/v2/Groups': every(401),
  'GET /scim/v2/Groups/{id}': every(401),
  'PUT /scim/v2/Groups/{id}': every(401),
  'PATCH /scim/v2/Groups/{id}': every(401),
  'DELETE /scim/v2/Groups/{id}': every(401),
  // MCP authorization: metadata, registration, authorization and token endpoints are public (OAuth);
  // any member may let an MCP client act for themself (mcp-auth.e2e-spec runs the whole flow).
  'GET /.well-known/oauth-protected-resource': every('ok'),
  'GET /.well-known/oauth-protected-resource/mcp': every('ok'),
  'GET /.well-known/oauth-authorization-server': every('ok'),
  'POST /oauth/register': every('ok'),
  'GET /oauth/authorize': every(400), // an unknown client is answered here, never redirected to
  'POST /oauth/token': every(400), // a code that was never issued
  'GET /v1/oauth/requests/{request}': every('ok'),
  'POST /v1/oauth/requests/{request}/approve': every('ok'),
  'POST /v1/oauth/requests/{request}/deny': every('ok'),
  // Grants given to MCP clients: under the API key permissions (the org's, or one's own).
  'GET /v1/mcp-grants': every('ok'),
  'DELETE /v1/mcp-grants/{id}': every('ok'), // one's own grant
  'POST /oauth/revoke': every('ok'), // RFC 7009: the same answer whether or not the token was known
  'GET /oauth/consent': every('ok'), // the consent page for the signed-in member
  'POST /oauth/consent/sign-in': every(404), // a request Steward never issued
  'POST /oauth/consent/sso': every(404), // a request Steward never issued
  'POST /oauth/consent': every(403), // a forged CSRF token
  'POST /v1/org/agents/pause': only(['owner', 'security']),
  'POST /v1/org/agents/resume': only(['owner', 'security']),
  'GET /v1/members': only(READERS_OF_MEMBERS),
  'GET /v1/members/{userId}': only(READERS_OF_MEMBERS),
  'PUT /v1/members/{userId}/roles': only(['owner', 'admin']),
  'POST /v1/members/{userId}/suspend': only(['owner', 'admin', 'security']),
  'POST /v1/members/{userId}/reactivate': only(['owner', 'admin', 'security']),
  'POST /v1/members/{userId}/recovery': only(['owner', 'admin']),
  'DELETE /v1/members/{userId}/recovery': only(['owner', 'admin']),
  'GET /v1/invitations': only(AUDIT_READERS),
  'POST /v1/invitations': only(['owner', 'admin']),
  'DELETE /v1/invitations/{id}': only(['owner', 'admin']),
  'POST /v1/invitations/accept': every('ok'),
  'GET /v1/roles': only(AUDIT_READERS),
  'POST /v1/roles': only(['owner']),
  'GET /v1/roles/{id}': only(AUDIT_READERS),
  'PATCH /v1/roles/{id}': only(['owner']),
  'DELETE /v1/roles/{id}': only(['owner']),
  'GET /v1/groups': only(READERS_OF_MEMBERS),
  'POST /v1/groups': only(['owner', 'admin']),
  'GET /v1/groups/{id}': only(READERS_OF_MEMBERS),
  'PATCH /v1/groups/{id}': only(['owner', 'admin']),
  'DELETE /v1/groups/{id}': only(['owner', 'admin']),
  'GET /v1/groups/{id}/members': only(READERS_OF_MEMBERS),
  'PUT /v1/groups/{id}/members/{userId}': only(['owner', 'admin']),
  'DELETE /v1/groups/{id}/members/{userId}': only(['owner', 'admin']),
  'GET /v1/api-keys': every('ok'), // the org's keys, or only one's own
  'POST /v1/api-keys': every('ok'),
  'GET /v1/api-keys/{id}': every('ok'), // one's own key
  'DELETE /v1/api-keys/{id}': every('ok'), // one's own key
  'GET /v1/audit-events': only(AUDIT_READERS),
  'GET /v1/audit-events/{id}/sensitive': only(['owner', 'auditor']),
  'POST /v1/audit/verify': only(['owner', 'security', 'auditor']),
  'GET /v1/audit/checkpoints': only(AUDIT_READERS),
  'POST /v1/audit/checkpoints': only(['owner', 'security']),
  'GET /v1/audit/erasures': only(AUDIT_READERS),
  'POST /v1/audit/erasures': only(['owner', 'security'], 403),
  'GET /v1/audit/public-key': every('ok'),
  'GET /v1/audit/export/manifest': only(['owner', 'security', 'auditor']),
  'GET /v1/audit/export': only(['owner', 'security', 'auditor']),
  'GET /v1/legal-holds': only(['owner', 'security', 'auditor']),
  'POST /v1/legal-holds': only(['owner', 'security']),
  'POST /v1/legal-holds/{id}/release': only(['owner', 'security']),
  'GET /v1/siem-sinks': only(['owner', 'security', 'admin']),
  'POST /v1/siem-sinks': only(['owner', 'security']),
  'PATCH /v1/siem-sinks/{id}': only(['owner', 'security']),
  'DELETE /v1/siem-sinks/{id}': only(['owner', 'security']),
  'GET /v1/catalog/actions': every('ok'),
  'GET /v1/policies': every('ok'),
  'GET /v1/policies/active': every('ok'),
  'POST /v1/policies/explain': every('ok'),
  'POST /v1/policies': only(['owner', 'admin']),
  'GET /v1/policies/{id}': every('ok'),
  'PATCH /v1/policies/{id}': only(['owner', 'admin']),
  'DELETE /v1/policies/{id}': only(['owner', 'admin']),
  'POST /v1/policies/{id}/activate': only(['owner']),
  'GET /v1/policies/{id}/diff': every('ok'),
  'POST /v1/policies/{id}/simulate': every('ok'),
  'GET /v1/workflows': every('ok'),
  'POST /v1/workflows': only(['owner', 'admin']),
  'GET /v1/workflows/{id}': every('ok'),
  'PATCH /v1/workflows/{id}': only(['owner', 'admin']),
  'DELETE /v1/workflows/{id}': only(['owner', 'admin']),
  'GET /v1/workflows/{id}/classification': every('ok'),
  'GET /v1/catalog/connectors': every('ok'),
  'GET /v1/egress/allow-hosts': every('ok'),
  'PUT /v1/egress/allow-hosts': only(['owner', 'admin']),
  'GET /v1/connectors': every('ok'),
  'POST /v1/connectors': only(['owner', 'admin']),
  'GET /v1/connectors/{id}': every('ok'),
  'PATCH /v1/connectors/{id}': only(['owner', 'admin']),
  'DELETE /v1/connectors/{id}': only(['owner', 'admin']),
  'POST /v1/connectors/{id}/discover': only(['owner', 'admin']),
  'GET /v1/connectors/{id}/tools': every('ok'),
  'PATCH /v1/connectors/{id}/tools/{name}': only(['owner', 'admin']),
  'POST /v1/connectors/{id}/tools/{name}/approve': only(['owner', 'admin']),
  'POST /v1/connectors/{id}/tools/{name}/hold': only(['owner', 'admin']),
  // Per-user connector: members and approvers set their own; security and auditors set none.
  'POST /v1/connectors/{id}/credentials': only(['owner', 'admin', 'approver', 'member']),
  'POST /v1/connectors/{id}/oauth/start': only(['owner', 'admin', 'approver', 'member']),
  // Roles that cannot connect hold no state of their own: someone else's state is refused.
  'POST /v1/oauth/callback': only(['owner', 'admin', 'approver', 'member'], 400),
  'GET /v1/credentials': every('ok'), // the org's metadata, or only one's own
  // An org credential: approvers and members cannot even see it; security may only revoke.
  'POST /v1/credentials/{id}/test': { owner: 'ok', admin: 'ok', security: 403, auditor: 403, approver: 404, member: 404 },
  'POST /v1/credentials/{id}/rotate': { owner: 'ok', admin: 'ok', security: 403, auditor: 403, approver: 404, member: 404 },
  'POST /v1/credentials/{id}/revoke': { owner: 'ok', admin: 'ok', security: 'ok', auditor: 403, approver: 404, member: 404 },
  // Agent tasks: members and approvers run and see their own; admins, security and auditors read the org's (the fixture task is the owner's).
  'POST /v1/tasks': only(['owner', 'admin', 'approver', 'member']),
  'GET /v1/tasks': every('ok'),
  'GET /v1/tasks/{id}': { owner: 'ok', admin: 'ok', security: 'ok', auditor: 'ok', approver: 404, member: 404 },
  'POST /v1/tasks/{id}/cancel': { owner: 'ok', admin: 'ok', security: 'ok', auditor: 403, approver: 404, member: 404 },
  'GET /v1/tasks/{id}/events': { owner: 'ok', admin: 'ok', security: 'ok', auditor: 'ok', approver: 404, member: 404 },
  // Approvals (the fixture's is the member's own request): approvers and owners decide; the requester never (self-approval).
  'GET /v1/approvals': every('ok'),
  'GET /v1/approvals/{id}': every('ok'),
  'POST /v1/approvals/{id}/approve': only(['owner', 'approver']),
  'POST /v1/approvals/{id}/reject': only(['owner', 'approver']),
  'POST /v1/approvals/{id}/settle': only(['owner', 'approver']),
  // Review bundles (the member's task): approvers and owners accept or revert; the member only reads its own.
  'GET /v1/reviews': every('ok'),
  'GET /v1/reviews/{id}': every('ok'),
  'GET /v1/reviews/gateway': every('ok'),
  'POST /v1/reviews/gateway/accept': only(['owner', 'approver']),
  'POST /v1/reviews/gateway/revert': only(['owner', 'approver']),
  'POST /v1/reviews/gateway/dismiss': only(['owner', 'approver']),
  'POST /v1/reviews/gateway/actions/{actionId}/settle': only(['owner', 'approver']),
  'POST /v1/reviews/{id}/actions/{actionId}/settle': only(['owner', 'approver']),
  'POST /v1/reviews/{id}/accept': only(['owner', 'approver']),
  'POST /v1/reviews/{id}/revert': only(['owner', 'approver']),
  'POST /v1/reviews/{id}/actions/{actionId}/accept': only(['owner', 'approver']),
  'POST /v1/reviews/{id}/actions/{actionId}/revert': only(['owner', 'approver']),
  'POST /v1/reviews/{id}/actions/{actionId}/dismiss': only(['owner', 'approver']),
  // Incidents: security responds; owners configure the escalation; admins and auditors read.
  'GET /v1/incidents': only(['owner', 'admin', 'security', 'auditor']),
  'POST /v1/incidents': only(['owner', 'security']),
  'GET /v1/incidents/{id}': only(['owner', 'admin', 'security', 'auditor']),
  'POST /v1/incidents/{id}/acknowledge': only(['owner', 'security']),
  'POST /v1/incidents/{id}/assign': only(['owner', 'security']),
  'POST /v1/incidents/{id}/resolve': only(['owner', 'security']),
  'POST /v1/incidents/{id}/close': only(['owner', 'security']),
  'POST /v1/incidents/{id}/comments': only(['owner', 'security']),
  'GET /v1/incident-settings': only(['owner', 'admin', 'security', 'auditor']),
  'PUT /v1/incident-settings': only(['owner']),
  // Sanctions: security and auditors read; owners lift or record outcomes.
  'GET /v1/sanctions': only(['owner', 'security', 'auditor']),
  'GET /v1/members/{userId}/strikes': only(['owner', 'security', 'auditor']),
  'POST /v1/sanctions/{id}/lift': only(['owner']),
  'POST /v1/sanctions/{id}/outcome': only(['owner']),
  'GET /v1/violations/{id}/evidence': only(['owner', 'security', 'auditor']),
  // Trust tuning reads like the policy; drafting is creating a policy draft.
  'GET /v1/trust-recommendations': only(AUDIT_READERS),
  'POST /v1/trust-recommendations/draft': only(['owner', 'admin']),
  // Pilot metrics read like workflows; baselines change them; a task is rated by the one who ran it.
  'GET /v1/pilot/metrics': only(AUDIT_READERS),
  'PUT /v1/workflows/{id}/baseline': only(['owner', 'admin']),
  'PUT /v1/tasks/{id}/rating': only(['owner', 'admin', 'approver', 'member']),
  // Violations: security triages; auditors read.
  'GET /v1/violations': only(['owner', 'security', 'auditor']),
  'GET /v1/violations/{id}': only(['owner', 'security', 'auditor']),
  'POST /v1/violations/{id}/confirm': only(['owner', 'security']),
  'POST /v1/violations/{id}/dismiss': only(['owner', 'security']),
  // Task schedules follow the Task subject (the fixture schedule is the owner's): changed or deleted
  // by whoever may create tasks as its owner; paused by whoever may cancel the owner's tasks.
  'POST /v1/task-schedules': only(['owner', 'admin', 'approver', 'member']),
  'GET /v1/task-schedules': every('ok'),
  'GET /v1/task-schedules/{id}': { owner: 'ok', admin: 'ok', security: 'ok', auditor: 'ok', approver: 404, member: 404 },
  'PATCH /v1/task-schedules/{id}': { owner: 'ok', admin: 403, security: 403, auditor: 403, approver: 404, member: 404 },
  'DELETE /v1/task-schedules/{id}': { owner: 'ok', admin: 403, security: 403, auditor: 403, approver: 404, member: 404 },
  'POST /v1/task-schedules/{id}/pause': { owner: 'ok', admin: 'ok', security: 'ok', auditor: 403, approver: 404, member: 404 },
  'POST /v1/task-schedules/{id}/resume': { owner: 'ok', admin: 'ok', security: 'ok', auditor: 403, approver: 404, member: 404 },
  'GET /v1/usage': every('ok'), // the org's spend, or only one's own
  // The anomaly report: IT admins, security and owners generate; auditors read; the schedule is IT's and the owner's.
  'POST /v1/reports': only(['owner', 'admin', 'security']),
  'GET /v1/reports': only(AUDIT_READERS),
  'GET /v1/reports/{id}': only(AUDIT_READERS),
  'GET /v1/reports/{id}/download': only(AUDIT_READERS),
  'GET /v1/reports/schedule': only(AUDIT_READERS),
  'PUT /v1/reports/schedule': only(['owner', 'admin']),
  // A replay reads the whole trail: Policy and AuditEvent read.
  'POST /v1/policies/{id}/replay': only(AUDIT_READERS),
};

describe('role × route table', () => {
  let h: Harness;
  let org: SeededOrg;
  const cookies = {} as Record<RoleKey, string>;
  let routes: { method: string; path: string; status: number }[];

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'acme');
    for (const role of ROLES) cookies[role] = await login(h, org.users[role].email);
    routes = h.app
      .get(OpenApiService)
      .routes()
      .map((r) => ({ method: r.method, path: r.path, status: r.spec.status ?? 200 }));
  });
  afterAll(() => h?.close());

  it('covers every route, and only routes that exist', () => {
    const keys = routes.map((r) => `${r.method} ${r.path}`).sort();
    expect(Object.keys(TABLE).sort()).toEqual(keys);
    expect(Object.keys(FIXTURES).sort()).toEqual(keys);
  });

  for (const role of ROLES) {
    it(`gives ${role} exactly what the table says`, async () => {
      const mismatches: string[] = [];
      for (const route of routes) {
        const key = `${route.method} ${route.path}`;
        const expected = TABLE[key]?.[role];
        if (expected === undefined) continue; // reported by the coverage test
        const ctx: Ctx = { h, org, role, cookie: cookies[role], ownerCookie: cookies.owner };
        const call = await FIXTURES[key](ctx);
        let req = h.http[route.method.toLowerCase() as 'get'](call.path).set('Cookie', call.cookie ?? cookies[role]);
        if (call.body !== undefined) req = req.send(call.body as object);
        const res = await req;
        const want = expected === 'ok' ? route.status : expected;
        if (res.status !== want) mismatches.push(`${key}: expected ${want}, got ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        // SCIM answers errors with its own schema (RFC 7644 §3.12), the MCP consent page (for people in a browser) with
        // an HTML page, everything else with problem+json.
        if (res.status >= 400) expect(res.headers['content-type']).toMatch(key.includes(' /scim/') ? /application\/scim\+json/ : key.includes(' /oauth/consent') ? /^text\/html/ : /application\/problem\+json/);
      }
      expect(mismatches).toEqual([]);
    }, 60_000); // ~100 routes, some installing connectors against loopback fakes
  }

  it('records every denial in the audit trail', async () => {
    const res = await h.http.patch('/v1/org').set('Cookie', cookies.member).send({ name: 'Pwned' });
    expect(res.status).toBe(403);
    const events = await h.http.get('/v1/audit-events').query({ action: 'org.update', outcome: 'denied' }).set('Cookie', cookies.owner);
    expect(events.status).toBe(200);
    expect(events.body.items.some((e: { actorId: string }) => e.actorId === org.users.member.id)).toBe(true);
  });
});
