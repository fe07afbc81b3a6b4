import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inOrg } from '@steward/db';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { GatewayService } from '../src/gateway/gateway.service';
import { SessionDirectory } from '../src/gateway/session-directory';
import { newApiKey } from './support/fixtures';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * The MCP gateway on two API processes behind a load balancer without session affinity (the Helm
 * chart's default of two API replicas): a session lives in the process that opened it, and the
 * other passes that session's requests on to it (GATEWAY_ADVERTISE_URL, a session directory in
 * Redis). The official SDK client talks to a round-robin balancer on loopback, so its requests
 * alternate between the processes.
 */
describe('MCP gateway on two API processes without session affinity', () => {
  let db: TestDatabase;
  const replicas: { h: Harness; port: number; server: Server }[] = [];
  let org: SeededOrg;
  let memberKey: string;
  let approverCookie: string;
  let memberCookie: string;
  let lb: Server;
  let lbBase: string;
  /** Which process each request through the balancer went to, and the method it carried. */
  const routed: { replica: number; method: string; session: string | undefined }[] = [];
  let next = 0;
  /** Set by a test: the balancer sends everything to this process. */
  let pinned: number | null = null;
  const prefix = `steward-test-${randomBytes(4).toString('hex')}`;
  const open: McpClient[] = [];

  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });

  const gateway = (i: number) => replicas[i]!.h.app.get(GatewayService);

  const connect = async (name = 'replicas-e2e', key = memberKey) => {
    const client = new McpClient({ name, version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${lbBase}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
    open.push(client);
    return client;
  };
  const sessionOf = (c: McpClient) => (c.transport as StreamableHTTPClientTransport).sessionId!;
  const text = (r: unknown) => ((r as CallToolResult).content as { text?: string }[]).map((c) => c.text ?? '').join('\n');
  const raw = (port: number, method: string, headers: Record<string, string>, body?: unknown) =>
    fetch(`http://127.0.0.1:${port}/mcp`, { method, headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${memberKey}`, ...headers }, ...(body ? { body: JSON.stringify(body) } : {}) });

  beforeAll(async () => {
    db = await createTestDatabase();
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const h = await startHarness({
        db,
        env: { REDIS_PREFIX: prefix, GATEWAY_ADVERTISE_URL: `http://127.0.0.1:${port}`, GATEWAY_APPROVAL_WAIT_SECONDS: '30', GATEWAY_APPROVAL_POLL_MS: '50', GATEWAY_MAX_SESSIONS_PER_USER: '3' },
      });
      const server = h.app.getHttpServer() as Server;
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
      replicas.push({ h, port, server });
    }
    org = await seedOrg(replicas[0]!.h.ds, 'replicas');
    memberCookie = await login(replicas[0]!.h, org.users.member.email);
    approverCookie = await login(replicas[1]!.h, org.users.approver.email);
    memberKey = (await newApiKey(replicas[0]!.h, memberCookie, ['*'])).secret;

    // The load balancer: round robin per request, no affinity, streams piped both ways.
    lb = createServer((req, res) => {
      const i = pinned ?? next++ % 2;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let method = req.method ?? '';
        try {
          method = (JSON.parse(body.toString() || 'null') as { method?: string } | null)?.method ?? method;
        } catch {
          // not JSON
        }
        routed.push({ replica: i, method, session: req.headers['mcp-session-id'] as string | undefined });
        const out = httpRequest({ host: '127.0.0.1', port: replicas[i]!.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        out.on('error', () => res.destroy());
        res.on('close', () => out.destroy());
        out.end(body);
      });
    });
    await new Promise<void>((r) => lb.listen(0, '127.0.0.1', r));
    lbBase = `http://127.0.0.1:${(lb.address() as AddressInfo).port}`;
  });

  const closeAll = async () => {
    pinned = null;
    for (const c of open.splice(0)) {
      await (c.transport as StreamableHTTPClientTransport).terminateSession().catch(() => undefined);
      await c.close().catch(() => undefined);
    }
  };
  afterEach(closeAll);
  afterAll(async () => {
    await closeAll();
    lb?.closeAllConnections();
    await new Promise((r) => lb?.close(r));
    for (const r of replicas.reverse()) await r.h.close();
    await db?.drop();
  });

  it('serves a session on whichever process a request reaches: the session lives in one, the other passes its requests on', async () => {
    const from = routed.length;
    const client = await connect();
    const sid = sessionOf(client);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['workspace-files__files_list', 'workspace-files__files_read']));
    for (let i = 0; i < 4; i++) {
      const r = await client.callTool({ name: 'workspace-files__files_list', arguments: {} });
      expect(r.isError).toBeFalsy();
    }
    // Requests of this session reached both processes; it is held by exactly one of them.
    const mine = routed.slice(from).filter((r) => r.session === sid);
    expect(new Set(mine.map((r) => r.replica))).toEqual(new Set([0, 1]));
    expect(mine.filter((r) => r.method === 'tools/call').length).toBe(4);
    expect(gateway(0).openSessions + gateway(1).openSessions).toBe(1);
    // Every call ran once, through the gate of the process holding the session, and was audited as one action.
    const actions = await inOrgCount(replicas[0]!.h, org.id, sid);
    expect(actions).toBe(4);
  });

  it('a Watched call that reached the other process waits there with progress, and the approval ends it', async () => {
    const client = await connect();
    const sid = sessionOf(client);
    const holder = gateway(0).openSessions === 1 ? 0 : 1;
    // The call goes to the process that does not hold the session.
    pinned = 1 - holder;
    const progress: string[] = [];
    const pending = client.callTool({ name: 'workspace-files__files_delete', arguments: { path: 'notes/old-draft.txt' } }, undefined, { onprogress: (p) => progress.push(p.message ?? ''), timeout: 45_000 });
    let approval: { id: string } | undefined;
    for (let i = 0; i < 200 && !approval; i++) {
      const res = await replicas[1]!.h.http.get('/v1/approvals?state=pending').set('Cookie', approverCookie);
      approval = (res.body.items as { id: string; tool: string }[]).find((a) => a.tool === 'files.delete');
      if (!approval) await new Promise((r) => setTimeout(r, 50));
    }
    expect(approval).toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    expect((await replicas[1]!.h.http.post(`/v1/approvals/${approval!.id}/approve`).set('Cookie', approverCookie).send({})).status).toBe(200);
    const result = (await pending) as CallToolResult;
    // Approved and run (the file does not exist: the connector's own error comes back, not a refusal).
    expect(text(result)).not.toMatch(/Refused by Steward/);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(routed.filter((r) => r.session === sid && r.method === 'tools/call').map((r) => r.replica)).toEqual([1 - holder]);
  });

  it('counts a passed-on call once against the per-key limit', async () => {
    // A key of its own, so that only these calls count under it.
    const key = (await newApiKey(replicas[0]!.h, memberCookie, ['*'])).secret;
    const client = await connect('counted', key);
    const holder = gateway(0).openSessions === 1 ? 0 : 1;
    pinned = 1 - holder;
    for (let i = 0; i < 5; i++) expect((await client.callTool({ name: 'workspace-files__files_list', arguments: {} })).isError).toBeFalsy();
    const redis = replicas[0]!.h.redis;
    const keys = await redis.keys(`${prefix}:mcp:calls:${createHash('sha256').update(key).digest('hex')}:*`);
    const counted = (await Promise.all(keys.map((k) => redis.get(k)))).reduce((n, v) => n + Number(v ?? 0), 0);
    expect(counted).toBe(5);
  });

  it('holds the per-user session limit across processes', async () => {
    await connect('a');
    await connect('b');
    await connect('c');
    expect(gateway(0).openSessions + gateway(1).openSessions).toBe(3);
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'd', version: '1' } } };
    for (const r of replicas) {
      const res = await raw(r.port, 'POST', {}, init);
      expect(res.status).toBe(429);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/At most 3 open MCP sessions per user/);
    }
  });

  it('does not count sessions whose process is gone: the limit is for open sessions', async () => {
    // Three sessions recorded by a process at an address nobody listens on any more (as a pod replaced under a new address leaves them): the limit, were they counted.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const gone = new SessionDirectory(replicas[0]!.h.redis, prefix, dead, replicas[0]!.h.config.STEWARD_TOKEN_PEPPER, 60);
    for (let i = 0; i < 3; i++) await gone.publish(`0190f7d6-0000-7000-8000-00000000010${i}`, org.id, org.users.member.id);
    gone.close();
    const client = await connect('after-a-crash');
    expect(sessionOf(client)).toBeDefined();
    expect(await replicas[0]!.h.redis.zrange(`${prefix}:mcp:user:${org.id}:${org.users.member.id}`, '0', '-1')).toEqual([sessionOf(client)]);
  });

  it('passes a request on to the holding process only, whatever host its request line names', async () => {
    const client = await connect();
    const sid = sessionOf(client);
    const holder = gateway(0).openSessions === 1 ? 0 : 1;
    // A listener the request line points at (absolute form, as a client may send it): it must hear nothing.
    const heard: string[] = [];
    const trap = createServer((req, res) => {
      heard.push(`${req.method} ${req.url}`);
      res.end('{}');
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const trapPort = (trap.address() as AddressInfo).port;
    try {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' });
      for (const path of [`http://127.0.0.1:${trapPort}/mcp`, `http://x//127.0.0.1:${trapPort}/mcp`]) {
        const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = httpRequest(
            { host: '127.0.0.1', port: replicas[1 - holder]!.port, method: 'POST', path, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${memberKey}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (text += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
        expect(heard).toEqual([]);
        // The holder answered it (or refused it), never the named host.
        expect(answer.text).not.toBe('{}');
      }
    } finally {
      await new Promise((r) => trap.close(r));
    }
  });

  it('ends a session everywhere when it is closed through the other process', async () => {
    const client = await connect();
    const sid = sessionOf(client);
    const holder = gateway(0).openSessions === 1 ? 0 : 1;
    pinned = 1 - holder;
    await (client.transport as StreamableHTTPClientTransport).terminateSession();
    open.splice(open.indexOf(client), 1);
    await client.close();
    expect(gateway(holder).openSessions).toBe(0);
    for (const r of replicas) {
      const res = await raw(r.port, 'POST', { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
      expect(res.status).toBe(404);
    }
  });

  it('forgets at start what an earlier run at its address held; answers 404 (start a new session) when the process holding a session is gone, and forgets it', async () => {
    // A third process, to be stopped without a goodbye (as a crash would).
    const port = await freePort();
    // What an earlier run of a process at this address left behind (it crashed): forgotten when the new one starts.
    const earlier = new SessionDirectory(replicas[0]!.h.redis, prefix, `http://127.0.0.1:${port}`, replicas[0]!.h.config.STEWARD_TOKEN_PEPPER, 60);
    await earlier.publish('0190f7d6-0000-7000-8000-000000000200', org.id, org.users.member.id);
    earlier.close();
    const h = await startHarness({ db, env: { REDIS_PREFIX: prefix, GATEWAY_ADVERTISE_URL: `http://127.0.0.1:${port}` } });
    for (let i = 0; i < 100 && (await replicas[0]!.h.redis.get(`${prefix}:mcp:session:0190f7d6-0000-7000-8000-000000000200`)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await replicas[0]!.h.redis.get(`${prefix}:mcp:session:0190f7d6-0000-7000-8000-000000000200`)).toBeNull();
    const server = h.app.getHttpServer() as Server;
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const init = await raw(port, 'POST', {}, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'doomed', version: '1' } } });
    expect(init.status).toBe(200);
    const sid = init.headers.get('mcp-session-id')!;
    await init.text();
    // Served through another process while the holder lives...
    const list = await raw(replicas[0]!.port, 'POST', { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect(list.status).toBe(200);
    expect(await list.text()).toContain('workspace-files__files_list');
    // ...then the holder stops accepting connections: 404, and the directory no longer names it.
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    const gone = await raw(replicas[0]!.port, 'POST', { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, { jsonrpc: '2.0', id: 3, method: 'tools/list' });
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { detail: string }).detail).toMatch(/initialize a new one/);
    expect(await replicas[0]!.h.redis.get(`${prefix}:mcp:session:${sid}`)).toBeNull();
    // (Not h.close(): that would clear the Redis prefix the other two processes share.)
    await h.app.close();
    h.redis.disconnect();
    await h.ds.destroy();
  });

  it('does not follow a directory entry it did not sign (a value written into Redis by someone else)', async () => {
    const hits: string[] = [];
    const trap = createServer((req, res) => {
      hits.push(String(req.headers.authorization));
      res.end('{}');
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    try {
      const sid = '0190f7d6-0000-7000-8000-000000000001';
      const url = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;
      await replicas[0]!.h.redis.set(`${prefix}:mcp:session:${sid}`, JSON.stringify({ url, orgId: org.id, userId: org.users.member.id, sig: 'forged' }), 'EX', 60);
      const res = await raw(replicas[1]!.port, 'POST', { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
      expect(res.status).toBe(404);
      expect(hits).toEqual([]);
    } finally {
      await new Promise((r) => trap.close(r));
    }
  });
});

/** Allowed gateway actions of a session (decision events), read as the org. */
async function inOrgCount(h: Harness, orgId: string, sid: string): Promise<number> {
  return inOrg(h.ds, { orgId }, async (em) => {
    const [{ n }]: { n: number }[] = await em.query(
      `SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND action = 'file.read' AND canonical::jsonb->'payload'->'mcp'->>'session' = $2 AND decision = 'allowed'`,
      [orgId, sid],
    );
    return n;
  });
}
