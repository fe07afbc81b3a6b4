import { newId } from '@steward/common';
import { inOrg, Membership, User } from '@steward/db';
import { type Harness, login, PASSWORD, type SeededOrg, seedOrg, startHarness } from './support/harness';
import { browseUntil, startIdp, type TestIdp } from './support/oidc';

/**
 * Acceptance 1 of issue 10: OpenID Connect sign-in against a real provider (oidc-provider) on
 * loopback, with openid-client inside Steward: just-in-time creation, group mapping, and a
 * tampered state or nonce refused.
 */
const PUBLIC_URL = 'http://steward.test';
const CALLBACK = `${PUBLIC_URL}/v1/auth/sso/callback`;
const CLIENT_SECRET = 'idp-client-secret-6b1f0c7e9a2d4';

describe('SSO (OpenID Connect per org)', () => {
  let h: Harness;
  let org: SeededOrg;
  let idp: TestIdp;
  let owner: string;
  let legal: string;
  let finance: string;

  /** POST start; returns the authorization URL and the browser-binding cookie. */
  async function start(body: Record<string, string>) {
    const res = await h.http.post('/v1/auth/sso/start').send(body);
    expect(res.status).toBe(200);
    const binding = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('steward_sso='))!.split(';')[0]!;
    return { url: res.body.authorizationUrl as string, binding };
  }

  async function callback(at: URL, cookie: string) {
    return h.http.get(`/v1/auth/sso/callback${at.search}`).set('Cookie', cookie);
  }

  async function signIn(email: string): Promise<string> {
    const { url, binding } = await start({ email });
    const res = await callback(await browseUntil(url, CALLBACK), binding);
    expect(res.status).toBe(303);
    const session = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('steward_session='));
    expect(session).toBeDefined();
    return session!.split(';')[0]!;
  }

  async function groupMembers(id: string): Promise<string[]> {
    const res = await h.http.get(`/v1/groups/${id}/members`).set('Cookie', owner);
    expect(res.status).toBe(200);
    return res.body.items.map((m: { email: string }) => m.email);
  }

  beforeAll(async () => {
    h = await startHarness({ env: { STEWARD_PUBLIC_URL: PUBLIC_URL, STEWARD_EGRESS_ALLOW_HOSTS: '127.0.0.1' } });
    org = await seedOrg(h.ds, 'acme');
    owner = await login(h, org.users.owner.email);
    idp = await startIdp('steward-acme', CLIENT_SECRET, CALLBACK);
    h.onClose(() => idp.stop());
    legal = (await h.http.post('/v1/groups').set('Cookie', owner).send({ name: 'Legal' })).body.id;
    finance = (await h.http.post('/v1/groups').set('Cookie', owner).send({ name: 'Finance' })).body.id;
  });
  afterAll(() => h?.close());

  it('stores the provider with the client secret sealed and never shown', async () => {
    const put = await h.http
      .put('/v1/org/sso')
      .set('Cookie', owner)
      .send({ issuer: idp.issuer, clientId: 'steward-acme', clientSecret: CLIENT_SECRET, groupMap: { 'legal-team': legal, 'finance-team': finance } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ issuer: idp.issuer, clientSecretSet: true, enabled: true, defaultRole: 'member', verifiedAt: null, redirectUri: CALLBACK });
    expect(JSON.stringify(put.body)).not.toContain(CLIENT_SECRET);
    const [row] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT client_secret_sealed FROM sso_configs WHERE org_id = $1`, [org.id]));
    expect(row.client_secret_sealed).toMatch(/^v1\./);
    expect(row.client_secret_sealed).not.toContain(CLIENT_SECRET);
    // Password sign-in cannot be switched off before SSO has worked once.
    const off = await h.http.patch('/v1/org').set('Cookie', owner).send({ passwordSignIn: false });
    expect(off.status).toBe(409);
    expect(off.headers['content-type']).toMatch(/application\/problem\+json/);
  });

  it('signs a new person in, creates them just in time and maps their group claims', async () => {
    await idp.setAccount('okta|alice', { email: 'alice@acme.example', email_verified: true, name: 'Alice Analyst', groups: ['legal-team', 'unmapped-team'] });
    const cookie = await signIn('alice@acme.example');
    const session = await h.http.get('/v1/auth/session').set('Cookie', cookie);
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({ kind: 'session', user: { email: 'alice@acme.example', name: 'Alice Analyst' }, org: { slug: 'acme' }, roles: ['member'] });
    expect(await groupMembers(legal)).toEqual(['alice@acme.example']);
    expect(await groupMembers(finance)).toEqual([]);
    const members = await h.http.get('/v1/members').set('Cookie', owner);
    expect(members.body.items.some((m: { user: { email: string } }) => m.user?.email === 'alice@acme.example' || JSON.stringify(m).includes('alice@acme.example'))).toBe(true);
    const cfg = await h.http.get('/v1/org/sso').set('Cookie', owner);
    expect(cfg.body.verifiedAt).not.toBeNull();
  });

  it('follows the provider on the next sign-in: same person (by subject), groups moved', async () => {
    await idp.setAccount('okta|alice', { email: 'alice@acme.example', email_verified: true, name: 'Alice Analyst', groups: ['finance-team'] });
    const cookie = await signIn('alice@acme.example');
    const session = await h.http.get('/v1/auth/session').set('Cookie', cookie);
    expect(session.body.user.email).toBe('alice@acme.example');
    expect(await groupMembers(legal)).toEqual([]);
    expect(await groupMembers(finance)).toEqual(['alice@acme.example']);
    const audit = await h.http.get('/v1/audit-events').query({ action: 'auth.sso_provision' }).set('Cookie', owner);
    expect(audit.status).toBe(200);
    expect(audit.body.items).toHaveLength(2);
  });

  it('finds the org by slug as well as by email domain', async () => {
    await idp.setAccount('okta|bob', { email: 'bob@acme.example', name: 'Bob', groups: [] });
    const { url, binding } = await start({ org: 'acme' });
    const res = await callback(await browseUntil(url, CALLBACK), binding);
    expect(res.status).toBe(303);
    const unknown = await h.http.post('/v1/auth/sso/start').send({ email: 'eve@nowhere.example' });
    expect(unknown.status).toBe(404);
  });

  it('a domain the org has not verified: sign-ins by email are not sent to its SSO, and SSO adds nobody new there (its identity provider could vouch for anyone); members still sign in', async () => {
    await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`DELETE FROM verified_domains WHERE org_id = $1`, [org.id]));
    try {
      // Listed but not proven: an email there finds no SSO (any org can list any domain).
      expect((await h.http.post('/v1/auth/sso/start').send({ email: 'alice@acme.example' })).status).toBe(404);
      await idp.setAccount('okta|stranger', { email: 'stranger@acme.example', email_verified: true, name: 'Stranger', groups: [] });
      const { url, binding } = await start({ org: 'acme' });
      const refused = await callback(await browseUntil(url, CALLBACK), binding);
      expect(refused.status).toBe(403);
      expect(refused.body.detail).toMatch(/acme\.example is not a verified domain of the org/);
      const [{ n }] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT count(*)::int AS n FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND u.email = 'stranger@acme.example'`, [org.id]));
      expect(n).toBe(0);
      // Bob joined through SSO before: he still signs in.
      await idp.setAccount('okta|bob', { email: 'bob@acme.example', name: 'Bob', groups: [] });
      const bob = await start({ org: 'acme' });
      expect((await callback(await browseUntil(bob.url, CALLBACK), bob.binding)).status).toBe(303);
    } finally {
      await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`INSERT INTO verified_domains (domain, org_id) VALUES ('acme.example', $1)`, [org.id]));
    }
  });

  it('refuses a tampered state', async () => {
    await idp.setAccount('okta|alice', { email: 'alice@acme.example', name: 'Alice Analyst', groups: [] });
    const { url, binding } = await start({ email: 'alice@acme.example' });
    const back = await browseUntil(url, CALLBACK);
    const tampered = new URL(back);
    tampered.searchParams.set('state', `${back.searchParams.get('state')}x`);
    const res = await callback(tampered, binding);
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.headers['set-cookie'] ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(/^steward_session=sts_/)]));
  });

  it('refuses a tampered nonce (the ID token answers another nonce than the one Steward sent)', async () => {
    await idp.setAccount('okta|alice', { email: 'alice@acme.example', name: 'Alice Analyst', groups: [] });
    const { url, binding } = await start({ email: 'alice@acme.example' });
    const tampered = new URL(url);
    tampered.searchParams.set('nonce', 'attacker-chosen-nonce-0123456789');
    const res = await callback(await browseUntil(tampered.href, CALLBACK), binding);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('invalid_credentials');
    const audit = await h.http.get('/v1/audit-events').query({ action: 'auth.sso_login', outcome: 'failure' }).set('Cookie', owner);
    const reasons = audit.body.items.map((e: { payload: { reason: string } }) => e.payload.reason);
    expect(reasons).toContain('token:OAUTH_JWT_CLAIM_COMPARISON_FAILED');
  });

  it('refuses a replayed callback and a callback in another browser', async () => {
    await idp.setAccount('okta|alice', { email: 'alice@acme.example', name: 'Alice Analyst', groups: [] });
    const first = await start({ email: 'alice@acme.example' });
    const back = await browseUntil(first.url, CALLBACK);
    expect((await callback(back, first.binding)).status).toBe(303);
    expect((await callback(back, first.binding)).status).toBe(401);

    const second = await start({ email: 'alice@acme.example' });
    const back2 = await browseUntil(second.url, CALLBACK);
    expect((await callback(back2, 'steward_sso=someone-elses-browser')).status).toBe(401);
  });

  it('switches password sign-in off once SSO works; SSO still signs in', async () => {
    const off = await h.http.patch('/v1/org').set('Cookie', owner).send({ passwordSignIn: false });
    expect(off.status).toBe(200);
    expect(off.body.passwordSignIn).toBe(false);
    const pw = await h.http.post('/v1/auth/login').send({ email: org.users.member.email, password: PASSWORD });
    expect(pw.status).toBe(403);
    // Disabling SSO now would lock everyone out.
    const disable = await h.http.delete('/v1/org/sso').set('Cookie', owner);
    expect(disable.status).toBe(409);
    await idp.setAccount('okta|alice', { email: 'alice@acme.example', name: 'Alice Analyst', groups: [] });
    await signIn('alice@acme.example');
    expect((await h.http.patch('/v1/org').set('Cookie', owner).send({ passwordSignIn: true })).status).toBe(200);
  });

  it("does not claim an account that exists outside this org, and its sessions do not open the person's other orgs", async () => {
    // Carol signs in to another org with her password; this org's provider has an account with her address.
    const globex = await seedOrg(h.ds, 'globex');
    const carolId = newId();
    await inOrg(h.ds, { orgId: globex.id, userId: carolId }, async (em) => {
      await em.insert(User, { id: carolId, email: 'carol@acme.example', name: 'Carol', passwordHash: null, totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
      await em.insert(Membership, { id: newId(), orgId: globex.id, userId: carolId, status: 'active', suspendedAt: null, suspendedReason: null });
    });
    await idp.setAccount('okta|carol', { email: 'carol@acme.example', email_verified: true, name: 'Carol', groups: [] });
    const { url, binding } = await start({ email: 'carol@acme.example' });
    const refused = await callback(await browseUntil(url, CALLBACK), binding);
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(/exists already/);
    expect(refused.headers['set-cookie'] ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(/^steward_session=sts_/)]));

    // A member of this org (by invitation, with a password) who belongs to globex too: SSO links and signs them in
    // here, but that session cannot move to globex; their password session can.
    const member = org.users.member;
    await inOrg(h.ds, { orgId: globex.id, userId: member.id }, (em) => em.insert(Membership, { id: newId(), orgId: globex.id, userId: member.id, status: 'active', suspendedAt: null, suspendedReason: null }));
    // Another identity of the provider naming the member's email, which the provider does not say it verified: not linked.
    await idp.setAccount('okta|mallory', { email: member.email, name: 'Mallory', groups: [] });
    const claimed = await start({ email: member.email });
    const unverified = await callback(await browseUntil(claimed.url, CALLBACK), claimed.binding);
    expect(unverified.status).toBe(403);
    expect(unverified.body.detail).toMatch(/does not say the email is verified/);
    expect(unverified.headers['set-cookie'] ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(/^steward_session=sts_/)]));
    expect((await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT count(*)::int AS n FROM sso_identities WHERE org_id = $1 AND subject = 'okta|mallory'`, [org.id])))[0].n).toBe(0);
    await idp.setAccount('okta|member', { email: member.email, email_verified: true, name: 'Member', groups: [] });
    const viaSso = await signIn(member.email);
    const moved = await h.http.post('/v1/auth/switch-org').set('Cookie', viaSso).send({ org: globex.slug });
    expect(moved.status).toBe(403);
    expect(moved.body.detail).toMatch(/single sign-on, which speaks for this org only/);
    // Nor does it set the account's second factor (that would lock its password sign-in everywhere).
    const enrol = await h.http.post('/v1/auth/totp/enroll').set('Cookie', viaSso).send({});
    expect(enrol.status).toBe(403);
    // Nor, once the person has one, does it guess at removing it (the guesses would be this org's to count).
    await inOrg(h.ds, { orgId: org.id, userId: member.id }, (em) => em.query(`UPDATE users SET totp_enabled_at = now() WHERE id = $1`, [member.id]));
    try {
      const disable = await h.http.post('/v1/auth/totp/disable').set('Cookie', viaSso).send({ password: PASSWORD, totpCode: '123456' });
      expect({ status: disable.status, detail: disable.body.detail }).toEqual({ status: 403, detail: expect.stringMatching(/opened through single sign-on/) });
      const [counts] = await inOrg(h.ds, { orgId: org.id, userId: member.id }, (em) => em.query(`SELECT m.step_up_failures, u.totp_enabled_at IS NOT NULL AS enrolled FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2`, [org.id, member.id]));
      expect(counts).toEqual({ step_up_failures: 0, enrolled: true });
    } finally {
      await inOrg(h.ds, { orgId: org.id, userId: member.id }, (em) => em.query(`UPDATE users SET totp_enabled_at = NULL WHERE id = $1`, [member.id]));
    }
    const viaPassword = await login(h, member.email, { org: 'acme' });
    expect((await h.http.post('/v1/auth/switch-org').set('Cookie', viaPassword).send({ org: globex.slug })).status).toBe(200);
  });

  it("another org's single sign-on neither changes an account's password nor gives an account made elsewhere its second factor", async () => {
    // A session this org's SSO opened for a member with a password: the password is the account's in every org.
    const viaSso = await signIn(org.users.member.email);
    const change = await h.http.post('/v1/auth/password').set('Cookie', viaSso).send({ currentPassword: PASSWORD, newPassword: 'a brand new password 42' });
    expect({ status: change.status, detail: change.body.detail }).toEqual({ status: 403, detail: expect.stringMatching(/opened through single sign-on/) });
    expect((await h.http.post('/v1/auth/login').send({ email: org.users.member.email, password: PASSWORD, org: 'acme' })).status).toBe(200);
    // Nor does it join the account to another org that invited it (that takes a session opened with the password).
    const inviting = await seedOrg(h.ds, 'inviting');
    const invitation = (await h.http.post('/v1/invitations').set('Cookie', await login(h, inviting.users.owner.email)).send({ email: org.users.member.email, roles: ['member'] })).body;
    const joined = await h.http.post('/v1/invitations/accept').set('Cookie', viaSso).send({ token: invitation.token });
    expect({ status: joined.status, detail: joined.body.detail }).toEqual({ status: 403, detail: expect.stringMatching(/session opened with the account's password/) });
    expect((await h.http.post('/v1/invitations/accept').set('Cookie', await login(h, org.users.member.email, { org: 'acme' })).send({ token: invitation.token })).status).toBe(201);
    // Alice's account (no password) joined another org first: that org made it, so acme's SSO does not set its factor.
    const [{ user_id: alice }] = await inOrg(h.ds, { orgId: '' }, (em) => em.query('SELECT user_id FROM steward_auth_user_by_email($1)', ['alice@acme.example']));
    const first = await seedOrg(h.ds, 'first-home');
    await inOrg(h.ds, { orgId: first.id, userId: alice }, (em) => em.query(`INSERT INTO memberships (id, org_id, user_id, status, created_at) VALUES ($1, $2, $3, 'active', now() - interval '1 day')`, [newId(), first.id, alice]));
    await idp.setAccount('okta|alice', { email: 'alice@acme.example', email_verified: true, name: 'Alice Analyst', groups: [] });
    const aliceSso = await signIn('alice@acme.example');
    const refused = await h.http.post('/v1/auth/totp/enroll').set('Cookie', aliceSso).send({});
    expect({ status: refused.status, detail: refused.body.detail }).toEqual({ status: 403, detail: expect.stringMatching(/made by another org's single sign-on/) });
    // Made by acme (its first membership), the same session adds it.
    await inOrg(h.ds, { orgId: first.id, userId: alice }, (em) => em.query(`DELETE FROM memberships WHERE org_id = $1 AND user_id = $2`, [first.id, alice]));
    expect((await h.http.post('/v1/auth/totp/enroll').set('Cookie', aliceSso).send({})).status).toBe(200);
  });

  it('keeps the client secret and tokens out of logs and the audit trail', async () => {
    expect(h.logs()).not.toContain(CLIENT_SECRET);
    const audit = await h.http.get('/v1/audit-events').query({ limit: 200 }).set('Cookie', owner);
    expect(audit.status).toBe(200);
    const text = JSON.stringify(audit.body);
    expect(text).not.toContain(CLIENT_SECRET);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./); // no JWT (ID token)
  });
});
