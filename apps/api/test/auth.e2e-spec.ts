import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { generate } from 'otplib';
import { newId } from '@steward/common';
import { inOrg, Membership, RoleAssignment } from '@steward/db';
import { type Ctx, newApiKey, totpUser } from './support/fixtures';
import { addUser, type Harness, login, PASSWORD, type SeededOrg, seedOrg, startHarness } from './support/harness';
import { FAILED_SIGN_IN_MS } from '../src/auth/auth.service';

describe('identity', () => {
  let h: Harness;
  let org: SeededOrg;
  let owner: string;
  const ctx = (role: Ctx['role'] = 'member'): Ctx => ({ h, org, role, cookie: owner, ownerCookie: owner });

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'acme');
    owner = await login(h, org.users.owner.email);
  });
  afterAll(() => h?.close());

  describe('sign-in', () => {
    it('sets an HTTP-only, SameSite=Strict session cookie and never returns a secret', async () => {
      const res = await h.http.post('/v1/auth/login').send({ email: 'MEMBER@acme.example', password: PASSWORD });
      expect(res.status).toBe(200);
      const cookie = String(res.headers['set-cookie']);
      expect(cookie).toMatch(/^steward_session=sts_[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+/);
      expect(res.body).toMatchObject({ kind: 'session', user: { email: 'member@acme.example' }, org: { slug: 'acme' }, roles: ['member'] });
      expect(JSON.stringify(res.body)).not.toMatch(/password|sts_/);
    });

    it('gives the same answer for a wrong password and an unknown email, and audits the failure', async () => {
      const wrong = await h.http.post('/v1/auth/login').send({ email: org.users.member.email, password: 'not the password at all' });
      const unknown = await h.http.post('/v1/auth/login').send({ email: 'nobody@acme.example', password: 'not the password at all' });
      expect([wrong.status, unknown.status]).toEqual([401, 401]);
      expect(wrong.body.detail).toBe(unknown.body.detail);
      const events = await h.http.get('/v1/audit-events').query({ action: 'auth.login', outcome: 'failure' }).set('Cookie', owner);
      expect(events.body.items.some((e: { actorId: string }) => e.actorId === org.users.member.id)).toBe(true);
    });

    it('locks out guesses at an address that has no account as it locks an account: the 429 does not tell which addresses exist', async () => {
      const known = await addUser(h.ds, org, 'member', 'parity-guessed');
      const unknown = `nobody-${newId().slice(-8)}@acme.example`;
      const guess = (email: string) => h.http.post('/v1/auth/login').send({ email, password: 'not the password at all' });
      for (let i = 0; i < 20; i++) {
        const [a, b] = await Promise.all([guess(known.email), guess(unknown)]);
        expect([a.status, b.status]).toEqual([401, 401]);
      }
      const timed = async (email: string) => {
        const t = Date.now();
        const r = await guess(email);
        return { status: r.status, detail: r.body.detail as string, ms: Date.now() - t };
      };
      const [a, b] = await Promise.all([timed(known.email), timed(unknown)]);
      expect([a.status, b.status]).toEqual([429, 429]);
      expect(b.detail).toBe(a.detail);
      // Nor does its timing: once locked neither hashes a password, and the work that differs (database
      // writes for an account, a Redis count for an address) is hidden under the least time a refusal takes.
      expect(Math.min(a.ms, b.ms)).toBeGreaterThanOrEqual(FAILED_SIGN_IN_MS);
    });

    it('asks a user of several orgs which one, and binds the session to it', async () => {
      const other = await seedOrg(h.ds, 'other');
      // Make acme's approver a member of "other" too, through an invitation.
      const inv = await h.http.post('/v1/invitations').set('Cookie', await login(h, other.users.owner.email)).send({ email: org.users.approver.email, roles: ['auditor'] });
      expect(inv.status).toBe(201);
      const accepted = await h.http.post('/v1/invitations/accept').send({ token: inv.body.token, password: PASSWORD });
      expect(accepted.status).toBe(201);
      expect(accepted.body.userId).toBe(org.users.approver.id);
      const ambiguous = await h.http.post('/v1/auth/login').send({ email: org.users.approver.email, password: PASSWORD });
      expect(ambiguous.status).toBe(400);
      expect(ambiguous.body.errors[0].message).toContain('acme, other');
      const cookie = await login(h, org.users.approver.email, { org: 'other' });
      const session = await h.http.get('/v1/auth/session').set('Cookie', cookie);
      expect(session.body).toMatchObject({ org: { slug: 'other' }, roles: ['auditor'] });
      // The "other" session cannot see acme's records.
      expect((await h.http.get(`/v1/members/${org.users.owner.id}`).set('Cookie', cookie)).status).toBe(404);

      // The org switcher: the person's orgs, then a new session in acme; the old one ends.
      expect((await h.http.get('/v1/auth/orgs').set('Cookie', cookie)).body.items).toEqual([
        { slug: 'acme', current: false, active: true },
        { slug: 'other', current: true, active: true },
      ]);
      expect((await h.http.post('/v1/auth/switch-org').set('Cookie', cookie).send({ org: 'other' })).status).toBe(409);
      expect((await h.http.post('/v1/auth/switch-org').set('Cookie', cookie).send({ org: 'solo-nobody' })).status).toBe(404);
      expect((await h.http.post('/v1/auth/switch-org').set('Cookie', cookie).send({ org: 'Not A Slug!' })).status).toBe(400);
      const switched = await h.http.post('/v1/auth/switch-org').set('Cookie', cookie).send({ org: 'acme' });
      expect(switched.status).toBe(200);
      expect(switched.body).toMatchObject({ org: { slug: 'acme' }, roles: ['approver'] });
      const acmeCookie = String(switched.headers['set-cookie']).split(';')[0]!;
      expect((await h.http.get('/v1/auth/session').set('Cookie', cookie)).status).toBe(401);
      expect((await h.http.get('/v1/auth/session').set('Cookie', acmeCookie)).body.org.slug).toBe('acme');
      const moved = await inOrg(h.ds, { orgId: other.id }, (em) => em.query(`SELECT canonical::jsonb->'payload'->>'to' AS "to" FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'auth.switch_org'`, [other.id]));
      expect(moved).toEqual([{ to: 'acme' }]);
      // An org that signs in only through SSO is not reached by switching from a password session.
      await inOrg(h.ds, { orgId: other.id }, (em) => em.query(`UPDATE orgs SET password_sign_in = false WHERE id = $1`, [other.id]));
      const sso = await h.http.post('/v1/auth/switch-org').set('Cookie', acmeCookie).send({ org: 'other' });
      expect(sso.status).toBe(403);
      expect(sso.body.detail).toContain('SSO');
      expect((await h.http.get('/v1/auth/session').set('Cookie', acmeCookie)).status).toBe(200);
      await inOrg(h.ds, { orgId: other.id }, (em) => em.query(`UPDATE orgs SET password_sign_in = true WHERE id = $1`, [other.id]));
    });

    it('refuses an existing account joining by invitation without its password', async () => {
      const inv = await h.http.post('/v1/invitations').set('Cookie', owner).send({ email: 'auditor@other.example', roles: ['member'] });
      const res = await h.http.post('/v1/invitations/accept').send({ token: inv.body.token, name: 'X', password: 'a guess that is long' });
      expect(res.status).toBe(401);
      const reuse = await h.http.post('/v1/invitations/accept').send({ token: inv.body.token, password: PASSWORD });
      expect(reuse.status).toBe(201);
      const again = await h.http.post('/v1/invitations/accept').send({ token: inv.body.token, password: PASSWORD });
      expect(again.status).toBe(404);
    });

    it('an account without a password (made by single sign-on or SCIM) joins another org by invitation while signed in as it; any other account, or nobody, joins nothing', async () => {
      const u = await addUser(h.ds, org, 'member', 'sso-only');
      const mine = await login(h, u.email);
      // As single sign-on leaves an account: no password, a console session.
      await inOrg(h.ds, { orgId: '', userId: u.id }, (em) => em.query('UPDATE users SET password_hash = NULL WHERE id = $1', [u.id]));
      const joining = await seedOrg(h.ds, 'joining');
      const inv = (await h.http.post('/v1/invitations').set('Cookie', await login(h, joining.users.owner.email)).send({ email: u.email, roles: ['member'] })).body;
      const members = async () => (await inOrg(h.ds, { orgId: joining.id }, (em) => em.query('SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2', [joining.id, u.id]))).length;

      const nobody = await h.http.post('/v1/invitations/accept').send({ token: inv.token });
      expect(nobody.status).toBe(401);
      expect(nobody.body.detail).toMatch(/signed in as the invited account/);
      // A password cannot stand in for an account that has none.
      expect((await h.http.post('/v1/invitations/accept').send({ token: inv.token, password: PASSWORD })).status).toBe(401);
      const someoneElse = await h.http.post('/v1/invitations/accept').set('Cookie', await login(h, org.users.member.email)).send({ token: inv.token });
      expect(someoneElse.status).toBe(403);
      expect(await members()).toBe(0);

      const joined = await h.http.post('/v1/invitations/accept').set('Cookie', mine).send({ token: inv.token });
      expect(joined.status).toBe(201);
      expect(joined.body).toEqual({ orgId: joining.id, userId: u.id });
      expect(await members()).toBe(1);
      const [event] = await inOrg(h.ds, { orgId: joining.id }, (em) => em.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND action = 'invitation.accept'`, [joining.id]));
      expect(event.p).toMatchObject({ newUser: false, provenBy: 'session' });
      expect((await h.http.post('/v1/invitations/accept').set('Cookie', mine).send({ token: inv.token })).status).toBe(404);
    });

    it('an invitation makes no new account at a domain another org verified (that org makes its accounts); the org that holds it does', async () => {
      const holder = await seedOrg(h.ds, 'holder');
      await inOrg(h.ds, { orgId: holder.id }, (em) => em.query(`INSERT INTO verified_domains (domain, org_id, method) VALUES ('held.example', $1, 'dns')`, [holder.id]));
      const accounts = async (email: string) => (await inOrg(h.ds, { orgId: '' }, (em) => em.query('SELECT user_id FROM steward_auth_user_by_email($1)', [email]))).length;
      // Another org invites someone at that domain: the token cannot make them an account.
      const other = (await h.http.post('/v1/invitations').set('Cookie', owner).send({ email: 'newbie@held.example', roles: ['member'] })).body;
      const refused = await h.http.post('/v1/invitations/accept').send({ token: other.token, name: 'Squatter', password: 'a long enough password 1' });
      expect(refused.status).toBe(403);
      expect(refused.body.detail).toMatch(/held\.example is a domain another org verified/);
      expect(await accounts('newbie@held.example')).toBe(0);
      // The holder's own invitation does (its people), and then the other org's is accepted while signed in.
      const own = (await h.http.post('/v1/invitations').set('Cookie', await login(h, holder.users.owner.email)).send({ email: 'newbie@held.example', roles: ['member'] })).body;
      expect((await h.http.post('/v1/invitations/accept').send({ token: own.token, name: 'Newbie', password: PASSWORD })).status).toBe(201);
      const session = await login(h, 'newbie@held.example');
      expect((await h.http.post('/v1/invitations/accept').set('Cookie', session).send({ token: other.token })).status).toBe(201);
    });

    it("a password change ends the person's other sessions in every org they belong to, not this one", async () => {
      const third = await seedOrg(h.ds, 'third');
      const u = await addUser(h.ds, org, 'member', 'two-orgs');
      await inOrg(h.ds, { orgId: third.id, userId: u.id }, async (em) => {
        await em.insert(Membership, { id: newId(), orgId: third.id, userId: u.id, status: 'active', suspendedAt: null, suspendedReason: null });
        await em.insert(RoleAssignment, { id: newId(), orgId: third.id, userId: u.id, role: 'member', customRoleId: null });
      });
      const here = await login(h, u.email, { org: org.slug });
      const elsewhere = await login(h, u.email, { org: third.slug });
      const changed = await h.http.post('/v1/auth/password').set('Cookie', here).send({ currentPassword: PASSWORD, newPassword: 'a new passphrase for both orgs' });
      expect(changed.status).toBeLessThan(300);
      expect((await h.http.get('/v1/auth/session').set('Cookie', elsewhere)).status).toBe(401);
      expect((await h.http.get('/v1/auth/session').set('Cookie', here)).status).toBe(200);
    });

    it("wrong current passwords count against the account (a stolen session cannot guess it), and a change revokes the person's API keys", async () => {
      const u = await addUser(h.ds, org, 'member', 'stolen-session');
      const cookie = await login(h, u.email);
      const key = await newApiKey(h, cookie, ['*']);
      expect((await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`)).status).toBe(200);
      for (let i = 0; i < 20; i++) {
        expect((await h.http.post('/v1/auth/password').set('Cookie', cookie).send({ currentPassword: `wrong guess number ${i}`, newPassword: 'the attacker wants this one' })).status).toBe(401);
      }
      const locked = await h.http.post('/v1/auth/password').set('Cookie', cookie).send({ currentPassword: PASSWORD, newPassword: 'the attacker wants this one' });
      expect(locked.status).toBe(429);
      expect(locked.headers['content-type']).toMatch(/application\/problem\+json/);
      // The window passes (here: the count is cleared): the right password changes it, and the key minted from a session goes with the old password.
      await inOrg(h.ds, { orgId: '', userId: u.id }, (em) => em.query('UPDATE users SET password_failures = 0, password_failures_since = NULL WHERE id = $1', [u.id]));
      expect((await h.http.post('/v1/auth/password').set('Cookie', cookie).send({ currentPassword: PASSWORD, newPassword: 'a fresh passphrase of mine' })).status).toBeLessThan(300);
      expect((await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`)).status).toBe(401);
      const [e] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'auth.password_change' AND canonical::jsonb->>'outcome' = 'success' AND canonical::jsonb->'target'->>'id' = $2`, [org.id, u.id]));
      expect(e.p).toMatchObject({ apiKeysRevoked: 1 });
    });

    it("a password change revokes the invitations the person sent that nobody accepted yet (a stolen session could have sent one)", async () => {
      const u = await addUser(h.ds, org, 'admin', 'inviter');
      const cookie = await login(h, u.email);
      const sent = await h.http.post('/v1/invitations').set('Cookie', cookie).send({ email: 'planted@outside.example', roles: ['member'] });
      expect(sent.status).toBe(201);
      expect((await h.http.post('/v1/auth/password').set('Cookie', cookie).send({ currentPassword: PASSWORD, newPassword: 'the inviter changed it' })).status).toBeLessThan(300);
      const accepted = await h.http.post('/v1/invitations/accept').send({ token: sent.body.token, name: 'Planted', password: 'a planted account passphrase' });
      expect(accepted.status).toBeGreaterThanOrEqual(400);
      const [e] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'auth.password_change' AND canonical::jsonb->>'outcome' = 'success' AND canonical::jsonb->'target'->>'id' = $2`, [org.id, u.id]));
      expect(e.p).toMatchObject({ invitationsRevoked: 1 });
      // An invitation whose sender was suspended since speaks for nobody.
      const again = await h.http.post('/v1/invitations').set('Cookie', await login(h, u.email, { password: 'the inviter changed it' })).send({ email: 'planted2@outside.example', roles: ['member'] });
      expect(again.status).toBe(201);
      expect((await h.http.post(`/v1/members/${u.id}/suspend`).set('Cookie', owner).send({ reason: 'investigation' })).status).toBe(200);
      const refused = await h.http.post('/v1/invitations/accept').send({ token: again.body.token, name: 'Planted', password: 'a planted account passphrase' });
      expect({ status: refused.status, detail: refused.body.detail }).toEqual({ status: 403, detail: expect.stringContaining('no longer active in the org') });
      expect((await h.http.post(`/v1/members/${u.id}/reactivate`).set('Cookie', owner)).status).toBe(200);
      expect((await h.http.post('/v1/invitations/accept').send({ token: again.body.token, name: 'Invited', password: 'a planted account passphrase' })).status).toBe(201);
    });

    it('an invitation grants its roles as its sender could grant them when it is accepted: an admin demoted since has an admin invitation refused', async () => {
      const u = await addUser(h.ds, org, 'admin', 'demoted');
      const sent = await h.http.post('/v1/invitations').set('Cookie', await login(h, u.email)).send({ email: 'second-self@outside.example', roles: ['admin'] });
      expect(sent.status).toBe(201);
      expect((await h.http.put(`/v1/members/${u.id}/roles`).set('Cookie', owner).send({ roles: ['member'] })).status).toBe(200);
      const refused = await h.http.post('/v1/invitations/accept').send({ token: sent.body.token, name: 'Second Self', password: 'a second self passphrase' });
      expect({ status: refused.status, detail: refused.body.detail }).toEqual({ status: 403, detail: expect.stringContaining('can no longer grant "admin"') });
      const [{ n }] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT count(*)::int AS n FROM users WHERE email = 'second-self@outside.example'`));
      expect(n).toBe(0);
      // Made an admin again, the invitation grants what it says.
      expect((await h.http.put(`/v1/members/${u.id}/roles`).set('Cookie', owner).send({ roles: ['admin'] })).status).toBe(200);
      const joined = await h.http.post('/v1/invitations/accept').send({ token: sent.body.token, name: 'Second Self', password: 'a second self passphrase' });
      expect(joined.status).toBe(201);
    });

    it("a member's suspension is lifted by whoever put it, or by someone who holds every permission they hold: security's suspension of an admin is not lifted by another admin", async () => {
      const rogue = await addUser(h.ds, org, 'admin', 'rogue');
      const peer = await addUser(h.ds, org, 'admin', 'peer');
      const sec = await addUser(h.ds, org, 'security', 'responder');
      const secCookie = await login(h, sec.email);
      expect((await h.http.post(`/v1/members/${rogue.id}/suspend`).set('Cookie', secCookie).send({ reason: 'incident 42' })).status).toBe(200);
      const byPeer = await h.http.post(`/v1/members/${rogue.id}/reactivate`).set('Cookie', await login(h, peer.email));
      expect({ status: byPeer.status, detail: byPeer.body.detail }).toEqual({ status: 403, detail: expect.stringContaining('Whoever suspended this member') });
      expect((await h.http.get(`/v1/members/${rogue.id}`).set('Cookie', owner)).body.status).toBe('suspended');
      // An owner holds all security holds: lifted.
      expect((await h.http.post(`/v1/members/${rogue.id}/reactivate`).set('Cookie', owner)).status).toBe(200);
      // Suspended by a peer admin, another admin lifts it.
      expect((await h.http.post(`/v1/members/${rogue.id}/suspend`).set('Cookie', await login(h, peer.email)).send({ reason: 'check' })).status).toBe(200);
      expect((await h.http.post(`/v1/members/${rogue.id}/reactivate`).set('Cookie', await login(h, org.users.admin.email))).status).toBe(200);
    });

    it('an invitation is no way round the password limit, nor round an open sanction', async () => {
      const u = await addUser(h.ds, org, 'member', 'invited-elsewhere');
      const other = await seedOrg(h.ds, 'inv-limit');
      const otherOwner = await login(h, other.users.owner.email);
      const inv = (await h.http.post('/v1/invitations').set('Cookie', otherOwner).send({ email: u.email, roles: ['member'] })).body;
      for (let i = 0; i < 20; i++) expect((await h.http.post('/v1/invitations/accept').send({ token: inv.token, password: `wrong guess number ${i}` })).status).toBe(401);
      expect((await h.http.post('/v1/invitations/accept').send({ token: inv.token, password: PASSWORD })).status).toBe(429);
      await inOrg(h.ds, { orgId: '', userId: u.id }, (em) => em.query('UPDATE users SET password_failures = 0, password_failures_since = NULL WHERE id = $1', [u.id]));
      // An open suspension there (from before they left): re-joining does not lift it; only an owner does.
      await inOrg(h.ds, { orgId: other.id }, (em) => em.query(`INSERT INTO sanctions (org_id, id, user_id, violation_id, kind, strikes) VALUES ($1, $2, $3, $4, 'suspension', 2)`, [other.id, newId(), u.id, newId()]));
      const held = await h.http.post('/v1/invitations/accept').send({ token: inv.token, password: PASSWORD });
      expect(held.status).toBe(403);
      expect(held.body.detail).toMatch(/open sanction/);
      expect((await inOrg(h.ds, { orgId: other.id }, (em) => em.query('SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2', [other.id, u.id]))).length).toBe(0);
    });

    it('a session cookie sent twice (a sibling host set its own) or malformed signs nobody in, and fails cleanly', async () => {
      const mine = await login(h, (await addUser(h.ds, org, 'member', 'twice-a')).email);
      const theirs = await login(h, (await addUser(h.ds, org, 'member', 'twice-b')).email);
      expect((await h.http.get('/v1/auth/session').set('Cookie', mine)).status).toBe(200);
      const twice = await h.http.get('/v1/auth/session').set('Cookie', `${theirs}; ${mine}`);
      expect(twice.status).toBe(401);
      const malformed = await h.http.get('/v1/auth/session').set('Cookie', 'steward_session=%');
      expect(malformed.status).toBe(401);
      expect(malformed.headers['content-type']).toMatch(/application\/problem\+json/);
    });

    it('logs out: the cookie stops working', async () => {
      const u = await addUser(h.ds, org, 'member');
      const cookie = await login(h, u.email);
      expect((await h.http.post('/v1/auth/logout').set('Cookie', cookie)).status).toBe(204);
      expect((await h.http.get('/v1/auth/session').set('Cookie', cookie)).status).toBe(401);
    });
  });

  describe('TOTP and step-up', () => {
    it('adding a second factor takes the account password again (a stolen session alone cannot), and enrolling is no step-up', async () => {
      const u = await addUser(h.ds, org, 'member', 'enrols');
      const cookie = await login(h, u.email);
      const none = await h.http.post('/v1/auth/totp/enroll').set('Cookie', cookie).send({});
      expect(none.status).toBe(400);
      expect(none.body.errors).toEqual([{ path: 'password', message: expect.stringMatching(/password is needed/) }]);
      expect((await h.http.post('/v1/auth/totp/enroll').set('Cookie', cookie).send({ password: 'not my password at all' })).status).toBe(401);
      const enrolled = await h.http.post('/v1/auth/totp/enroll').set('Cookie', cookie).send({ password: PASSWORD });
      expect(enrolled.status).toBe(200);
      expect((await h.http.post('/v1/auth/totp/confirm').set('Cookie', cookie).send({ totpCode: await generate({ secret: enrolled.body.secret }) })).status).toBe(204);
      const session = (await h.http.get('/v1/auth/session').set('Cookie', cookie)).body;
      expect(session.mfa).toEqual({ enrolled: true, verifiedAt: null });
    });

    it('an account with a second factor joins another org by invitation only while signed in: its password alone joins nothing', async () => {
      const u = await totpUser(ctx());
      const email = (await h.http.get('/v1/auth/session').set('Cookie', u.cookie)).body.user.email as string;
      const inviting = await seedOrg(h.ds, 'inviting-2fa');
      const inv = (await h.http.post('/v1/invitations').set('Cookie', await login(h, inviting.users.owner.email)).send({ email, roles: ['member'] })).body;
      const byPassword = await h.http.post('/v1/invitations/accept').send({ token: inv.token, password: PASSWORD });
      expect({ status: byPassword.status, detail: byPassword.body.detail }).toEqual({ status: 403, detail: expect.stringMatching(/has a second factor: sign in/) });
      const joined = await h.http.post('/v1/invitations/accept').set('Cookie', u.cookie).send({ token: inv.token });
      expect(joined.status).toBe(201);
    });

    it('requires the code at sign-in once enrolled, and refuses a replayed code', async () => {
      const u = await totpUser(ctx());
      const session = await h.http.get('/v1/auth/session').set('Cookie', u.cookie);
      const email = session.body.user.email;
      const noCode = await h.http.post('/v1/auth/login').send({ email, password: PASSWORD });
      expect(noCode.status).toBe(401);
      expect(noCode.body.code).toBe('mfa_required');
      const code = await u.code(1);
      const first = await h.http.post('/v1/auth/login').send({ email, password: PASSWORD, totpCode: code });
      expect(first.status).toBe(200);
      expect(first.body.mfa.verifiedAt).not.toBeNull();
      const replay = await h.http.post('/v1/auth/login').send({ email, password: PASSWORD, totpCode: code });
      expect(replay.status).toBe(401);
      // The same fresh code sent twice at the same moment signs in once.
      const v = await totpUser(ctx());
      const vEmail = (await h.http.get('/v1/auth/session').set('Cookie', v.cookie)).body.user.email;
      const fresh = await v.code(1);
      const both = await Promise.all([0, 1].map(() => h.http.post('/v1/auth/login').send({ email: vEmail, password: PASSWORD, totpCode: fresh })));
      expect(both.map((r) => r.status).sort()).toEqual([200, 401]);
    });

    it('counts wrong sign-in codes per account, whatever the address: past ten in fifteen minutes even the right code is refused until the window ends', async () => {
      const u = await totpUser(ctx());
      const me = (await h.http.get('/v1/auth/session').set('Cookie', u.cookie)).body.user as { id: string; email: string };
      const right = await u.code(0);
      const bad = right.slice(0, 5) + String((Number(right[5]) + 5) % 10);
      // Fourteen wrong codes sent side by side from two addresses. Each is counted before it is
      // checked, so exactly ten are checked (401) and four are refused unchecked (429).
      const tries = await Promise.all(
        Array.from({ length: 14 }, (_, i) => h.http.post('/v1/auth/login').set('X-Forwarded-For', i % 2 ? '198.51.100.7' : '203.0.113.8').send({ email: me.email, password: PASSWORD, totpCode: bad })),
      );
      expect(tries.map((r) => r.status).sort()).toEqual([...Array(10).fill(401), ...Array(4).fill(429)]);
      // The right code is refused now, with the reason and no session.
      const locked = await h.http.post('/v1/auth/login').send({ email: me.email, password: PASSWORD, totpCode: await u.code(1) });
      expect(locked.status).toBe(429);
      expect(locked.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(locked.body).toMatchObject({ code: 'rate_limited', detail: expect.stringMatching(/^10 wrong authenticator codes .* takes no code for 15 more minute/) });
      expect(locked.headers['set-cookie']).toBeUndefined();
      const failures = await inOrg(h.ds, { orgId: org.id, userId: me.id }, (em) =>
        em.query(`SELECT canonical::jsonb->'payload'->>'reason' AS reason FROM audit_events WHERE org_id = $1 AND actor_id = $2 AND action = 'auth.login' AND outcome = 'failure' ORDER BY occurred_at`, [org.id, me.id]),
      );
      expect(failures.filter((f: { reason: string | null }) => f.reason === 'totp_locked')).toHaveLength(5);
      // Once the window has passed, the right code signs in and the count starts again.
      await inOrg(h.ds, { orgId: org.id, userId: me.id }, (em) => em.query(`UPDATE users SET totp_failures_since = now() - interval '16 minutes' WHERE id = $1`, [me.id]));
      expect((await h.http.post('/v1/auth/login').send({ email: me.email, password: PASSWORD, totpCode: await u.code(1) })).status).toBe(200);
      const [row] = await inOrg(h.ds, { orgId: org.id, userId: me.id }, (em) => em.query('SELECT totp_failures, totp_failures_since FROM users WHERE id = $1', [me.id]));
      expect(row).toEqual({ totp_failures: 0, totp_failures_since: null });
    });

    it("counts wrong step-up codes per org: ten lock step-up in this org, and leave the person's sign-in (and their other orgs) alone", async () => {
      const u = await totpUser(ctx());
      const me = (await h.http.get('/v1/auth/session').set('Cookie', u.cookie)).body.user as { id: string; email: string };
      const right = await u.code(0);
      const bad = right.slice(0, 5) + String((Number(right[5]) + 5) % 10);
      // A session here (an org's identity provider can open one as any of its members) sends twelve wrong codes.
      const tries = await Promise.all(Array.from({ length: 12 }, () => h.http.post('/v1/auth/step-up').set('Cookie', u.cookie).send({ totpCode: bad })));
      expect(tries.map((r) => r.status).sort()).toEqual([...Array(10).fill(401), ...Array(2).fill(429)]);
      const refused = await h.http.post('/v1/auth/step-up').set('Cookie', u.cookie).send({ totpCode: await u.code(1) });
      expect(refused.status).toBe(429);
      expect(refused.body.detail).toMatch(/^10 wrong authenticator codes were entered in this organisation; step-up here takes no code/);
      // The account's own count (sign-in, in every org) took none of them.
      const [counts] = await inOrg(h.ds, { orgId: org.id, userId: me.id }, (em) =>
        em.query('SELECT u.totp_failures, m.step_up_failures FROM users u JOIN memberships m ON m.user_id = u.id AND m.org_id = $2 WHERE u.id = $1', [me.id, org.id]),
      );
      expect(counts).toEqual({ totp_failures: 0, step_up_failures: 10 });
      // Once the window has passed, the right code steps up here and the count starts again.
      await inOrg(h.ds, { orgId: org.id, userId: me.id }, (em) => em.query(`UPDATE memberships SET step_up_failures_since = now() - interval '16 minutes' WHERE org_id = $1 AND user_id = $2`, [org.id, me.id]));
      expect((await h.http.post('/v1/auth/step-up').set('Cookie', u.cookie).send({ totpCode: await u.code(1) })).status).toBe(204);
      const [after] = await inOrg(h.ds, { orgId: org.id, userId: me.id }, (em) => em.query('SELECT step_up_failures, step_up_failures_since FROM memberships WHERE org_id = $1 AND user_id = $2', [org.id, me.id]));
      expect(after).toEqual({ step_up_failures: 0, step_up_failures_since: null });
    });

    it('stores the TOTP secret sealed, not in clear', async () => {
      const u = await totpUser(ctx());
      const me = await h.http.get('/v1/auth/session').set('Cookie', u.cookie);
      const [row] = await inOrg(h.ds, { orgId: org.id, userId: me.body.user.id }, (em) => em.query('SELECT totp_secret_sealed FROM users WHERE id = $1', [me.body.user.id]));
      expect(row.totp_secret_sealed).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    });

    it('makes sensitive operations wait for a fresh second factor when the org requires it', async () => {
      const ownerT = await totpUser(ctx('owner'));
      const on = await h.http.patch('/v1/org').set('Cookie', ownerT.cookie).send({ requireStepUp: true });
      expect(on.status).toBe(200); // enrolment just proved the factor
      const stale = await addUser(h.ds, org, 'owner');
      const staleCookie = await login(h, stale.email);
      const refused = await h.http.post('/v1/roles').set('Cookie', staleCookie).send({ key: 'readers', name: 'Readers', permissions: [{ action: 'read', subject: 'Group' }] });
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe('step_up_required');
      const key = await newApiKey(h, ownerT.cookie, ['*']);
      const viaKey = await h.http.put(`/v1/members/${org.users.member.id}/roles`).set('Authorization', `Bearer ${key.secret}`).send({ roles: ['member'] });
      expect(viaKey.status).toBe(403);
      expect(viaKey.body.code).toBe('step_up_required');
      // Erasing someone's audit fields, and placing or releasing a legal hold: the same, by session or by key.
      const holdBody = { from: '2026-01-01T00:00:00Z', reason: 'step-up check' };
      const [held] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`INSERT INTO legal_holds (org_id, id, from_at, reason, created_by) VALUES ($1, $2, now(), 'placed earlier', $3) RETURNING id`, [org.id, newId(), org.users.owner.id]));
      for (const [what, send] of [
        // An invitation that grants more than a plain membership, as a role change.
        ['invite an owner', (auth: Record<string, string>) => h.http.post('/v1/invitations').set(auth).send({ email: 'new-owner@attacker.example', roles: ['owner'] })],
        ['erase', (auth: Record<string, string>) => h.http.post('/v1/audit/erasures').set(auth).send({ userId: org.users.member.id, reason: 'deletion request' })],
        ['hold', (auth: Record<string, string>) => h.http.post('/v1/legal-holds').set(auth).send(holdBody)],
        ['release', (auth: Record<string, string>) => h.http.post(`/v1/legal-holds/${held.id}/release`).set(auth)],
        // Taking a member's access away, or giving it back.
        ['suspend', (auth: Record<string, string>) => h.http.post(`/v1/members/${org.users.member.id}/suspend`).set(auth).send({ reason: 'step-up check' })],
      ] as const) {
        for (const auth of [{ Cookie: staleCookie }, { Authorization: `Bearer ${key.secret}` }]) {
          const res = await send(auth);
          expect({ what, status: res.status, code: res.body.code }).toEqual({ what, status: 403, code: 'step_up_required' });
        }
      }
      const untouched = await inOrg(h.ds, { orgId: org.id }, (em) =>
        em.query(
          `SELECT (SELECT count(*)::int FROM audit_erasures WHERE org_id = $1) AS erasures, (SELECT count(*)::int FROM legal_holds WHERE org_id = $1 AND (reason = 'step-up check' OR released_at IS NOT NULL)) AS holds,
                  (SELECT count(*)::int FROM invitations WHERE org_id = $1 AND email = 'new-owner@attacker.example') AS invitations`,
          [org.id],
        ),
      );
      expect(untouched).toEqual([{ erasures: 0, holds: 0, invitations: 0 }]);
      expect((await h.http.get(`/v1/members/${org.users.member.id}`).set('Cookie', staleCookie)).body.status).toBe('active');
      // A plain member's invitation is no role change: it goes through.
      expect((await h.http.post('/v1/invitations').set('Cookie', staleCookie).send({ email: 'new-member@acme.example', roles: ['member'] })).status).toBe(201);
      expect((await h.http.post('/v1/auth/step-up').set('Cookie', ownerT.cookie).send({ totpCode: await ownerT.code(1) })).status).toBe(204);
      expect((await h.http.post(`/v1/legal-holds/${held.id}/release`).set('Cookie', ownerT.cookie)).status).toBe(200);
      const allowed = await h.http.post('/v1/roles').set('Cookie', ownerT.cookie).send({ key: 'readers', name: 'Readers', permissions: [{ action: 'read', subject: 'Group' }] });
      expect(allowed.status).toBe(201);
      expect((await h.http.patch('/v1/org').set('Cookie', ownerT.cookie).send({ requireStepUp: false })).status).toBe(200);
    });
  });

  describe('RBAC rules that protect the org', () => {
    it('keeps at least one owner, and stops admins from granting what they do not hold', async () => {
      const admin = await login(h, org.users.admin.email);
      const toOwner = await h.http.put(`/v1/members/${org.users.member.id}/roles`).set('Cookie', admin).send({ roles: ['owner'] });
      expect(toOwner.status).toBe(403);
      const role = await h.http.post('/v1/roles').set('Cookie', owner).send({ key: 'org-editor', name: 'Org editor', permissions: [{ action: 'update', subject: 'Org' }] });
      expect(role.status).toBe(201);
      const escalate = await h.http.put(`/v1/members/${org.users.admin.id}/roles`).set('Cookie', admin).send({ roles: ['admin', 'custom:org-editor'] });
      expect(escalate.status).toBe(403);
      const solo = await seedOrg(h.ds, 'solo');
      const soloOwner = await login(h, solo.users.owner.email);
      const demote = await h.http.put(`/v1/members/${solo.users.owner.id}/roles`).set('Cookie', soloOwner).send({ roles: ['member'] });
      expect(demote.status).toBe(409);
    });

    it('stops whoever edits a role from taking out of it a permission they do not hold', async () => {
      const pausers = await h.http.post('/v1/roles').set('Cookie', owner).send({ key: 'pausers', name: 'Pausers', permissions: [{ action: 'pause_agents', subject: 'Org' }, { action: 'read', subject: 'Group' }] });
      const keepers = await h.http.post('/v1/roles').set('Cookie', owner).send({ key: 'role-keepers', name: 'Role keepers', permissions: [{ action: 'read', subject: 'Role' }, { action: 'update', subject: 'Role' }, { action: 'read', subject: 'Group' }] });
      expect([pausers.status, keepers.status]).toEqual([201, 201]);
      const u = await addUser(h.ds, org, 'member');
      expect((await h.http.put(`/v1/members/${u.id}/roles`).set('Cookie', owner).send({ roles: ['member', 'custom:role-keepers'] })).status).toBe(200);
      const keeper = await login(h, u.email);
      const stripped = await h.http.patch(`/v1/roles/${pausers.body.id}`).set('Cookie', keeper).send({ permissions: [{ action: 'read', subject: 'Group' }] });
      expect({ status: stripped.status, detail: stripped.body.detail }).toEqual({ status: 403, detail: expect.stringContaining('permissions you do not hold') });
      expect((await h.http.get(`/v1/roles/${pausers.body.id}`).set('Cookie', owner)).body.permissions).toContainEqual({ action: 'pause_agents', subject: 'Org' });
      // What they hold, they may take out.
      const own = await h.http.patch(`/v1/roles/${keepers.body.id}`).set('Cookie', keeper).send({ permissions: [{ action: 'read', subject: 'Role' }, { action: 'update', subject: 'Role' }] });
      expect(own.status).toBe(200);
    });

    it('lets a custom role do exactly what its rules say', async () => {
      const role = await h.http.post('/v1/roles').set('Cookie', owner).send({ key: 'group-keeper', name: 'Group keeper', permissions: [{ action: 'read', subject: 'Group' }, { action: 'create', subject: 'Group' }] });
      expect(role.status).toBe(201);
      const u = await addUser(h.ds, org, 'member');
      expect((await h.http.put(`/v1/members/${u.id}/roles`).set('Cookie', owner).send({ roles: ['member', 'custom:group-keeper'] })).status).toBe(200);
      const cookie = await login(h, u.email);
      expect((await h.http.post('/v1/groups').set('Cookie', cookie).send({ name: 'Finance' })).status).toBe(201);
      expect((await h.http.get('/v1/members').set('Cookie', cookie)).status).toBe(403);
      expect((await h.http.delete(`/v1/roles/${role.body.id}`).set('Cookie', owner)).status).toBe(409);
    });

    it('suspension ends sessions and refuses API keys until reactivated', async () => {
      const u = await addUser(h.ds, org, 'member');
      const cookie = await login(h, u.email);
      const key = await newApiKey(h, cookie);
      expect((await h.http.post(`/v1/members/${u.id}/suspend`).set('Cookie', owner).send({ reason: 'investigation' })).status).toBe(200);
      expect((await h.http.get('/v1/org').set('Cookie', cookie)).status).toBe(401);
      const viaKey = await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`);
      expect(viaKey.status).toBe(403);
      const signIn = await h.http.post('/v1/auth/login').send({ email: u.email, password: PASSWORD });
      expect(signIn.status).toBe(403);
      expect((await h.http.post(`/v1/members/${u.id}/reactivate`).set('Cookie', owner)).status).toBe(200);
      expect((await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`)).status).toBe(200);
    });

    it('two owners who each take the other\'s owner role at the same moment leave one owner: the second change counts again and is refused', async () => {
      for (let round = 0; round < 3; round++) {
        const o = await seedOrg(h.ds, `owners-race-${round}`);
        const second = await addUser(h.ds, o, 'owner', 'second');
        const [a, b] = [await login(h, o.users.owner.email), await login(h, second.email)];
        const results = await Promise.all([
          h.http.put(`/v1/members/${second.id}/roles`).set('Cookie', a).send({ roles: ['member'] }),
          h.http.put(`/v1/members/${o.users.owner.id}/roles`).set('Cookie', b).send({ roles: ['member'] }),
        ]);
        expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
        const [{ n }] = await inOrg(h.ds, { orgId: o.id }, (em) => em.query(`SELECT count(*)::int AS n FROM role_assignments WHERE org_id = $1 AND role = 'owner'`, [o.id]));
        expect(n).toBe(1);
      }
    });

    it('an owner suspended by an owner is reactivated by an owner only', async () => {
      const second = await addUser(h.ds, org, 'owner', 'second-owner');
      expect((await h.http.post(`/v1/members/${second.id}/suspend`).set('Cookie', owner).send({ reason: 'investigation' })).status).toBe(200);
      const admin = await login(h, org.users.admin.email);
      expect((await h.http.post(`/v1/members/${second.id}/reactivate`).set('Cookie', admin)).status).toBe(403);
      expect((await h.http.post(`/v1/members/${second.id}/reactivate`).set('Cookie', owner)).status).toBe(200);
    });
  });

  it('refuses a state-changing request that another site made with the session cookie (CSRF); the console\'s proxy and the API\'s own pages pass', async () => {
    const admin = await login(h, org.users.admin.email);
    const group = (headers: Record<string, string>) => h.http.post('/v1/groups').set('Cookie', admin).set(headers).send({ name: `csrf-${Object.values(headers).join('-') || 'none'}-${Date.now()}` });
    for (const headers of [{ Origin: 'https://evil.example' }, { Origin: 'null' }, { 'Sec-Fetch-Site': 'cross-site' }, { 'Sec-Fetch-Site': 'same-site', Origin: 'http://127.0.0.1:1' }]) {
      const res = await group(headers);
      expect({ headers, status: res.status, type: res.headers['content-type'] }).toEqual({ headers, status: 403, type: expect.stringMatching(/application\/problem\+json/) });
      expect(res.body.detail).toMatch(/another site is refused \(CSRF\)/);
    }
    const csrf = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT count(*)::int AS n FROM groups WHERE org_id = $1 AND name LIKE 'csrf-%'`, [org.id]));
    expect(csrf[0].n).toBe(0);
    // No browser headers (the console's proxy, a script), or the API's own origin: accepted; a read from anywhere too.
    expect((await group({})).status).toBe(201);
    expect((await group({ Host: 'steward.test', Origin: 'http://steward.test', 'Sec-Fetch-Site': 'same-origin' })).status).toBe(201);
    expect((await h.http.get('/v1/groups').set('Cookie', admin).set('Origin', 'https://evil.example')).status).toBe(200);
  });

  describe('API keys', () => {
    it('are prefixed, shown once, scoped, and revocable', async () => {
      const admin = await login(h, org.users.admin.email);
      const created = await h.http.post('/v1/api-keys').set('Cookie', admin).send({ name: 'cli', scopes: ['read:Member'] });
      expect(created.status).toBe(201);
      expect(created.body.secret).toMatch(/^stw_[A-Za-z0-9_-]{43}$/);
      expect(created.body.apiKey.hint).toBe(created.body.secret.slice(0, 12));
      const listed = await h.http.get(`/v1/api-keys/${created.body.apiKey.id}`).set('Cookie', admin);
      expect(JSON.stringify(listed.body)).not.toContain(created.body.secret);
      const bearer = { Authorization: `Bearer ${created.body.secret}` };
      expect((await h.http.get('/v1/members').set(bearer)).status).toBe(200);
      expect((await h.http.post('/v1/groups').set(bearer).send({ name: 'Nope' })).status).toBe(403);
      expect((await h.http.post('/v1/api-keys').set(bearer).send({ name: 'minted', scopes: ['*'] })).status).toBe(403);
      const whoami = await h.http.get('/v1/auth/session').set(bearer);
      expect(whoami.body).toMatchObject({ kind: 'api_key', permissions: ['read:Member'] });
      expect((await h.http.delete(`/v1/api-keys/${created.body.apiKey.id}`).set('Cookie', admin)).status).toBe(204);
      expect((await h.http.get('/v1/members').set(bearer)).status).toBe(401);
    });

    it("grants only what its scopes reach: a key scoped to invitations invites nobody as owner or admin, nor as anything beyond its scopes", async () => {
      const invite = await newApiKey(h, owner, ['create:Invitation', 'read:Member']);
      const bearer = { Authorization: `Bearer ${invite.secret}` };
      for (const roles of [['owner'], ['admin'], ['security']]) {
        const res = await h.http.post('/v1/invitations').set(bearer).send({ email: `esc-${roles[0]}-${Date.now()}@evil.example`, roles });
        expect({ roles, status: res.status, type: res.headers['content-type'] }).toEqual({ roles, status: 403, type: expect.stringMatching(/application\/problem\+json/) });
      }
      const none = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT count(*)::int AS n FROM invitations WHERE org_id = $1 AND email LIKE 'esc-%'`, [org.id]));
      expect(none[0].n).toBe(0);
      // The same owner, signed in, may.
      const asOwner = await h.http.post('/v1/invitations').set('Cookie', owner).send({ email: `ok-admin-${Date.now()}@acme.example`, roles: ['admin'] });
      expect(asOwner.status).toBe(201);
    });

    it("are listed for one member on request: an admin's own list holds only the admin's keys; a member may ask only for their own", async () => {
      const admin = await login(h, org.users.admin.email);
      const member = await login(h, org.users.member.email);
      const adminKey = await newApiKey(h, admin);
      const memberKey = await newApiKey(h, member);
      const ids = async (cookie: string, user?: string) => {
        const res = await h.http.get('/v1/api-keys').query({ limit: 200, ...(user ? { user } : {}) }).set('Cookie', cookie);
        expect(res.status).toBe(200);
        return (res.body.items as { id: string; userId: string }[]).map((k) => k.id);
      };
      expect(await ids(admin)).toEqual(expect.arrayContaining([adminKey.id, memberKey.id]));
      const adminsOwn = await ids(admin, org.users.admin.id);
      expect(adminsOwn).toContain(adminKey.id);
      expect(adminsOwn).not.toContain(memberKey.id);
      expect(await ids(admin, org.users.member.id)).toEqual([memberKey.id]);
      expect(await ids(member)).toEqual([memberKey.id]);
      expect(await ids(member, org.users.member.id)).toEqual([memberKey.id]);
      expect((await h.http.get('/v1/api-keys').query({ user: org.users.admin.id }).set('Cookie', member)).status).toBe(403);
    });

    it('cannot carry a permission its user lacks', async () => {
      const member = await login(h, org.users.member.email);
      const res = await h.http.post('/v1/api-keys').set('Cookie', member).send({ name: 'x', scopes: ['read:AuditEvent'] });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].message).toContain('read:AuditEvent');
    });

    it('stop working once expired', async () => {
      const key = await newApiKey(h, owner);
      await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [key.id]));
      const res = await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`);
      expect(res.status).toBe(401);
    });

    it('are stored as an HMAC under the pepper: the table alone opens nothing', async () => {
      const key = await newApiKey(h, owner);
      const [row] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query('SELECT key_hash, hint FROM api_keys WHERE id = $1', [key.id]));
      const stored: Buffer = row.key_hash;
      expect(stored.equals(createHash('sha256').update(key.secret).digest())).toBe(false);
      expect(stored.toString('hex')).not.toContain(Buffer.from(key.secret).toString('hex'));
      // The stored value presented as a key is refused.
      expect((await h.http.get('/v1/org').set('Authorization', `Bearer stw_${stored.toString('base64url')}`)).status).toBe(401);
      // The same database behind a server with another pepper refuses the real key.
      const other = await startHarness({ db: h.db, env: { STEWARD_TOKEN_PEPPER: 'a-different-pepper-0123456789abcdef0123456789' } });
      try {
        expect((await other.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`)).status).toBe(401);
      } finally {
        await other.close();
      }
      expect((await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`)).status).toBe(200);
    });
  });

  describe('account recovery', () => {
    const issue = (cookie: string, userId: string, body: Record<string, unknown> = {}) => h.http.post(`/v1/members/${userId}/recovery`).set('Cookie', cookie).send(body);
    const recover = (token: string, newPassword: string) => h.http.post('/v1/auth/recover').send({ token, newPassword });
    const signIn = (email: string, password: string, extra: Record<string, string> = {}) => h.http.post('/v1/auth/login').send({ email, password, ...extra });
    const events = (action: string, target: string) =>
      inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT canonical::jsonb AS e FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = $2 AND canonical::jsonb->'target'->>'id' = $3`, [org.id, action, target])) as Promise<{ e: { payload: Record<string, unknown>; actor: { id: string } } }[]>;

    it('an admin issues a one-time link; the member sets a new password with it, and what their account held in the org ends', async () => {
      const admin = await login(h, org.users.admin.email);
      const forgot = await addUser(h.ds, org, 'member', 'forgot');
      const oldSession = await login(h, forgot.email);
      const key = await newApiKey(h, oldSession);
      const issued = await issue(admin, forgot.id);
      expect(issued.status).toBe(201);
      expect(issued.body).toMatchObject({ token: expect.stringMatching(/^sta_[A-Za-z0-9_-]{43}$/), secondFactor: false });
      expect(Date.parse(issued.body.expiresAt) - Date.now()).toBeGreaterThan(23 * 3_600_000);
      // Too short a password changes nothing (and does not use the link up).
      const short = await recover(issued.body.token, 'short');
      expect(short.status).toBe(400);
      expect(short.headers['content-type']).toMatch(/application\/problem\+json/);
      expect((await recover(issued.body.token, 'my brand new passphrase')).status).toBe(204);
      expect((await signIn(forgot.email, PASSWORD)).status).toBe(401);
      expect((await signIn(forgot.email, 'my brand new passphrase')).status).toBe(200);
      expect((await h.http.get('/v1/auth/session').set('Cookie', oldSession)).status).toBe(401);
      expect((await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`)).status).toBe(401);
      // Once only.
      expect((await recover(issued.body.token, 'another passphrase again')).status).toBe(404);
      // Both ends are in the trail: who issued it, and its use (what ended); never the token.
      const [issuedEvent] = await events('member.recovery_issue', forgot.id);
      expect(issuedEvent!.e.actor.id).toBe(org.users.admin.id);
      const [used] = await events('auth.account_recover', forgot.id);
      expect(used!.e.payload).toMatchObject({ issuedBy: org.users.admin.id, secondFactorRemoved: false, sessionsEnded: 1, apiKeysRevoked: 1 });
      expect(h.logs()).not.toContain(issued.body.token);
    });

    it('is refused for oneself, with an API key, for an account of another org too, for an owner by an admin, and for a suspended member: nothing is issued', async () => {
      const admin = await login(h, org.users.admin.email);
      const adminKey = await newApiKey(h, admin, ['*']);
      const target = await addUser(h.ds, org, 'member', 'guarded');
      const self = await issue(admin, org.users.admin.id);
      expect(self.status).toBe(409);
      expect(self.body.detail).toMatch(/your own account/);
      const byKey = await h.http.post(`/v1/members/${target.id}/recovery`).set('Authorization', `Bearer ${adminKey.secret}`).send({});
      expect(byKey.status).toBe(403);
      expect(byKey.body.detail).toMatch(/console session/);
      expect((await issue(admin, org.users.owner.id)).status).toBe(403);
      // Also a member elsewhere: not this org's to take over.
      const other = await seedOrg(h.ds, `recover-${newId().slice(-6)}`);
      await inOrg(h.ds, { orgId: other.id, userId: target.id }, async (em) => {
        await em.insert(Membership, { id: newId(), orgId: other.id, userId: target.id, status: 'active', suspendedAt: null, suspendedReason: null });
        await em.insert(RoleAssignment, { id: newId(), orgId: other.id, userId: target.id, role: 'member', customRoleId: null });
      });
      const shared = await issue(admin, target.id);
      expect(shared.status).toBe(409);
      expect(shared.body.detail).toMatch(/other orgs/);
      const suspended = await addUser(h.ds, org, 'member', 'suspended-one');
      expect((await h.http.post(`/v1/members/${suspended.id}/suspend`).set('Cookie', owner).send({ reason: 'on leave' })).status).toBe(200);
      expect((await issue(admin, suspended.id)).status).toBe(409);
      // A member without an authenticator has none to remove.
      const plain = await addUser(h.ds, org, 'member', 'no-factor');
      expect((await issue(admin, plain.id, { secondFactor: true })).status).toBe(409);
      const pending = (await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT count(*)::int AS n FROM account_recoveries WHERE org_id = $1 AND user_id = ANY($2)`, [org.id, [org.users.admin.id, target.id, org.users.owner.id, suspended.id, plain.id]])))[0].n;
      expect(pending).toBe(0);
      // Nor a member who holds what the admin does not (security: legal holds, erasure): the admin could then act as them.
      const sec = await addUser(h.ds, org, 'security', `sec-${newId().slice(-6)}`);
      const higher = await issue(admin, sec.id);
      expect(higher.status).toBe(403);
      expect(higher.body.detail).toMatch(/permissions you do not have/);
      // An owner may recover an owner.
      const second = await addUser(h.ds, org, 'owner', 'recovered-owner');
      expect((await issue(owner, second.id)).status).toBe(201);
    });

    it('keeps the authenticator unless the link says to remove it', async () => {
      const admin = await login(h, org.users.admin.email);
      const keeps = await totpUser(ctx('member'));
      const keepsId = (await h.http.get('/v1/auth/session').set('Cookie', keeps.cookie)).body.user as { id: string; email: string };
      const lostPassword = await issue(admin, keepsId.id);
      expect((await recover(lostPassword.body.token, 'forgot it but kept my phone')).status).toBe(204);
      const noCode = await signIn(keepsId.email, 'forgot it but kept my phone');
      expect(noCode.status).toBe(401);
      expect(noCode.body.code).toBe('mfa_required');
      // Lost with the phone: the link removes it, and the password alone signs in (to enrol a new one).
      const lostPhone = await issue(admin, keepsId.id, { secondFactor: true });
      expect(lostPhone.status).toBe(201);
      expect((await recover(lostPhone.body.token, 'a new phone and a new passphrase')).status).toBe(204);
      const signedIn = await signIn(keepsId.email, 'a new phone and a new passphrase');
      expect(signedIn.status).toBe(200);
      expect(signedIn.body.mfa.enrolled).toBe(false);
    });

    it("the operator's command recovers what no org may (an account of several orgs): a one-line error for bad usage", async () => {
      const run = (...args: string[]) =>
        spawnSync(process.execPath, ['-r', join(__dirname, '../../../test/support/ts-child.cjs'), join(__dirname, '../src/cli/recover-account.ts'), ...args], {
          encoding: 'utf8',
          env: { PATH: process.env.PATH, NODE_ENV: 'test', DATABASE_URL: h.config.DATABASE_URL, STEWARD_TOKEN_PEPPER: h.config.STEWARD_TOKEN_PEPPER, STEWARD_MASTER_KEY: h.config.STEWARD_MASTER_KEY, STEWARD_AUDIT_SIGNING_KEY: h.config.STEWARD_AUDIT_SIGNING_KEY },
        });
      const usage = run();
      expect(usage.status).toBe(2);
      expect(usage.stderr.trim().split('\n')).toHaveLength(1);
      expect(usage.stderr).toMatch(/^steward-recover-account: give the email of the account \(usage: /);
      expect(run('x@y.example', '--force').status).toBe(2);
      const nobody = run('nobody-at-all@acme.example');
      expect(nobody.status).toBe(1);
      expect(nobody.stderr).toMatch(/no account has the email/);
      // An account that is a member of two orgs: no org's admin may recover it; the operator may.
      const shared = await addUser(h.ds, org, 'member', `shared-${newId().slice(-6)}`);
      const other = await seedOrg(h.ds, `operator-${newId().slice(-6)}`);
      await inOrg(h.ds, { orgId: other.id, userId: shared.id }, async (em) => {
        await em.insert(Membership, { id: newId(), orgId: other.id, userId: shared.id, status: 'active', suspendedAt: null, suspendedReason: null });
        await em.insert(RoleAssignment, { id: newId(), orgId: other.id, userId: shared.id, role: 'member', customRoleId: null });
      });
      const elsewhere = await login(h, shared.email, { org: other.slug });
      const issued = run(shared.email.toUpperCase());
      expect(issued.status).toBe(0);
      const token = issued.stdout.trim();
      expect(token).toMatch(/^sta_[A-Za-z0-9_-]{43}$/);
      expect(issued.stderr).toMatch(/valid until/);
      expect((await recover(token, 'the operator gave me this')).status).toBe(204);
      expect((await signIn(shared.email, 'the operator gave me this', { org: other.slug })).status).toBe(200);
      // Its use ends what the account held in every org, the other one included.
      expect((await h.http.get('/v1/auth/session').set('Cookie', elsewhere)).status).toBe(401);
      const [e] = await events('member.recovery_issue', shared.id);
      expect(e!.e.payload).toMatchObject({ operator: true, secondFactor: false });
      const [used] = await events('auth.account_recover', shared.id);
      expect(used!.e.payload).toMatchObject({ issuedBy: 'operator' });
    });

    it('one link at a time; a withdrawn link, or one whose issuer lost the right, does nothing', async () => {
      const admin = await addUser(h.ds, org, 'admin', 'issuer');
      const adminCookie = await login(h, admin.email);
      const target = await addUser(h.ds, org, 'member', 'relinked');
      const first = await issue(adminCookie, target.id);
      const second = await issue(adminCookie, target.id);
      expect((await recover(first.body.token, 'the first link passphrase')).status).toBe(404);
      expect((await h.http.delete(`/v1/members/${target.id}/recovery`).set('Cookie', adminCookie)).status).toBe(204);
      expect((await recover(second.body.token, 'the second link passphrase')).status).toBe(404);
      expect((await h.http.delete(`/v1/members/${target.id}/recovery`).set('Cookie', adminCookie)).status).toBe(404);
      const third = await issue(adminCookie, target.id);
      expect((await h.http.put(`/v1/members/${admin.id}/roles`).set('Cookie', owner).send({ roles: ['member'] })).status).toBe(200);
      const refused = await recover(third.body.token, 'the third link passphrase');
      expect(refused.status).toBe(403);
      expect((await signIn(target.email, PASSWORD)).status).toBe(200);
      // A link issued from a session that was stolen: the issuer's password change withdraws it.
      const admin2 = await addUser(h.ds, org, 'admin', `issuer2-${newId().slice(-6)}`);
      const admin2Cookie = await login(h, admin2.email);
      const planted = await issue(admin2Cookie, target.id);
      expect(planted.status).toBe(201);
      expect((await h.http.post('/v1/auth/password').set('Cookie', admin2Cookie).send({ currentPassword: PASSWORD, newPassword: 'the admin took it back' })).status).toBeLessThan(300);
      expect((await recover(planted.body.token, 'the planted link passphrase')).status).toBe(404);
    });
  });

  describe('logs', () => {
    it('never contain a password, a session token or an API key', async () => {
      const key = await newApiKey(h, owner);
      const password = 'a-very-distinctive-password-123';
      await h.http.post('/v1/auth/login').send({ email: org.users.member.email, password });
      await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}`);
      await h.http.get('/v1/org').set('Authorization', `Bearer ${key.secret}x`);
      await h.http.post('/v1/groups').set('Authorization', `Bearer ${key.secret}`).send({ name: `leak ${key.secret}` });
      await h.http.get(`/v1/nope/${key.secret}`).set('Cookie', owner);
      const sessionToken = owner.split('=')[1];
      const logs = h.logs();
      expect(logs.length).toBeGreaterThan(1000);
      expect(logs).toContain('/v1/auth/login');
      for (const secret of [key.secret, password, sessionToken]) expect(logs).not.toContain(secret);
      expect(logs).toContain('[REDACTED]');
    });
  });

  describe('first-run setup', () => {
    it('creates the first org and owner once, with the one-time token', async () => {
      const fresh = await startHarness();
      try {
        const { SetupService } = await import('../src/setup/setup.service');
        const setup = fresh.app.get(SetupService);
        expect((await fresh.http.get('/v1/setup')).body).toEqual({ completed: false });
        // Each API process that starts before setup prints its own token (two replicas, a restart): all stay valid.
        const token = await setup.issueToken();
        expect(token).toMatch(/^setup_/);
        const other = await setup.issueToken();
        expect(other).toMatch(/^setup_/);
        expect(other).not.toBe(token);
        const body = { setupToken: token, org: { name: 'Acme', slug: 'acme' }, owner: { email: 'Olive@Acme.example', name: 'Olive', password: PASSWORD } };
        expect((await fresh.http.post('/v1/setup').send({ ...body, setupToken: 'setup_wrong-token-value' })).status).toBe(403);
        const done = await fresh.http.post('/v1/setup').send(body);
        expect(done.status).toBe(201);
        expect((await fresh.http.post('/v1/setup').send(body)).status).toBe(403);
        // Done once: the other token (and any later one) is worth nothing now.
        expect((await fresh.http.post('/v1/setup').send({ ...body, setupToken: other, org: { name: 'Other', slug: 'other' } })).status).toBe(403);
        expect(await setup.issueToken()).toBeUndefined();
        expect((await fresh.http.get('/v1/setup')).body).toEqual({ completed: true });
        const cookie = await login(fresh, 'olive@acme.example');
        const me = await fresh.http.get('/v1/auth/session').set('Cookie', cookie);
        expect(me.body).toMatchObject({ roles: ['owner'], org: { slug: 'acme' } });
      } finally {
        await fresh.close();
      }
    });
  });

  it('limits wrong passwords per account, from any address: 20 within 15 minutes, then no password (the right one neither) until the window ends; a right one resets the count', async () => {
    const u = await addUser(h.ds, org, 'member', 'guessed');
    const signIn = (password: string) => h.http.post('/v1/auth/login').send({ email: u.email, password });
    for (let i = 0; i < 19; i++) expect((await signIn(`guess ${i}`)).status).toBe(401);
    expect((await signIn(PASSWORD)).status).toBe(200); // resets the count
    for (let i = 0; i < 20; i++) expect((await signIn(`guess again ${i}`)).status).toBe(401);
    const locked = await signIn(PASSWORD);
    expect({ status: locked.status, code: locked.body.code }).toEqual({ status: 429, code: 'rate_limited' });
    expect(locked.body.detail).toMatch(/^20 wrong passwords were entered for this account; it takes no password for \d+ more minute\(s\)/);
    const reasons = (await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT canonical::jsonb->'payload'->>'reason' AS reason FROM audit_events WHERE org_id = $1 AND action = 'auth.login' AND outcome = 'failure' AND target_id = $2`, [org.id, u.id]))).map((r: { reason: string }) => r.reason);
    expect(reasons.filter((r: string) => r === 'password')).toHaveLength(39);
    expect(reasons.filter((r: string) => r === 'password_locked')).toHaveLength(1);
    // Another account is not held back, and once the window has passed the right password works again.
    expect((await h.http.post('/v1/auth/login').send({ email: org.users.auditor.email, password: PASSWORD })).status).toBe(200);
    await inOrg(h.ds, { orgId: org.id, userId: u.id }, (em) => em.query(`UPDATE users SET password_failures_since = now() - interval '16 minutes' WHERE id = $1`, [u.id]));
    expect((await signIn(PASSWORD)).status).toBe(200);
  }, 120_000);

  it('limits the rate of sign-in attempts per address', async () => {
    const limited = await startHarness({ db: h.db, env: { AUTH_RATE_LIMIT_PER_MINUTE: '3' } });
    try {
      // The limit counts in fixed one-minute windows: start well inside one, so that the six
      // attempts (slow password checks on a busy machine) do not straddle two.
      const intoMinute = Date.now() % 60_000;
      if (intoMinute > 30_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 50));
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await limited.http.post('/v1/auth/login').send({ email: 'x@acme.example', password: 'wrong password' })).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      const res = await limited.http.post('/v1/auth/login').send({ email: 'x@acme.example', password: 'wrong password' });
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
      expect(res.body.code).toBe('rate_limited');
      // The same limit on every route where credentials are issued or guessed, those with an id in their path too.
      expect((await limited.http.post(`/v1/members/${newId()}/recovery`).send({})).status).toBe(429);
    } finally {
      await limited.close();
    }
  }, 120_000);
});
