import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  assertEgressAllowed,
  classifyAddress,
  EgressRefusedError,
  guardedFetch,
  guardedLookup,
  inEgressRanges,
  isHostAllowlisted,
  orgEgressOptions,
  parseEgressRange,
  type EgressResolver,
  type ResolvedAddress,
} from './egress';

const resolverOf =
  (table: Record<string, string[]>): EgressResolver =>
  async (host) => {
    const list = table[host];
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.254', 'shared'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.10', 'documentation'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:0:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:0a00:0001::', 'private'],
    ['[::1]', 'loopback'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['100.128.0.1', 'public'],
    ['2606:4700::1111', 'public'],
    ['::ffff:8.8.8.8', 'public'],
    ['example.com', 'invalid'],
  ])('%s is %s', (ip, kind) => {
    expect(classifyAddress(ip)).toBe(kind);
  });
});

describe('assertEgressAllowed', () => {
  const resolver = resolverOf({
    'public.example': ['93.184.216.34'],
    'internal.example': ['10.0.0.7'],
    'meta.example': ['169.254.169.254'],
    'mixed.example': ['93.184.216.34', '192.168.0.10'],
    'v6local.example': ['::1'],
    'mapped.example': ['::ffff:127.0.0.1'],
  });

  it.each([
    ['http://127.0.0.1/', 'loopback'],
    ['http://127.1/', 'loopback'],
    ['http://2130706433/', 'loopback'],
    ['http://0x7f000001/', 'loopback'],
    ['http://10.0.0.1:8080/x', 'private'],
    ['http://169.254.169.254/latest/meta-data/', 'link-local'],
    ['http://[::1]:3000/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://[::ffff:a9fe:a9fe]/', 'link-local'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://[fd00::1]/', 'unique-local'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://internal.example/', 'private'],
    ['http://meta.example/', 'link-local'],
    ['http://mixed.example/', 'private'],
    ['http://v6local.example/', 'loopback'],
    ['http://mapped.example/', 'loopback'],
  ])('refuses %s (%s)', async (url, kind) => {
    const err = await assertEgressAllowed(url, { resolver }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressRefusedError);
    expect((err as EgressRefusedError).reason).toBe('address');
    expect((err as EgressRefusedError).message).toContain(kind);
  });

  it.each([
    ['file:///etc/passwd', 'protocol'],
    ['gopher://public.example/', 'protocol'],
    ['not a url', 'bad_url'],
    ['http://user:pw@public.example/', 'credentials_in_url'],
    ['http://nowhere.example/', 'dns'],
  ])('refuses %s (%s)', async (url, reason) => {
    await expect(assertEgressAllowed(url, { resolver })).rejects.toMatchObject({ reason });
  });

  it('allows a public host and returns the checked addresses', async () => {
    const checked = await assertEgressAllowed('https://public.example/a?b=1', { resolver });
    expect(checked.addresses).toEqual([{ address: '93.184.216.34', family: 4 }]);
    expect(checked.allowlisted).toBe(false);
  });

  it('allows a non-public host only when an admin allowlisted it', async () => {
    await expect(assertEgressAllowed('http://internal.example/', { resolver, allowHosts: ['other.example'] })).rejects.toThrow(EgressRefusedError);
    const checked = await assertEgressAllowed('http://internal.example/', { resolver, allowHosts: ['internal.example'] });
    expect(checked.allowlisted).toBe(true);
    await expect(assertEgressAllowed('http://127.0.0.1:9/', { allowHosts: ['127.0.0.1'] })).resolves.toMatchObject({ allowlisted: true });
    await expect(assertEgressAllowed('http://[::1]:9/', { allowHosts: ['0:0:0:0:0:0:0:1'] })).resolves.toMatchObject({ allowlisted: true });
  });

  it('never opens link-local or cloud metadata addresses, allowlisted or not', async () => {
    const meta = resolverOf({
      'meta.corp.example': ['169.254.169.254'], 'imds6.corp.example': ['fd00:ec2::254'], 'ali.corp.example': ['100.100.100.200'], 'mixed.corp.example': ['10.0.0.8', 'fe80::1'], 'wiki.corp.example': ['10.0.0.9'],
      // The same services written inside IPv6 addresses (mapped, NAT64), and Azure's WireServer.
      'ali6.corp.example': ['::ffff:100.100.100.200'], 'ali64.corp.example': ['64:ff9b::6464:64c8'], 'azure.corp.example': ['168.63.129.16'],
    });
    for (const url of ['http://meta.corp.example/latest/meta-data/', 'http://imds6.corp.example/', 'http://ali.corp.example/', 'http://mixed.corp.example/', 'http://169.254.169.254/', 'http://[fe80::1]/', 'http://[fd00:ec2::254]/', 'http://ali6.corp.example/', 'http://ali64.corp.example/', 'http://azure.corp.example/', 'http://168.63.129.16/']) {
      await expect(assertEgressAllowed(url, { resolver: meta, allowHosts: ['*.corp.example', '169.254.169.254', 'fe80::1', 'fd00:ec2::254'] })).rejects.toMatchObject({ reason: 'address', message: expect.stringContaining('no allowlist opens') });
    }
    // Other private addresses stay open to an allowlisted host (an internal MCP server, a SIEM).
    await expect(assertEgressAllowed('http://wiki.corp.example/', { resolver: meta, allowHosts: ['*.corp.example'] })).resolves.toMatchObject({ allowlisted: true });
    await expect(assertEgressAllowed('http://[fd00::5]/', { allowHosts: ['fd00::5'] })).resolves.toMatchObject({ allowlisted: true });
    // The local-use NAT64 prefix may carry an IPv4 address anywhere: not public.
    expect(classifyAddress('64:ff9b:1:a9fe:a9fe::')).toBe('reserved');
  });

  it('matches wildcard allowlist entries on subdomains only', () => {
    expect(isHostAllowlisted('a.corp.example', ['*.corp.example'])).toBe(true);
    expect(isHostAllowlisted('A.Corp.Example.', ['*.corp.example'])).toBe(true);
    expect(isHostAllowlisted('corp.example', ['*.corp.example'])).toBe(false);
    expect(isHostAllowlisted('evilcorp.example', ['*.corp.example'])).toBe(false);
  });
});

describe("an org's allowlist under the operator's ceiling (orgAllowHosts, orgRanges)", () => {
  const resolver = resolverOf({
    'tenant.corp.test': ['10.20.1.5'],
    'ops.corp.test': ['10.30.0.9'],
    'self.corp.test': ['127.0.0.1'],
    'mapped.corp.test': ['::ffff:10.30.0.9'],
    'v6.corp.test': ['fd12:3456::7'],
    'meta.corp.test': ['169.254.169.254'],
    'public.corp.test': ['93.184.216.34'],
  });
  const org = { orgAllowHosts: ['*.corp.test', '10.30.0.9'], orgRanges: ['10.20.0.0/16', 'fd12:3456::/32'], resolver };

  it('opens addresses inside the ranges only, however they are written', async () => {
    await expect(assertEgressAllowed('https://tenant.corp.test/mcp', org)).resolves.toMatchObject({ allowlisted: true, addresses: [{ address: '10.20.1.5' }] });
    await expect(assertEgressAllowed('https://v6.corp.test/mcp', org)).resolves.toMatchObject({ allowlisted: true });
    for (const url of ['https://ops.corp.test/', 'https://self.corp.test/', 'https://mapped.corp.test/', 'https://10.30.0.9/']) {
      const err = await assertEgressAllowed(url, org).catch((e: unknown) => e);
      expect({ url, err: err instanceof EgressRefusedError ? err.message : err }).toEqual({ url, err: expect.stringContaining('STEWARD_EGRESS_ORG_RANGES') });
    }
    // Public addresses need no allowlist; metadata stays shut whatever the ranges say.
    await expect(assertEgressAllowed('https://public.corp.test/', org)).resolves.toMatchObject({ allowlisted: true });
    await expect(assertEgressAllowed('https://meta.corp.test/', { ...org, orgRanges: ['0.0.0.0/0'] })).rejects.toThrow(/link-local or cloud metadata/);
  });

  it('with no ranges an org opens nothing; the operator\'s own allowlist is not limited by them', async () => {
    await expect(assertEgressAllowed('https://tenant.corp.test/', { ...org, orgRanges: [] })).rejects.toThrow(/STEWARD_EGRESS_ORG_RANGES/);
    await expect(assertEgressAllowed('https://ops.corp.test/', { ...org, allowHosts: ['ops.corp.test'] })).resolves.toMatchObject({ allowlisted: true });
    await expect(assertEgressAllowed('https://self.corp.test/', orgEgressOptions({ STEWARD_EGRESS_ALLOW_HOSTS: ['self.corp.test'], STEWARD_EGRESS_ORG_RANGES: [] }, ['*.corp.test'], { resolver }))).resolves.toMatchObject({ allowlisted: true });
    await expect(assertEgressAllowed('https://tenant.corp.test/', orgEgressOptions({ STEWARD_EGRESS_ALLOW_HOSTS: [], STEWARD_EGRESS_ORG_RANGES: [] }, ['*.corp.test'], { resolver }))).rejects.toThrow(/STEWARD_EGRESS_ORG_RANGES/);
  });

  it('reads ranges and single addresses, and refuses anything else', () => {
    expect(parseEgressRange('10.20.0.0/16')).toEqual({ network: '10.20.0.0', prefix: 16, family: 'ipv4' });
    expect(parseEgressRange('fd12::7')).toEqual({ network: 'fd12::7', prefix: 128, family: 'ipv6' });
    for (const bad of ['10.20.0.0/33', '10.20.0.0/', '10.20.0.0/8/8', 'corp.test', '10.20.0.0/-1', 'fd12::/129', '']) expect({ bad, parsed: parseEgressRange(bad) }).toEqual({ bad, parsed: null });
    expect(inEgressRanges('10.20.255.255', ['10.20.0.0/16'])).toBe(true);
    expect(inEgressRanges('10.21.0.0', ['10.20.0.0/16'])).toBe(false);
    expect(inEgressRanges('64:ff9b::a14:101', ['10.20.0.0/16'])).toBe(true);
    // Ranges written in IPv6 match as written (::1 is not the IPv4 0.0.0.1).
    expect(inEgressRanges('::1', ['::1'])).toBe(true);
    expect(inEgressRanges('64:ff9b::a14:101', ['64:ff9b::/96'])).toBe(true);
    expect(inEgressRanges('::1', ['0.0.0.0/8'])).toBe(false);
  });
});

describe('guardedLookup (agents: checked at connect time)', () => {
  const call = (lookup: ReturnType<typeof guardedLookup>, host: string) =>
    new Promise<ResolvedAddress[]>((resolve, reject) =>
      (lookup as unknown as (h: string, o: object, cb: (e: Error | null, a: ResolvedAddress[]) => void) => void)(host, { all: true }, (err, addrs) =>
        err ? reject(err) : resolve(addrs),
      ),
    );

  it('refuses a rebinding answer (first public, then private)', async () => {
    let calls = 0;
    const resolver: EgressResolver = async () => [{ address: calls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    const lookup = guardedLookup({ resolver });
    await expect(call(lookup, 'rebind.example')).resolves.toEqual([{ address: '93.184.216.34', family: 4 }]);
    await expect(call(lookup, 'rebind.example')).rejects.toThrow(/loopback/);
  });
});

describe('guardedFetch', () => {
  let server: http.Server;
  let port: number;
  let hits: string[];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits.push(`${req.method} ${req.url} ${req.headers.host}`);
      if (req.url === '/redirect-private') {
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
        res.end();
        return;
      }
      if (req.url === '/redirect-local') {
        res.writeHead(307, { location: `/echo` });
        res.end();
        return;
      }
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, body }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  beforeEach(() => (hits = []));
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('refuses loopback unless allowlisted', async () => {
    await expect(guardedFetch()(`http://127.0.0.1:${port}/echo`)).rejects.toThrow(EgressRefusedError);
    expect(hits).toEqual([]);
    const res = await guardedFetch({ allowHosts: ['127.0.0.1'] })(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: 'hi' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ method: 'POST', body: 'hi' });
  });

  it('refuses a host name resolving to a private address', async () => {
    const fetch = guardedFetch({ resolver: resolverOf({ 'fake.example': ['127.0.0.1'] }) });
    await expect(fetch(`http://fake.example:${port}/echo`)).rejects.toThrow(/loopback/);
    expect(hits).toEqual([]);
  });

  it('reaches an allowlisted host name at the address it checked, with the right Host header', async () => {
    const fetch = guardedFetch({ resolver: resolverOf({ 'fake.example': ['127.0.0.1'] }), allowHosts: ['fake.example'] });
    const res = await fetch(`http://fake.example:${port}/echo`);
    expect(res.status).toBe(200);
    expect(hits).toEqual([`GET /echo fake.example:${port}`]);
  });

  it('connects to the address it checked: a second, rebinding DNS answer is never used', async () => {
    let calls = 0;
    // 192.0.2.0/24 is refused itself, so use a public address nobody listens on here
    const resolver: EgressResolver = async () => [{ address: calls++ === 0 ? '203.0.114.1' : '127.0.0.1', family: 4 }];
    const fetch = guardedFetch({ resolver, timeoutMs: 500 });
    await expect(fetch(`http://rebind.example:${port}/echo`)).rejects.toThrow();
    expect(calls).toBe(1);
    expect(hits).toEqual([]);
  });

  it('keepAlive: reuses a connection only for the same checked addresses, and closes them on close()', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const onConnection = (socket: import('node:net').Socket) => sockets.add(socket);
    server.on('connection', onConnection);
    try {
      let answer = '127.0.0.1';
      const fetch = guardedFetch({ resolver: async () => [{ address: answer, family: 4 }], allowHosts: ['fake.example'], keepAlive: true, timeoutMs: 2000 });
      for (const body of ['a', 'b', 'c']) expect(await (await fetch(`http://fake.example:${port}/echo`, { method: 'POST', body })).json()).toEqual({ method: 'POST', body });
      expect(sockets.size).toBe(1);
      // A new DNS answer is never sent down the kept connection: it connects to the new address (nobody listens on 127.0.0.2 here).
      answer = '127.0.0.2';
      await expect(fetch(`http://fake.example:${port}/echo`)).rejects.toThrow(/ECONNREFUSED/);
      expect(sockets.size).toBe(1);
      fetch.close();
      const [socket] = [...sockets];
      if (!socket!.destroyed) await new Promise((r) => socket!.once('close', r));
      // Without keepAlive every request has a connection of its own.
      const plain = guardedFetch({ allowHosts: ['127.0.0.1'] });
      for (const body of ['d', 'e']) await (await plain(`http://127.0.0.1:${port}/echo`, { method: 'POST', body })).json();
      expect(sockets.size).toBe(3);
    } finally {
      server.off('connection', onConnection);
    }
  });

  it('checks every redirect hop', async () => {
    const fetch = guardedFetch({ allowHosts: ['127.0.0.1'] });
    await expect(fetch(`http://127.0.0.1:${port}/redirect-private`)).rejects.toThrow(/link-local/);
    const ok = await fetch(`http://127.0.0.1:${port}/redirect-local`, { method: 'POST', body: 'x' });
    expect(await ok.json()).toEqual({ method: 'POST', body: 'x' });
    const manual = await fetch(`http://127.0.0.1:${port}/redirect-private`, { redirect: 'manual' });
    expect(manual.status).toBe(302);
  });

  it('sends no credential header on to another origin a redirect names: only what describes the request goes along', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const other = http.createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const redirector = http.createServer((req, res) => {
      seen.push(req.headers);
      if (req.url === '/same') return void res.writeHead(302, { location: '/landed' }).end();
      if (req.url === '/landed') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      res.writeHead(302, { location: `http://127.0.0.1:${(other.address() as AddressInfo).port}/landed` }).end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    try {
      const fetch = guardedFetch({ allowHosts: ['127.0.0.1'] });
      const headers = { 'x-subscription-token': 'search-api-secret', authorization: 'Bearer t', 'user-agent': 'Steward/1.0', accept: 'application/json' };
      const base = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
      expect((await fetch(`${base}/away`, { headers })).status).toBe(200);
      expect(seen[1]).toMatchObject({ 'user-agent': 'Steward/1.0', accept: 'application/json' });
      expect(seen[1]!['x-subscription-token']).toBeUndefined();
      expect(seen[1]!.authorization).toBeUndefined();
      // On the same origin the request goes on as it was.
      seen.length = 0;
      expect((await fetch(`${base}/same`, { headers })).status).toBe(200);
      expect(seen[1]).toMatchObject({ 'x-subscription-token': 'search-api-secret', authorization: 'Bearer t' });
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
      await new Promise<void>((r) => redirector.close(() => r()));
    }
  });
});
