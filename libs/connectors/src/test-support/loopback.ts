import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

/** A real HTTP server on 127.0.0.1 for fakes of remote services. */
export interface Loopback {
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

export async function listen(handler: http.RequestListener): Promise<Loopback> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * A real MCP server over Streamable HTTP (stateless: a fresh server per request, as the SDK's
 * examples do), optionally requiring a bearer token.
 */
export async function serveMcp(
  makeServer: () => McpServer,
  /** `intercept`: answers a JSON-RPC request itself when it returns a reply (an HTTP error page, say) instead of the MCP server. */
  opts: { token?: () => string | undefined; jsonResponse?: boolean; intercept?: (body: { method?: string; params?: Record<string, unknown> } | null) => { status: number; text: string } | undefined } = {},
): Promise<Loopback & { requests: number }> {
  const state = { requests: 0 };
  const lb = await listen(async (req, res) => {
    state.requests++;
    if (!req.url?.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    const token = opts.token?.();
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const body = JSON.parse((await readBody(req)).toString() || 'null');
    const intercepted = opts.intercept?.(body);
    if (intercepted) {
      res.writeHead(intercepted.status, { 'content-type': 'text/plain' }).end(intercepted.text);
      return;
    }
    const server = makeServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: opts.jsonResponse ?? false });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  return Object.defineProperty(lb, 'requests', { get: () => state.requests }) as Loopback & { requests: number };
}
