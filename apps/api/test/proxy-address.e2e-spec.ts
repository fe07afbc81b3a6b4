import { inOrg } from '@steward/db';
import { type Harness, type SeededOrg, seedOrg, startHarness } from './support/harness';

/** Behind proxies the API believes (TRUST_PROXY), the caller's address is what they name: recorded only when it is one. */
describe('the caller address a believed proxy names', () => {
  let h: Harness;
  let org: SeededOrg;

  beforeAll(async () => {
    // Every hop believed: the leftmost X-Forwarded-For entry is the caller (as behind one proxy that overwrites the header).
    h = await startHarness({ env: { TRUST_PROXY: 'true' } });
    org = await seedOrg(h.ds, 'proxied');
  });
  afterAll(async () => {
    await h?.close();
  });

  const failedLogin = async (forwardedFor: string) => {
    const res = await h.http.post('/v1/auth/login').set('X-Forwarded-For', forwardedFor).send({ email: org.users.member.email, password: 'not the password' });
    expect(res.status).toBe(401);
    const rows = await inOrg(h.ds, { orgId: org.id }, (em) =>
      em.query(
      `SELECT canonical::jsonb->>'ip' AS ip FROM audit_events WHERE org_id = $1 AND action = 'auth.login' AND outcome = 'failure' AND canonical::jsonb->>'req' = $2`,
      [org.id, res.headers['x-request-id']],
      ),
    );
    return rows as { ip: string | null }[];
  };

  it('records an address as named, and text that is no address as no address at all', async () => {
    expect(await failedLogin('203.0.113.5, 10.0.0.1')).toEqual([{ ip: '203.0.113.5' }]);
    expect(await failedLogin('2001:db8::7')).toEqual([{ ip: '2001:db8::7' }]);
    // Some proxies write the port too: the address is kept without it.
    expect(await failedLogin('203.0.113.6:4711')).toEqual([{ ip: '203.0.113.6' }]);
    expect(await failedLogin('[2001:db8::8]:443')).toEqual([{ ip: '2001:db8::8' }]);
    expect(await failedLogin('=HYPERLINK("https://evil.example"), 10.0.0.1')).toEqual([{ ip: null }]);
    expect(await failedLogin('not-an-address')).toEqual([{ ip: null }]);
  });
});
