/**
 * A load generator of `bench:gateway`, in a process of its own (the MCP clients are other machines),
 * driven by the parent over IPC, one command at a time. The latency figures use the official SDK
 * client (direct and through the gateway alike). The throughput sessions are lean MCP clients, as
 * a load generator's are: each does the real Streamable HTTP handshake (initialize, its
 * Mcp-Session-Id and negotiated protocol version, notifications/initialized) and then posts
 * tools/call requests over a kept-alive connection, reading each answer (SSE or JSON) and checking
 * it is that request's result and not a tool error. On this shared 2-core machine the SDK client
 * cost ~0.8 ms of CPU per call, taken from the gateway it was loading.
 *   {op:'latency', direct, gateway, headers, directTool, gatewayTool, warm, n}  → {direct: ms[], gateway: ms[]}
 *   {op:'connect', url, headers, count}                                      → {connected}
 *   {op:'run', tool, calls, tag}                                             → {calls, errors, firstError}
 *   {op:'ping'}                                                              → {ready} (loaded)
 *   {op:'close'}                                                             → exits
 */
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CallToolResult, LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';

type Msg =
  | { op: 'latency'; direct: string; gateway: string; headers: Record<string, string>; directTool: string; gatewayTool: string; warm: number; n: number }
  | { op: 'connect'; url: string; headers: Record<string, string>; count: number }
  | { op: 'run'; tool: string; calls: number; tag: string }
  | { op: 'ping' }
  | { op: 'close' };

const clients: Client[] = [];
const sessions: LeanSession[] = [];
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

interface LeanSession {
  url: URL;
  headers: Record<string, string>;
  nextId: number;
}

/** One POST of a JSON-RPC message; the answer's status, session header and body. */
function post(url: URL, headers: Record<string, string>, message: unknown): Promise<{ status: number; session: string | undefined; body: string }> {
  const payload = JSON.stringify(message);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, session: res.headers['mcp-session-id'] as string | undefined, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The JSON-RPC response to request `id` in an answer (a JSON body, or an SSE stream's data lines). */
function responseTo(body: string, id: number): { result?: Record<string, unknown>; error?: { message: string } } {
  if (body.startsWith('{')) return JSON.parse(body);
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: ') || line.length < 8) continue;
    const m = JSON.parse(line.slice(6)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
    if (m.id === id) return m;
  }
  throw new Error(`no response to request ${id} in: ${body.slice(0, 300)}`);
}

async function leanConnect(url: string, headers: Record<string, string>): Promise<LeanSession> {
  const u = new URL(url);
  const init = await post(u, headers, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench-load', version: '1.0.0' } } });
  const r = responseTo(init.body, 0);
  if (init.status !== 200 || !init.session || !r.result) throw new Error(`initialize failed (${init.status}): ${init.body.slice(0, 300)}`);
  const s: LeanSession = { url: u, headers: { ...headers, 'mcp-session-id': init.session, 'mcp-protocol-version': String(r.result.protocolVersion) }, nextId: 1 };
  const ack = await post(u, s.headers, { jsonrpc: '2.0', method: 'notifications/initialized' });
  if (ack.status !== 202) throw new Error(`notifications/initialized answered ${ack.status}`);
  return s;
}

async function leanCall(s: LeanSession, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  const id = s.nextId++;
  const res = await post(s.url, s.headers, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
  if (res.status !== 200) throw new Error(`tools/call answered ${res.status}: ${res.body.slice(0, 300)}`);
  const r = responseTo(res.body, id);
  if (r.error || !r.result) throw new Error(`tools/call failed: ${r.error?.message ?? res.body.slice(0, 300)}`);
  return r.result as CallToolResult;
}

async function connect(url: string, headers: Record<string, string>): Promise<Client> {
  const c = new Client({ name: 'bench-client', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  clients.push(c);
  return c;
}

async function timed(c: Client, name: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const r = (await c.callTool({ name, arguments: { ticker: `T${i % 1000}` } })) as CallToolResult;
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.isError) throw new Error(`${name}: ${JSON.stringify(r.content).slice(0, 300)}`);
  }
  return times;
}

async function handle(m: Msg): Promise<unknown> {
  switch (m.op) {
    case 'latency': {
      const direct = await connect(m.direct, {});
      const viaGateway = await connect(m.gateway, m.headers);
      await timed(direct, m.directTool, m.warm);
      await timed(viaGateway, m.gatewayTool, m.warm);
      return { direct: await timed(direct, m.directTool, m.n), gateway: await timed(viaGateway, m.gatewayTool, m.n) };
    }
    case 'connect': {
      // A few at a time, as clients arriving.
      for (let i = 0; i < m.count; i += 10) sessions.push(...(await Promise.all(Array.from({ length: Math.min(10, m.count - i) }, () => leanConnect(m.url, m.headers)))));
      return { connected: sessions.length };
    }
    case 'run': {
      let errors = 0;
      let firstError: string | null = null;
      await Promise.all(
        sessions.map(async (c, s) => {
          for (let i = 0; i < m.calls; i++) {
            try {
              const r = await leanCall(c, m.tool, { ticker: `${m.tag}${s}C${i}`.slice(0, 10) });
              if (r.isError) {
                errors++;
                firstError ??= JSON.stringify(r.content).slice(0, 300);
              }
            } catch (err) {
              errors++;
              firstError ??= (err as Error).message.slice(0, 300);
            }
          }
        }),
      );
      return { calls: sessions.length * m.calls, errors, firstError };
    }
    case 'ping':
      return { ready: true };
    case 'close':
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      process.exit(0);
  }
}

process.on('message', (m: Msg) => {
  handle(m).then(
    (r) => process.send!({ ok: true, r }),
    (err: unknown) => process.send!({ ok: false, error: (err as Error).stack ?? String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
