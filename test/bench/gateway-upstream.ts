/**
 * The remote MCP upstream of `bench:gateway`, in a process of its own (a remote server is another
 * machine): the loopback MCP server with the one tool, its URL sent to the parent, closed when the
 * parent says so (or goes away).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { serveMcp } from '../../libs/connectors/src/test-support/loopback';

export const UPSTREAM_TOOL = { name: 'lookup_company', description: 'Look up a company profile by ticker.' };

async function main(): Promise<void> {
  const upstream = await serveMcp(() => {
    const server = new McpServer({ name: 'bench-upstream', version: '1.0.0' });
    server.registerTool(UPSTREAM_TOOL.name, { description: UPSTREAM_TOOL.description, inputSchema: { ticker: z.string().max(10) } }, async ({ ticker }) => ({ content: [{ type: 'text', text: `${ticker}: ACME Corp, 1,200 employees` }] }));
    return server;
  }, { jsonResponse: true });
  const stop = async () => {
    await upstream.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('message', (m: { op?: string }) => void (m?.op === 'close' ? stop() : undefined));
  process.on('disconnect', () => void stop());
  process.send!({ url: upstream.url });
}

if (require.main === module) void main();
