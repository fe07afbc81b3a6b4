import { createHash, randomBytes } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { listen, type Loopback, readBody, sendJson } from '@steward/connectors/test-support/loopback';

/**
 * Loopback fakes of remote services that speak the real protocols, so the real client code runs:
 * an MCP server over Streamable HTTP (tools you can change between listings, optional bearer
 * check) and an OAuth 2 authorization server (authorization code + PKCE S256, refresh tokens).
 */

export interface FakeTool {
  name: string;
  description: string;
  /** Extra input properties (zod). */
  shape?: Record<string, z.ZodType>;
}

export interface FakeMcp extends Loopback {
  tools: FakeTool[];
  /** Bearer tokens accepted; empty: no authorisation required. */
  acceptTokens: Set<string>;
  /** Authorization headers received, in order. */
  seenAuth: (string | undefined)[];
}

export async function startFakeMcp(tools: FakeTool[], acceptTokens: string[] = []): Promise<FakeMcp> {
  const state = { tools, acceptTokens: new Set(acceptTokens), seenAuth: [] as (string | undefined)[] };
  const lb = await listen(async (req, res) => {
    if (!req.url?.startsWith('/mcp')) return void res.writeHead(404).end();
    state.seenAuth.push(req.headers.authorization);
    if (state.acceptTokens.size && !state.acceptTokens.has((req.headers.authorization ?? '').replace(/^Bearer /, ''))) {
      return sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const body = JSON.parse((await readBody(req)).toString() || 'null');
    const server = new McpServer({ name: 'fake-partner', version: '1.0.0' });
    for (const t of state.tools) {
      server.registerTool(t.name, { description: t.description, inputSchema: { query: z.string().max(200), ...(t.shape ?? {}) } }, async () => ({ content: [{ type: 'text', text: 'ok' }] }));
    }
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  return Object.assign(state, lb);
}

export interface FakeAuthServer extends Loopback {
  clientId: string;
  clientSecret: string;
  authorizationUrl: string;
  tokenUrl: string;
  /** Access tokens issued and still valid (give to a FakeMcp as acceptTokens). */
  accessTokens: Set<string>;
  /** Every token and secret the server handed out (canaries for leak checks). */
  issued: string[];
  /** Seconds an access token lives. */
  expiresIn: number;
  /** When true, every refresh answers invalid_grant (the user revoked the grant). */
  refuseRefresh: boolean;
  /** When set, every refresh answers this (an outage: 503 temporarily_unavailable; an oversized answer). */
  refreshAnswer: { status: number; body: unknown } | null;
  refreshes: number;
  /** RFC 7009 endpoint; the tokens revoked there (a revoked refresh token ends its grant). */
  revocationUrl: string;
  revoked: string[];
  /** Plays the user's consent: follows authorizationUrl and returns the code and state sent back. */
  consent(authorizationUrl: string): Promise<{ code: string; state: string }>;
}

const b64url = (b: Buffer) => b.toString('base64url');

export async function startFakeAuthServer(opts: { expiresIn?: number; prefix?: string } = {}): Promise<FakeAuthServer> {
  const prefix = opts.prefix ?? 'canary';
  const codes = new Map<string, { challenge: string; redirectUri: string; clientId: string }>();
  const refreshTokens = new Set<string>();
  const self = {
    clientId: `client-${randomBytes(4).toString('hex')}`,
    clientSecret: `${prefix}-client-secret-${randomBytes(12).toString('hex')}`,
    accessTokens: new Set<string>(),
    issued: [] as string[],
    expiresIn: opts.expiresIn ?? 3600,
    refuseRefresh: false,
    refreshAnswer: null as { status: number; body: unknown } | null,
    refreshes: 0,
    revoked: [] as string[],
  };
  const issue = () => {
    const access = `${prefix}-access-${randomBytes(16).toString('hex')}`;
    const refresh = `${prefix}-refresh-${randomBytes(16).toString('hex')}`;
    self.accessTokens.add(access);
    refreshTokens.add(refresh);
    self.issued.push(access, refresh);
    return { access_token: access, token_type: 'Bearer', expires_in: self.expiresIn, refresh_token: refresh, scope: 'read' };
  };
  const lb = await listen(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      if (q.get('response_type') !== 'code' || q.get('client_id') !== self.clientId || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge') || !q.get('state')) {
        return sendJson(res, 400, { error: 'invalid_request' });
      }
      const code = `code-${randomBytes(12).toString('hex')}`;
      codes.set(code, { challenge: q.get('code_challenge')!, redirectUri: q.get('redirect_uri')!, clientId: q.get('client_id')! });
      const back = new URL(q.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state')!);
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const form = new URLSearchParams((await readBody(req)).toString());
      if (form.get('client_id') !== self.clientId || form.get('client_secret') !== self.clientSecret) return sendJson(res, 401, { error: 'invalid_client' });
      if (form.get('grant_type') === 'authorization_code') {
        const c = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        if (!c || c.redirectUri !== form.get('redirect_uri') || b64url(createHash('sha256').update(verifier).digest()) !== c.challenge) return sendJson(res, 400, { error: 'invalid_grant' });
        return sendJson(res, 200, issue(), { 'cache-control': 'no-store' });
      }
      if (form.get('grant_type') === 'refresh_token') {
        self.refreshes++;
        const rt = form.get('refresh_token') ?? '';
        if (self.refreshAnswer) return sendJson(res, self.refreshAnswer.status, self.refreshAnswer.body);
        if (self.refuseRefresh || !refreshTokens.has(rt)) return sendJson(res, 400, { error: 'invalid_grant', error_description: 'the grant was revoked' });
        refreshTokens.delete(rt); // rotation: a refresh token works once
        return sendJson(res, 200, issue(), { 'cache-control': 'no-store' });
      }
      return sendJson(res, 400, { error: 'unsupported_grant_type' });
    }
    if (req.method === 'POST' && url.pathname === '/revoke') {
      const form = new URLSearchParams((await readBody(req)).toString());
      if (form.get('client_id') !== self.clientId || form.get('client_secret') !== self.clientSecret) return sendJson(res, 401, { error: 'invalid_client' });
      const token = form.get('token') ?? '';
      self.revoked.push(token);
      refreshTokens.delete(token);
      self.accessTokens.delete(token);
      res.writeHead(200).end();
      return;
    }
    res.writeHead(404).end();
  });
  self.issued.push(self.clientSecret);
  return Object.assign(self, lb, {
    authorizationUrl: `${lb.url}/authorize`,
    tokenUrl: `${lb.url}/token`,
    revocationUrl: `${lb.url}/revoke`,
    async consent(authorizationUrl: string) {
      const res = await fetch(authorizationUrl, { redirect: 'manual' });
      const location = new URL(res.headers.get('location') ?? 'http://invalid/');
      return { code: location.searchParams.get('code') ?? '', state: location.searchParams.get('state') ?? '' };
    },
  });
}
