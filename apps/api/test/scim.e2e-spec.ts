import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { AuditKeyring } from '@steward/audit';
import { createLogger, newId } from '@steward/common';
import { inOrg, Membership, User } from '@steward/db';
import { startScriptedModelServer, startWorkerRuntime, type ScriptedModelServer, type WorkerRuntime } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Acceptance 2 of issue 10: SCIM 2.0 as Okta's and Entra ID's provisioning clients drive it
 * (their request shapes, including Entra's "Replace"/"False" spellings), per-org bearer tokens,
 * the RFC 7644 error schema, and a deprovisioned person's agent task stopped at its next action.
 */
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

describe('SCIM 2.0 provisioning', () => {
  let h: Harness;
  let org: SeededOrg;
  let other: SeededOrg;
  let owner: string;
  let token: string;
  let tokenId: string;

  const scim = (method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string, body?: unknown, bearer = token) => {
    let req = h.http[method](`/scim/v2${path}`).set('Authorization', `Bearer ${bearer}`);
    if (body !== undefined) req = req.set('Content-Type', 'application/scim+json').send(JSON.stringify(body));
    return req;
  };
  const filter = (resource: string, f: string, extra = '') => scim('get', `/${resource}?filter=${encodeURIComponent(f)}${extra}`);

  beforeAll(async () => {
    h = await startHarness({ env: { STEWARD_PUBLIC_URL: 'https://steward.acme.example' } });
    org = await seedOrg(h.ds, 'acme');
    other = await seedOrg(h.ds, 'globex');
    owner = await login(h, org.users.owner.email);
    const created = await h.http.post('/v1/org/scim-tokens').set('Cookie', owner).send({ name: 'Okta' });
    expect(created.status).toBe(201);
    token = created.body.secret;
    tokenId = created.body.token.id;
    expect(token).toMatch(/^stp_/);
    expect(created.body.baseUrl).toBe('https://steward.acme.example/scim/v2');
  });
  afterAll(() => h?.close());

  it('keeps the token secret: listed without it, stored as a hash, refused for sessions', async () => {
    const list = await h.http.get('/v1/org/scim-tokens').set('Cookie', owner);
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain(token);
    const [row] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT token_hash FROM scim_tokens WHERE org_id = $1`, [org.id]));
    expect(Buffer.from(row.token_hash).toString('latin1')).not.toContain(token.slice(4, 20));
    const withSession = await h.http.get('/scim/v2/Users').set('Cookie', owner);
    expect(withSession.status).toBe(401);
    expect(withSession.headers['content-type']).toMatch(/application\/scim\+json/);
    expect(withSession.body).toMatchObject({ schemas: [ERROR], status: '401' });
    expect((await scim('get', '/Users', undefined, 'stp_not-a-real-token-0123456789')).status).toBe(401);
    const cfg = await scim('get', '/ServiceProviderConfig');
    expect(cfg.status).toBe(200);
    expect(cfg.body.patch.supported).toBe(true);
  });

  describe('as Okta sends it', () => {
    let id: string;
    let groupId: string;

    it('checks, creates, reads and replaces a user', async () => {
      const none = await filter('Users', 'userName eq "carol@acme.example"', '&startIndex=1&count=100');
      expect(none.status).toBe(200);
      expect(none.headers['content-type']).toMatch(/application\/scim\+json/);
      expect(none.body).toMatchObject({ schemas: [LIST], totalResults: 0, Resources: [] });
      const created = await scim('post', '/Users', {
        schemas: [USER],
        userName: 'carol@acme.example',
        name: { givenName: 'Carol', familyName: 'Counsel' },
        emails: [{ primary: true, value: 'carol@acme.example', type: 'work' }],
        displayName: 'Carol Counsel',
        locale: 'en-US',
        externalId: '00u1carol',
        groups: [],
        password: 'never-stored-1',
        active: true,
      });
      expect(created.status).toBe(201);
      id = created.body.id;
      expect(created.headers.location).toBe(`https://steward.acme.example/scim/v2/Users/${id}`);
      expect(created.body).toMatchObject({ schemas: [USER], userName: 'carol@acme.example', externalId: '00u1carol', active: true, displayName: 'Carol Counsel' });
      const found = await filter('Users', 'userName eq "carol@acme.example"');
      expect(found.body.totalResults).toBe(1);
      expect(found.body.Resources[0].id).toBe(id);
      const members = await h.http.get('/v1/members').set('Cookie', owner);
      expect(JSON.stringify(members.body)).toContain('carol@acme.example');
      const put = await scim('put', `/Users/${id}`, { schemas: [USER], id, userName: 'carol@acme.example', name: { givenName: 'Carol', familyName: 'Chief-Counsel' }, emails: [{ primary: true, value: 'carol@acme.example', type: 'work' }], active: true });
      expect(put.status).toBe(200);
      expect(put.body.name.formatted).toBe('Carol Chief-Counsel');
      const dup = await scim('post', '/Users', { schemas: [USER], userName: 'carol@acme.example', active: true });
      expect(dup.status).toBe(409);
      expect(dup.body).toMatchObject({ schemas: [ERROR], status: '409', scimType: 'uniqueness' });
    });

    it('deactivates and reactivates with PATCH', async () => {
      const off = await scim('patch', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
      expect(off.status).toBe(200);
      expect(off.body.active).toBe(false);
      const statusOf = async () => {
        const members = await h.http.get('/v1/members').query({ limit: 100 }).set('Cookie', owner);
        return members.body.items.find((m: { user?: { email?: string }; email?: string }) => (m.user?.email ?? m.email) === 'carol@acme.example')?.status;
      };
      expect(await statusOf()).toBe('suspended');
      // A deprovisioning is undone by the identity provider, not in Steward.
      const members = await h.http.get('/v1/members').query({ limit: 100 }).set('Cookie', owner);
      const carol = members.body.items.find((m: { email?: string }) => m.email === 'carol@acme.example');
      const reactivate = await h.http.post(`/v1/members/${carol.userId}/reactivate`).set('Cookie', owner);
      expect(reactivate.status).toBe(409);
      expect(reactivate.body.detail).toContain('identity provider deprovisioned');
      expect(await statusOf()).toBe('suspended');
      const on = await scim('patch', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: true } }] });
      expect(on.body.active).toBe(true);
      expect(await statusOf()).toBe('active');
    });

    it('pushes a group, adds and removes its member, renames and deletes it', async () => {
      const g = await scim('post', '/Groups', { schemas: [GROUP], displayName: 'Okta Legal', members: [] });
      expect(g.status).toBe(201);
      groupId = g.body.id;
      const add = await scim('patch', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: id, display: 'carol@acme.example' }] }] });
      expect(add.status).toBe(200);
      expect(add.body.members).toEqual([expect.objectContaining({ value: id, display: 'carol@acme.example' })]);
      const steward = await h.http.get(`/v1/groups/${groupId}/members`).set('Cookie', owner);
      expect(steward.body.items.map((m: { email: string }) => m.email)).toEqual(['carol@acme.example']);
      expect((await scim('get', `/Users/${id}`)).body.groups).toEqual([expect.objectContaining({ value: groupId, display: 'Okta Legal' })]);
      const remove = await scim('patch', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${id}"]` }] });
      expect(remove.body.members).toEqual([]);
      const rename = await scim('patch', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id: groupId, displayName: 'Okta Legal Team' } }] });
      expect(rename.body.displayName).toBe('Okta Legal Team');
      const found = await filter('Groups', 'displayName eq "Okta Legal Team"');
      expect(found.body.Resources.map((r: { id: string }) => r.id)).toEqual([groupId]);
      const put = await scim('put', `/Groups/${groupId}`, { schemas: [GROUP], displayName: 'Okta Legal Team', members: [{ value: id }] });
      expect(put.body.members).toHaveLength(1);
      expect((await scim('delete', `/Groups/${groupId}`)).status).toBe(204);
      const gone = await scim('get', `/Groups/${groupId}`);
      expect(gone.status).toBe(404);
      expect(gone.body).toMatchObject({ schemas: [ERROR], status: '404' });
    });
  });

  describe('as Entra ID sends it', () => {
    let id: string;
    let groupId: string;

    it('creates a user with the enterprise extension, finds it by externalId, patches it', async () => {
      expect((await filter('Users', 'userName eq "dave@acme.example"')).body.totalResults).toBe(0);
      const created = await scim('post', '/Users', {
        schemas: [USER, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
        externalId: 'dave-object-id',
        userName: 'dave@acme.example',
        active: true,
        displayName: 'Dave Finance',
        emails: [{ primary: true, type: 'work', value: 'dave@acme.example' }],
        meta: { resourceType: 'User' },
        name: { formatted: 'Dave Finance', familyName: 'Finance', givenName: 'Dave' },
        roles: [],
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'Finance' },
      });
      expect(created.status).toBe(201);
      id = created.body.id;
      const byExternal = await filter('Users', 'externalId eq "dave-object-id"');
      expect(byExternal.body.Resources.map((r: { id: string }) => r.id)).toEqual([id]);
      const patched = await scim('patch', `/Users/${id}`, {
        schemas: [PATCH],
        Operations: [
          { op: 'Replace', path: 'displayName', value: 'David Finance' },
          { op: 'Replace', path: 'emails[type eq "work"].value', value: 'dave@acme.example' },
          { op: 'Add', path: 'externalId', value: 'dave-object-id-2' },
          { op: 'Replace', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department', value: 'FP&A' },
        ],
      });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ displayName: 'David Finance', externalId: 'dave-object-id-2', active: true });
      // An email list holding no entry object is a SCIM error, not a server one; one that has an entry besides takes that entry.
      for (const Operations of [[{ op: 'replace', path: 'emails', value: [null] }], [{ op: 'replace', value: { emails: [null, 'x'] } }]]) {
        const bad = await scim('patch', `/Users/${id}`, { schemas: [PATCH], Operations });
        expect({ status: bad.status, scimType: bad.body.scimType }).toEqual({ status: 400, scimType: 'invalidValue' });
      }
      const mixed = await scim('patch', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'emails', value: [null, { value: 'dave@acme.example', primary: true }] }] });
      expect(mixed.status).toBe(200);
    });

    it('manages group members with Add/Remove and a members value list', async () => {
      const g = await scim('post', '/Groups', { schemas: [GROUP], externalId: 'entra-grp-1', displayName: 'Entra Finance', members: [] });
      expect(g.status).toBe(201);
      groupId = g.body.id;
      const found = await filter('Groups', 'displayName eq "Entra Finance"', '&excludedAttributes=members');
      expect(found.body.Resources).toEqual([expect.not.objectContaining({ members: expect.anything() })]);
      expect(found.body.Resources[0].id).toBe(groupId);
      expect((await filter('Groups', 'externalId eq "entra-grp-1"')).body.totalResults).toBe(1);
      const add = await scim('patch', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ value: id }] }] });
      expect(add.body.members.map((m: { value: string }) => m.value)).toEqual([id]);
      const remove = await scim('patch', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'Remove', path: 'members', value: [{ value: id }] }] });
      expect(remove.body.members).toEqual([]);
      const rename = await scim('patch', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'displayName', value: 'Entra Finance Team' }] });
      expect(rename.body.displayName).toBe('Entra Finance Team');
    });

    it('disables with "False", then deletes the user', async () => {
      const off = await scim('patch', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
      expect(off.status).toBe(200);
      expect(off.body.active).toBe(false);
      // An MCP client the person authorised holds a refresh token (30 days).
      const [{ user_id: daveUser }] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT user_id FROM memberships WHERE org_id = $1 AND id = $2`, [org.id, id]));
      const clientId = `client-${newId()}`;
      await inOrg(h.ds, { orgId: org.id }, async (em) => {
        await em.query(`INSERT INTO mcp_oauth_clients (id, client_name, redirect_uris) VALUES ($1, 'Desktop agent', '{http://127.0.0.1:3334/cb}')`, [clientId]);
        await em.query(
          `INSERT INTO mcp_refresh_tokens (org_id, id, family_id, user_id, client_id, token_hash, resource, scope, expires_at) VALUES ($1, $2, $2, $3, $4, $5, 'https://steward.acme.example/mcp', 'mcp', now() + interval '30 days')`,
          [org.id, newId(), daveUser, clientId, Buffer.from(newId())],
        );
        // And a connection of their own (an OAuth grant to a service, sealed in the vault).
        const connectorId = newId();
        await em.query(`INSERT INTO connectors (org_id, id, kind, name, url, auth, credential_scope, status) VALUES ($1, $2, 'remote', 'Dave CRM', 'https://crm.example/mcp', '{"kind":"api_key"}', 'user', 'active')`, [org.id, connectorId]);
        await em.query(`INSERT INTO credentials (org_id, id, connector_id, user_id, kind, status, sealed, wrapped_key) VALUES ($1, $2, $3, $4, 'secret', 'active', $5, 'v1.wrapped')`, [org.id, newId(), connectorId, daveUser, Buffer.from('sealed-secret')]);
      });
      expect((await scim('delete', `/Users/${id}`)).status).toBe(204);
      // Their own credentials are shredded: nothing acts with them, nor comes back with the person.
      const creds = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT status, sealed, wrapped_key FROM credentials WHERE org_id = $1 AND user_id = $2`, [org.id, daveUser]));
      expect(creds).toEqual([{ status: 'revoked', sealed: null, wrapped_key: null }]);
      // Deprovisioned: the client's tokens are revoked, so a later provisioning of the person does not bring it back.
      const live = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT count(*)::int AS n FROM mcp_refresh_tokens WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL`, [org.id, daveUser]));
      expect(live[0].n).toBe(0);
      const gone = await scim('get', `/Users/${id}`);
      expect(gone.status).toBe(404);
      expect(gone.headers['content-type']).toMatch(/application\/scim\+json/);
      expect((await filter('Users', 'userName eq "dave@acme.example"')).body.totalResults).toBe(0);
    });
  });

  it("never deprovisions the org's only active owner, and never lifts a suspension the sanctions ladder made", async () => {
    // The org's one owner: deactivating or deleting them would leave the org without an owner for good.
    const ownerId = (await filter('Users', `userName eq "${org.users.owner.email}"`)).body.Resources[0].id as string;
    for (const res of [await scim('patch', `/Users/${ownerId}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] }), await scim('delete', `/Users/${ownerId}`)]) {
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ schemas: [ERROR], status: '409', detail: expect.stringMatching(/only active owner/) });
    }
    const [owned] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [org.id, org.users.owner.id]));
    expect(owned).toEqual({ status: 'active' });

    // Frank, deprovisioned; meanwhile a second strike is confirmed (an open suspension of the ladder).
    const created = await scim('post', '/Users', { schemas: [USER], userName: 'frank@acme.example', name: { givenName: 'Frank', familyName: 'Doe' }, emails: [{ value: 'frank@acme.example', primary: true }], active: true });
    expect(created.status).toBe(201);
    expect((await scim('patch', `/Users/${created.body.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] })).body.active).toBe(false);
    const [{ user_id: frank }] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT user_id FROM memberships WHERE org_id = $1 AND id = $2`, [org.id, created.body.id]));
    await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`INSERT INTO sanctions (org_id, id, user_id, violation_id, kind, strikes) VALUES ($1, $2, $3, $4, 'suspension', 2)`, [org.id, newId(), frank, newId()]));
    const statusOf = async () => (await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [org.id, frank])))[0]?.status;
    // The identity provider turns him back on: he stays suspended until an owner lifts the sanction.
    const on = await scim('patch', `/Users/${created.body.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: true } }] });
    expect(on.status).toBe(200);
    expect(on.body.active).toBe(false);
    expect(await statusOf()).toBe('suspended');
    // Deleted and provisioned again: back, but suspended by the same sanction.
    expect((await scim('delete', `/Users/${created.body.id}`)).status).toBe(204);
    const again = await scim('post', '/Users', { schemas: [USER], userName: 'frank@acme.example', name: { givenName: 'Frank', familyName: 'Doe' }, emails: [{ value: 'frank@acme.example', primary: true }], active: true });
    expect(again.status).toBe(201);
    expect(again.body.active).toBe(false);
    expect(await statusOf()).toBe('suspended');
    // The owner lifts it: now he is active (the identity provider wants him active).
    const [sanction] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT id FROM sanctions WHERE org_id = $1 AND user_id = $2`, [org.id, frank]));
    expect((await h.http.post(`/v1/sanctions/${sanction.id}/lift`).set('Cookie', owner).send({ note: 'reviewed with HR' })).status).toBe(200);
    expect(await statusOf()).toBe('active');
    // Lifting a sanction never undoes the identity provider's deprovisioning.
    const off = await scim('patch', `/Users/${again.body.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
    expect(off.body.active).toBe(false);
    const [later] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`INSERT INTO sanctions (org_id, id, user_id, violation_id, kind, strikes) VALUES ($1, $2, $3, $4, 'suspension', 3) RETURNING id`, [org.id, newId(), frank, newId()]));
    expect((await h.http.post(`/v1/sanctions/${later.id}/lift`).set('Cookie', owner).send({ note: 'lifted while he is away' })).status).toBe(200);
    expect(await statusOf()).toBe('suspended');
  });

  it('refuses what it does not support in SCIM terms', async () => {
    const bad = await filter('Users', 'userName sw "car"');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidFilter' });
    const notEmail = await scim('post', '/Users', { schemas: [USER], userName: 'not-an-email', active: true });
    expect(notEmail.status).toBe(400);
    expect(notEmail.body.scimType).toBe('invalidValue');
    const outside = await scim('post', '/Users', { schemas: [USER], userName: 'mallory@evil.example', active: true });
    expect(outside.status).toBe(400);
    const malformed = await h.http.post('/scim/v2/Users').set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/scim+json').send('{"userName": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidSyntax' });
    const wrongType = await scim('post', '/Users', { schemas: [USER], userName: 42, active: true });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.scimType).toBe('invalidValue');
    const tooLong = await scim('post', '/Groups', { schemas: [GROUP], displayName: 'x'.repeat(5000) });
    expect(tooLong.status).toBe(400);
    const badOp = await scim('patch', `/Users/${(await filter('Users', `userName eq "${org.users.member.email}"`)).body.Resources[0].id}`, { schemas: [PATCH], Operations: [{ op: 'move', path: 'active', value: false }] });
    expect(badOp.status).toBe(400);
    expect(badOp.body.scimType).toBe('invalidSyntax');
    const oversize = await scim('post', '/Users', { schemas: [USER], userName: 'big@acme.example', padding: 'x'.repeat(600_000) });
    expect(oversize.status).toBe(413);
    expect(oversize.headers['content-type']).toMatch(/application\/scim\+json/);
  });

  it("never reaches another org's users or groups", async () => {
    const theirs = await inOrg(h.ds, { orgId: other.id }, (em) => em.query(`SELECT id FROM memberships WHERE org_id = $1 LIMIT 1`, [other.id]));
    const theirGroup = (await h.http.post('/v1/groups').set('Cookie', await login(h, other.users.owner.email)).send({ name: 'Globex only' })).body.id;
    for (const path of [`/Users/${theirs[0].id}`, `/Groups/${theirGroup}`]) {
      expect((await scim('get', path)).status).toBe(404);
      expect((await scim('patch', path, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] })).status).toBe(404);
      expect((await scim('delete', path)).status).toBe(404);
    }
    const all = await scim('get', '/Users?count=200');
    expect(JSON.stringify(all.body)).not.toContain('globex');
    // An account that signs in to another org is not this identity provider's to claim (it joins by invitation).
    const erinId = newId();
    await inOrg(h.ds, { orgId: other.id, userId: erinId }, async (em) => {
      await em.insert(User, { id: erinId, email: 'erin@acme.example', name: 'Erin', passwordHash: null, totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
      await em.insert(Membership, { id: newId(), orgId: other.id, userId: erinId, status: 'active', suspendedAt: null, suspendedReason: null });
    });
    const claimed = await scim('post', '/Users', { schemas: [USER], userName: 'erin@acme.example', name: { givenName: 'Erin', familyName: 'E' }, emails: [{ primary: true, value: 'erin@acme.example' }], active: true });
    expect({ status: claimed.status, scimType: claimed.body.scimType }).toEqual({ status: 409, scimType: 'uniqueness' });
    expect((await filter('Users', 'userName eq "erin@acme.example"')).body.totalResults).toBe(0);
  });

  it('a deprovisioned person loses agent access at once: their queued task is refused at its next action, their session ends', async () => {
    const member = await login(h, org.users.member.email);
    const task = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:read-only] Summarise last week' });
    expect(task.status).toBe(201);
    // The identity provider deprovisions them (found by userName, as Okta links existing accounts).
    const found = await filter('Users', `userName eq "${org.users.member.email}"`);
    expect(found.body.totalResults).toBe(1);
    const off = await scim('patch', `/Users/${found.body.Resources[0].id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
    expect(off.body.active).toBe(false);
    expect((await h.http.get('/v1/auth/session').set('Cookie', member)).status).toBe(401);

    // Now the worker picks the task up: its first action goes through the gate, which refuses it.
    const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
    const model: ScriptedModelServer = await startScriptedModelServer();
    const dataDir = mkdtempSync(join(tmpdir(), 'steward-scim-'));
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    let runtime: WorkerRuntime | undefined;
    try {
      runtime = await startWorkerRuntime({
        redisUrl: h.config.REDIS_URL,
        prefix: h.config.REDIS_PREFIX,
        concurrency: 1,
        log: quiet,
        agentTasks: {
          ds: h.ds,
          redis: h.redis,
          redisPrefix: h.config.REDIS_PREFIX,
          keys,
          keyring: new AuditKeyring(keys),
          dataDir,
          model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: true, maxTokens: 1024, offline: true, retry: { attempts: 2, baseDelayMs: 10 } },
          leaseSeconds: 5,
          relayIntervalMs: 100,
          log: quiet,
        },
      });
      let state = '';
      for (let i = 0; i < 300 && !['failed', 'completed', 'cancelled', 'in_review'].includes(state); i++) {
        await new Promise((r) => setTimeout(r, 100));
        state = (await h.http.get(`/v1/tasks/${task.body.id}`).set('Cookie', owner)).body.state;
      }
      expect(state).toBe('failed');
      const actions = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT state, refusal FROM task_actions WHERE org_id = $1 AND task_id = $2 ORDER BY step`, [org.id, task.body.id]));
      expect(actions.length).toBeGreaterThanOrEqual(1);
      expect(actions.every((a: { state: string }) => a.state === 'refused')).toBe(true);
      expect(actions[0].refusal).toBe('suspended');
    } finally {
      await runtime?.close();
      await model.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('rotates and revokes tokens: the old secret stops working at once; every change is audited', async () => {
    const rotated = await h.http.post(`/v1/org/scim-tokens/${tokenId}/rotate`).set('Cookie', owner);
    expect(rotated.status).toBe(201);
    expect((await scim('get', '/Users')).status).toBe(401);
    const next = rotated.body.secret as string;
    expect((await scim('get', '/Users', undefined, next)).status).toBe(200);
    expect((await h.http.delete(`/v1/org/scim-tokens/${rotated.body.token.id}`).set('Cookie', owner)).status).toBe(204);
    expect((await scim('get', '/Users', undefined, next)).status).toBe(401);
    const audit = await h.http.get('/v1/audit-events').query({ limit: 200 }).set('Cookie', owner);
    const actions = audit.body.items.map((e: { action: string }) => e.action);
    for (const a of ['scim_token.create', 'scim_token.rotate', 'scim_token.revoke', 'scim.user_create', 'scim.user_patch', 'scim.user_delete', 'scim.group_create', 'scim.group_patch', 'scim.group_delete']) {
      expect(actions).toContain(a);
    }
    expect(JSON.stringify(audit.body)).not.toContain(token);
    expect(JSON.stringify(audit.body)).not.toContain(next);
    expect(h.logs()).not.toContain(token);
  });
});
