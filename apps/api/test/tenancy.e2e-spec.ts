import { Client } from 'pg';
import { newId } from '@steward/common';
import { TENANT_TABLES } from '@steward/db';
import { OpenApiService } from '../src/core/openapi';
import { type Ctx, FIXTURES, newApiKey, newDraft, newGroup, newHold, newInvitation, newOrgCredential, newRemoteConnector, newRole, newSiemSink, newWorkflow, newTask, newApproval, newReview, newViolation, newSchedule, newScimToken, newIncident, newSanction, newReport } from './support/fixtures';
import { type Harness, login, orgSnapshot, type SeededOrg, seedOrg, startHarness } from './support/harness';

describe('tenant isolation', () => {
  let h: Harness;
  let a: SeededOrg;
  let b: SeededOrg;
  let aOwner: string;
  let bOwner: string;
  const bIds: Record<string, string> = {};

  beforeAll(async () => {
    h = await startHarness();
    a = await seedOrg(h.ds, 'alpha');
    b = await seedOrg(h.ds, 'bravo');
    aOwner = await login(h, a.users.owner.email);
    bOwner = await login(h, b.users.owner.email);
    // One record of every kind in org B.
    const ctxB: Ctx = { h, org: b, role: 'owner', cookie: bOwner, ownerCookie: bOwner };
    bIds.id = await newGroup(ctxB);
    bIds.role = await newRole(ctxB);
    bIds.invitation = (await newInvitation(ctxB)).id;
    bIds.apiKey = (await newApiKey(h, bOwner)).id;
    bIds.userId = b.users.member.id;
    bIds.policy = await newDraft(ctxB);
    bIds.workflow = await newWorkflow(ctxB);
    bIds.hold = await newHold(ctxB);
    bIds.siemSink = await newSiemSink(ctxB);
    bIds.connector = await newRemoteConnector(ctxB);
    bIds.credential = await newOrgCredential(ctxB);
    bIds.task = await newTask(ctxB);
    bIds.approval = await newApproval(ctxB);
    bIds.review = await newReview(ctxB);
    bIds.violation = await newViolation(ctxB);
    bIds.schedule = await newSchedule(ctxB);
    bIds.report = await newReport(ctxB);
    bIds.scimToken = (await newScimToken(ctxB)).id;
    bIds.incident = await newIncident(ctxB);
    bIds.sanction = await newSanction(ctxB);
    bIds.event = ((await h.http.get('/v1/audit-events').query({ limit: 1 }).set('Cookie', bOwner)).body.items[0] as { id: string }).id;
  });
  afterAll(() => h?.close());

  const idFor = (key: string): string =>
    key.includes('/roles/') ? bIds.role
    : key.includes('/invitations/') ? bIds.invitation
    : key.includes('/api-keys/') ? bIds.apiKey
    : key.includes('/policies/') ? bIds.policy
    : key.includes('/workflows/') ? bIds.workflow
    : key.includes('/audit-events/') ? bIds.event
    : key.includes('/legal-holds/') ? bIds.hold
    : key.includes('/siem-sinks/') ? bIds.siemSink
    : key.includes('/connectors/') ? bIds.connector
    : key.includes('/credentials/') ? bIds.credential
    : key.includes('/task-schedules/') ? bIds.schedule
    : key.includes('/reports/') ? bIds.report
    : key.includes('/tasks/') ? bIds.task
    : key.includes('/approvals/') ? bIds.approval
    : key.includes('/reviews/') ? bIds.review
    : key.includes('/violations/') ? bIds.violation
    : key.includes('/scim-tokens/') ? bIds.scimToken
    : key.includes('/incidents/') ? bIds.incident
    : key.includes('/sanctions/') ? bIds.sanction
    : bIds.id;

  /** Every route with an id in its path, called by A's owner with the ids of B's records. */
  it('answers 404 to every route given another org\'s ids, and changes nothing there', async () => {
    const before = await orgSnapshot(h.ds, b.id);
    // SCIM routes authenticate with an org's SCIM token, not a session: scim.e2e-spec checks them across orgs.
    const routes = h.app.get(OpenApiService).routes().filter((r) => r.path.includes('{') && !r.path.startsWith('/scim/'));
    expect(routes.length).toBeGreaterThan(10);
    const wrong: string[] = [];
    for (const route of routes) {
      const key = `${route.method} ${route.path}`;
      // A valid body for the route, from org A's own fixture.
      const call = await FIXTURES[key]({ h, org: a, role: 'owner', cookie: aOwner, ownerCookie: aOwner });
      const path = route.path
        .replace('{userId}', bIds.userId)
        .replace('{id}', idFor(key));
      let req = h.http[route.method.toLowerCase() as 'get'](path).set('Cookie', aOwner);
      if (call.body !== undefined) req = req.send(call.body as object);
      const res = await req;
      if (res.status !== 404) wrong.push(`${key} → ${res.status}`);
    }
    expect(wrong).toEqual([]);
    // A's group with B's member: the member is not A's.
    const ag = await newGroup({ h, org: a, role: 'owner', cookie: aOwner, ownerCookie: aOwner });
    expect((await h.http.put(`/v1/groups/${ag}/members/${b.users.member.id}`).set('Cookie', aOwner)).status).toBe(404);
    expect(await orgSnapshot(h.ds, b.id)).toEqual(before);
  });

  it('never lists another org\'s records', async () => {
    const lists = ['/v1/members', '/v1/groups', '/v1/invitations', '/v1/roles', '/v1/api-keys', '/v1/audit-events?limit=200', '/v1/policies', '/v1/workflows', '/v1/legal-holds', '/v1/siem-sinks', '/v1/connectors', '/v1/credentials', '/v1/tasks', '/v1/approvals', '/v1/reviews', '/v1/violations', '/v1/task-schedules', '/v1/usage', '/v1/incidents', '/v1/sanctions', '/v1/reports'];
    for (const path of lists) {
      const res = await h.http.get(path).set('Cookie', aOwner);
      expect(res.status).toBe(200);
      const text = JSON.stringify(res.body);
      for (const id of [b.id, ...Object.values(bIds)]) expect(text).not.toContain(id);
    }
  });

  describe('Row Level Security alone, as the runtime role with no service checks', () => {
    let client: Client;
    beforeAll(async () => {
      client = new Client({ connectionString: h.db.appUrl });
      await client.connect();
    });
    afterAll(() => client?.end());

    it('shows every tenant table empty when no org is set', async () => {
      for (const table of [...TENANT_TABLES, 'orgs', 'users']) {
        const { rows } = await client.query(`SELECT count(*)::int AS n FROM "${table}"`);
        expect({ table, n: rows[0].n }).toEqual({ table, n: 0 });
      }
    });

    it('shows only the org that is set, even when asked for another org\'s rows', async () => {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT set_config('app.org_id', $1, true)`, [a.id]);
        for (const table of TENANT_TABLES) {
          const own = await client.query(`SELECT count(*)::int AS n FROM "${table}" WHERE org_id = $1`, [a.id]);
          const other = await client.query(`SELECT count(*)::int AS n FROM "${table}" WHERE org_id <> $1`, [a.id]);
          expect({ table, other: other.rows[0].n }).toEqual({ table, other: 0 });
          if (['memberships', 'role_assignments', 'sessions', 'audit_events'].includes(table)) expect(own.rows[0].n).toBeGreaterThan(0);
        }
        const orgs = await client.query('SELECT id FROM orgs');
        expect(orgs.rows.map((r) => r.id)).toEqual([a.id]);
        const users = await client.query('SELECT id FROM users WHERE id = $1', [b.users.member.id]);
        expect(users.rows).toEqual([]);
        const group = await client.query('SELECT id FROM groups WHERE id = $1', [bIds.id]);
        expect(group.rows).toEqual([]);
        const updated = await client.query(`UPDATE groups SET name = 'taken over' WHERE id = $1`, [bIds.id]);
        expect(updated.rowCount).toBe(0);
      } finally {
        await client.query('ROLLBACK');
      }
    });

    it('refuses to write a row into another org', async () => {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT set_config('app.org_id', $1, true)`, [a.id]);
        await expect(
          client.query(`INSERT INTO groups (id, org_id, name) VALUES ($1, $2, 'planted')`, [newId(), b.id]),
        ).rejects.toThrow(/row-level security/);
      } finally {
        await client.query('ROLLBACK');
      }
    });

    it('cannot read the lookup tables behind the narrow functions, nor change the audit trail', async () => {
      await expect(client.query('SELECT * FROM setup_state')).rejects.toThrow(/permission denied/);
      await expect(client.query(`SET ROLE steward_lookup`)).rejects.toThrow(/permission denied/);
      await client.query('BEGIN');
      try {
        await client.query(`SELECT set_config('app.org_id', $1, true)`, [a.id]);
        await expect(client.query(`DELETE FROM audit_events`)).rejects.toThrow(/permission denied/);
      } finally {
        await client.query('ROLLBACK');
      }
    });
  });
});
