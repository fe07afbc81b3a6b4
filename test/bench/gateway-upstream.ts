/**
 * The remote MCP upstream of `bench:gateway`, in a process of its own (a remote server is another
 * machine): an MCP server with the one tool, its URL sent to the parent, closed when the parent
 * says so (or goes away). Stateful, as a typical MCP server is: `initialize` opens a session with
 * its own server and transport (JSON responses), reused by the session's later calls — rather
 * than a new server per request, which cost this shared 2-core machine ~1 ms of CPU per call that
 * a real upstream spends on its own machine.
 */
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { listen, readBody } from '../../libs/connectors/src/test-support/loopback';

export const UPSTREAM_TOOL = { name: 'lookup_company', description: 'Look up a company profile by ticker.' };

function makeServer(): McpServer {
  const server = new McpServer({ name: 'bench-upstream', version: '1.0.0' });
  server.registerTool(UPSTREAM_TOOL.name, { description: UPSTREAM_TOOL.description, inputSchema: { ticker: z.string().max(10) } }, async ({ ticker }) => ({ content: [{ type: 'text', text: `${ticker}: ACME Corp, 1,200 employees` }] }));
  return server;
}

async function main(): Promise<void> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const upstream = await listen(async (req, res) => {
    if (!req.url?.startsWith('/mcp')) return void res.writeHead(404).end();
    const sid = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? JSON.parse((await readBody(req)).toString() || 'null') : undefined;
    let transport = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(typeof sid === 'string' ? 404 : 400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'no such session' } }));
        return;
      }
      const t = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, enableJsonResponse: true, onsessioninitialized: (id) => void sessions.set(id, t) });
      t.onclose = () => {
        if (t.sessionId) sessions.delete(t.sessionId);
      };
      await makeServer().connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res, body);
  });
  const stop = async () => {
    await Promise.all([...sessions.values()].map((t) => t.close().catch(() => undefined)));
    await upstream.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('message', (m: { op?: string }) => void (m?.op === 'close' ? stop() : undefined));
  process.on('disconnect', () => void stop());
  process.send!({ url: upstream.url });
}

if (require.main === module) void main();
