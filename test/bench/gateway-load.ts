/**
 * A load generator of `bench:gateway`, in a process of its own (the MCP clients are other machines):
 * official SDK clients over Streamable HTTP, driven by the parent over IPC, one command at a time:
 *   {op:'latency', direct, gateway, headers, directTool, gatewayTool, warm, n}  → {direct: ms[], gateway: ms[]}
 *   {op:'connect', url, headers, count}                                      → {connected}
 *   {op:'run', tool, calls, tag}                                             → {calls, errors, firstError}
 *   {op:'close'}                                                             → exits
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

type Msg =
  | { op: 'latency'; direct: string; gateway: string; headers: Record<string, string>; directTool: string; gatewayTool: string; warm: number; n: number }
  | { op: 'connect'; url: string; headers: Record<string, string>; count: number }
  | { op: 'run'; tool: string; calls: number; tag: string }
  | { op: 'close' };

const clients: Client[] = [];
const sessions: Client[] = [];

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
      for (let i = 0; i < m.count; i += 10) sessions.push(...(await Promise.all(Array.from({ length: Math.min(10, m.count - i) }, () => connect(m.url, m.headers)))));
      return { connected: sessions.length };
    }
    case 'run': {
      let errors = 0;
      let firstError: string | null = null;
      await Promise.all(
        sessions.map(async (c, s) => {
          for (let i = 0; i < m.calls; i++) {
            try {
              const r = (await c.callTool({ name: m.tool, arguments: { ticker: `${m.tag}${s}C${i}`.slice(0, 10) } })) as CallToolResult;
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
