import type { EgressResolver } from '@steward/common';
import { type FakeMcp, startFakeMcp } from './support/fakes';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/** Names resolve through this table (no DNS here). */
const DNS: Record<string, { address: string; family: 4 | 6 }[]> = {
  'tenant.mcp.test': [{ address: '127.0.0.1', family: 4 }],
  'api-host.test': [{ address: '127.0.0.2', family: 4 }],
  'mapped.test': [{ address: '::ffff:127.0.0.2', family: 6 }],
};
const resolver: EgressResolver = async (host) => {
  const answer = DNS[host];
  if (!answer) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return answer;
};

/**
 * The operator's ceiling on orgs' allowlists (STEWARD_EGRESS_ORG_RANGES). Here the operator lets
 * orgs open 127.0.0.1 only (where the tenant's server listens); 127.0.0.2 stands for the
 * operator's own network (the API's database, its cache, other tenants' servers).
 */
describe("egress: an org's allowlist opens only what the operator's ranges allow", () => {
  let h: Harness;
  let org: SeededOrg;
  let admin: string;
  let mcp: FakeMcp;

  beforeAll(async () => {
    h = await startHarness({ resolver, env: { STEWARD_EGRESS_ORG_RANGES: '127.0.0.1/32', STEWARD_EGRESS_ALLOW_HOSTS: '' } });
    org = await seedOrg(h.ds, 'ceiling');
    admin = await login(h, org.users.admin.email);
    mcp = await startFakeMcp([{ name: 'lookup_company', description: 'Look up a company profile by ticker.' }], []);
  });
  afterAll(async () => {
    await mcp?.close();
    await h?.close();
  });

  it('shows the ceiling, and refuses an address written outside it without changing the allowlist', async () => {
    expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', admin).send({ hosts: ['tenant.mcp.test'] })).status).toBe(200);
    for (const host of ['127.0.0.2', '10.1.2.3', '::1', '[::ffff:127.0.0.2]']) {
      const res = await h.http.put('/v1/egress/allow-hosts').set('Cookie', admin).send({ hosts: ['tenant.mcp.test', host] });
      expect({ host, status: res.status, type: res.headers['content-type'] }).toEqual({ host, status: 400, type: expect.stringMatching(/application\/problem\+json/) });
      expect(res.body.errors).toEqual([{ path: 'hosts.1', message: expect.stringContaining('STEWARD_EGRESS_ORG_RANGES: 127.0.0.1/32') }]);
    }
    const now = await h.http.get('/v1/egress/allow-hosts').set('Cookie', admin);
    expect(now.body).toEqual({ hosts: ['tenant.mcp.test'], operatorHosts: [], orgRanges: ['127.0.0.1/32'] });
    // Inside the ceiling, and public addresses (which need no allowlist) are taken as written.
    expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', admin).send({ hosts: ['tenant.mcp.test', '127.0.0.1', '93.184.216.34'] })).status).toBe(200);
  });

  it("a host on the org's allowlist reaches a server inside the ceiling, and nothing outside it however its name resolves", async () => {
    expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', admin).send({ hosts: ['tenant.mcp.test', 'api-host.test', 'mapped.test'] })).status).toBe(200);
    const inside = await h.http.post('/v1/connectors').set('Cookie', admin).send({ name: 'Tenant server', url: `http://tenant.mcp.test:${mcp.port}/mcp` });
    expect(inside.status).toBe(201);
    for (const host of ['api-host.test', 'mapped.test']) {
      const res = await h.http.post('/v1/connectors').set('Cookie', admin).send({ name: `Outside ${host}`, url: `http://${host}:${mcp.port}/mcp` });
      expect({ host, status: res.status, code: res.body.code }).toEqual({ host, status: 400, code: 'egress_refused' });
      expect(res.body.detail).toContain('STEWARD_EGRESS_ORG_RANGES');
    }
    expect((await h.http.get('/v1/connectors').set('Cookie', admin)).body.items.map((c: { name: string }) => c.name)).toEqual(['Tenant server']);
  });
});
