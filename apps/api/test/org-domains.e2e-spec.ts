import type { TxtResolver } from '../src/core/tokens';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Verified mail domains. An org may list any domain as its own (its own policy tells its mail from
 * outsiders' by them); acting on other people at a domain (SCIM and SSO adding them, sign-ins by
 * email sent to the org's SSO) takes proof in the domain's DNS. No DNS here: TXT answers come from
 * this table, as the domain's holder would publish them.
 */
const TXT = new Map<string, string[][]>();
let dnsDown = false;
const txtResolver: TxtResolver = async (name) => {
  if (dnsDown) throw Object.assign(new Error(`queryTxt ESERVFAIL ${name}`), { code: 'ESERVFAIL' });
  const records = TXT.get(name);
  if (!records) throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return records;
};

describe('org mail domains: verified by DNS, each held by one org', () => {
  let h: Harness;
  let acme: SeededOrg;
  let globex: SeededOrg;
  const cookie = {} as Record<'acme' | 'globex' | 'acmeMember', string>;
  const scimToken = {} as Record<'acme' | 'globex', string>;

  const createScimUser = (org: 'acme' | 'globex', email: string) =>
    h.http.post('/scim/v2/Users').set('Authorization', `Bearer ${scimToken[org]}`).set('Content-Type', 'application/scim+json').send(JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: email, active: true }));
  const domains = async (who: 'acme' | 'globex') => (await h.http.get('/v1/org/domains').set('Cookie', cookie[who])).body.items as { domain: string; verified: boolean; record: { name: string; value: string } }[];
  const verify = (who: 'acme' | 'globex' | 'acmeMember', domain: string) => h.http.post('/v1/org/domains/verify').set('Cookie', cookie[who]).send({ domain });

  beforeAll(async () => {
    h = await startHarness({ txtResolver });
    acme = await seedOrg(h.ds, 'acme');
    globex = await seedOrg(h.ds, 'globex');
    cookie.acme = await login(h, acme.users.owner.email);
    cookie.globex = await login(h, globex.users.owner.email);
    cookie.acmeMember = await login(h, acme.users.member.email);
    for (const [org, c] of [['acme', cookie.acme], ['globex', cookie.globex]] as const) {
      const created = await h.http.post('/v1/org/scim-tokens').set('Cookie', c).send({ name: 'IdP' });
      expect(created.status).toBe(201);
      scimToken[org] = created.body.secret;
    }
  });
  afterAll(() => h?.close());

  it('a listed domain is unverified until its DNS carries the org\'s record; then SCIM adds people there', async () => {
    expect((await h.http.patch('/v1/org').set('Cookie', cookie.acme).send({ domains: ['acme.example', 'acme-labs.example'] })).status).toBe(200);
    const listed = await domains('acme');
    expect(listed.map((d) => [d.domain, d.verified])).toEqual([['acme.example', true], ['acme-labs.example', false]]);
    const labs = listed[1]!;
    expect(labs.record).toEqual({ name: '_steward-challenge.acme-labs.example', value: expect.stringMatching(/^steward-domain-verification=[A-Za-z0-9_-]{32}$/) });

    // Not yet published: refused, and SCIM adds nobody at it.
    const early = await verify('acme', 'acme-labs.example');
    expect({ status: early.status, code: early.body.code, type: early.headers['content-type'] }).toEqual({ status: 409, code: 'domain_unverified', type: expect.stringMatching(/application\/problem\+json/) });
    expect(early.body.detail).toContain(labs.record.value);
    const refused = await createScimUser('acme', 'dana@acme-labs.example');
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toMatch(/not a verified domain/);

    // A record for another org, or a near miss, proves nothing.
    TXT.set(labs.record.name, [['v=spf1 -all'], [`${labs.record.value}x`]]);
    expect((await verify('acme', 'acme-labs.example')).status).toBe(409);
    // A member may not verify; the owner may, once the record is there (long records come in chunks).
    TXT.set(labs.record.name, [['v=spf1 -all'], [labs.record.value.slice(0, 20), labs.record.value.slice(20)]]);
    expect((await verify('acmeMember', 'acme-labs.example')).status).toBe(403);
    const ok = await verify('acme', 'acme-labs.example');
    expect(ok.status).toBe(200);
    expect(ok.body.items.map((d: { domain: string; verified: boolean }) => [d.domain, d.verified])).toEqual([['acme.example', true], ['acme-labs.example', true]]);
    expect((await createScimUser('acme', 'dana@acme-labs.example')).status).toBe(201);
    const audit = await h.http.get('/v1/audit-events').query({ action: 'org.domain_verify' }).set('Cookie', cookie.acme);
    expect(audit.body.items.map((e: { payload: { domain: string } }) => e.payload.domain)).toEqual(['acme-labs.example']);
  });

  it("another org lists the same domain: its record differs, it cannot verify it, and its SCIM adds nobody there (nor learns who has an account)", async () => {
    expect((await h.http.patch('/v1/org').set('Cookie', cookie.globex).send({ domains: ['globex.example', 'acme-labs.example'] })).status).toBe(200);
    const theirs = (await domains('globex')).find((d) => d.domain === 'acme-labs.example')!;
    const ours = (await domains('acme')).find((d) => d.domain === 'acme-labs.example')!;
    expect(theirs.verified).toBe(false);
    expect(theirs.record.value).not.toBe(ours.record.value);
    // Only acme's record is published: globex proves nothing.
    expect((await verify('globex', 'acme-labs.example')).body.code).toBe('domain_unverified');
    // Even were globex's record published too (the domain changed hands), the first proof holds.
    TXT.set(theirs.record.name, [[ours.record.value], [theirs.record.value]]);
    const taken = await verify('globex', 'acme-labs.example');
    expect({ status: taken.status, code: taken.body.code }).toEqual({ status: 409, code: 'conflict' });
    expect(taken.body.detail).toMatch(/verified by another org/);
    for (const email of ['dana@acme-labs.example', 'ceo@acme-labs.example']) {
      const res = await createScimUser('globex', email);
      expect({ email, status: res.status, detail: res.body.detail }).toEqual({ email, status: 400, detail: expect.stringMatching(/not a verified domain/) });
    }
    // An address that is not listed at all, and DNS trouble, are told apart from a missing record.
    expect((await verify('globex', 'unlisted.example')).status).toBe(400);
    dnsDown = true;
    try {
      expect((await verify('globex', 'acme-labs.example')).status).toBe(503);
      // A domain verified already is verified without asking DNS again.
      expect((await verify('acme', 'acme.example')).status).toBe(200);
    } finally {
      dnsDown = false;
    }
  });

  it('a domain dropped from the list is no longer verified: listed again, it needs proof again', async () => {
    expect((await h.http.patch('/v1/org').set('Cookie', cookie.acme).send({ domains: ['acme.example'] })).status).toBe(200);
    expect((await createScimUser('acme', 'erin@acme-labs.example')).status).toBe(400);
    TXT.clear();
    expect((await h.http.patch('/v1/org').set('Cookie', cookie.acme).send({ domains: ['acme.example', 'acme-labs.example'] })).status).toBe(200);
    expect((await domains('acme')).map((d) => [d.domain, d.verified])).toEqual([['acme.example', true], ['acme-labs.example', false]]);
  });
});
