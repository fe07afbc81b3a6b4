import { createServer } from 'node:net';
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  exchangeAuthorization,
  type OAuthClientProvider,
  refreshAuthorization,
  registerClient,
  startAuthorization,
  UnauthorizedError,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { Client } from 'pg';
import { adminUrl } from '../../../test/support/db-urls';
import { resolveMcpToken } from '../src/mcp-auth/mcp-tokens';
import { type Harness, login, PASSWORD, type SeededOrg, seedOrg, startHarness } from './support/harness';
import { browseUntil, startIdp } from './support/oidc';

/**
 * The authorization-server side of the MCP authorization spec, driven by the MCP SDK's own
 * client functions (what Claude Desktop and other MCP clients run): protected resource and
 * authorization server metadata, dynamic registration, PKCE, the member's consent, the token,
 * and what the gateway checks with it; then the whole flow as an MCP client runs it (the SDK's
 * auth provider and `auth()` through StreamableHTTPClientTransport): 401 with resource metadata
 * at /mcp, discovery, registration, PKCE, the sign-in and consent page (the test plays the
 * browser), the token, `tools/list` through the gateway; refresh rotation, reuse, revocation,
 * expiry, audience and tenant boundaries.
 */
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('MCP authorization (OAuth 2.1 for MCP clients)', () => {
  let h: Harness;
  let org: SeededOrg;
  let base: string;
  let member: string;
  const redirectUrl = 'http://127.0.0.1:53682/callback';

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    h = await startHarness({ env: { STEWARD_PUBLIC_URL: base } });
    await new Promise<void>((resolve) => h.app.getHttpServer().listen(port, '127.0.0.1', resolve));
    org = await seedOrg(h.ds, 'acme');
    member = await login(h, org.users.member.email);
  });
  afterAll(() => h?.close());

  /** Discovery, registration and the authorization URL, as an MCP client does them. */
  async function begin() {
    const resource = await discoverOAuthProtectedResourceMetadata(`${base}/mcp`);
    expect(resource.resource).toBe(`${base}/mcp`);
    const as = resource.authorization_servers![0]!;
    const metadata = await discoverAuthorizationServerMetadata(as);
    expect(metadata).toMatchObject({ issuer: base, code_challenge_methods_supported: ['S256'], registration_endpoint: `${base}/oauth/register`, grant_types_supported: ['authorization_code', 'refresh_token'], revocation_endpoint: `${base}/oauth/revoke` });
    const clientInformation = await registerClient(as, {
      metadata,
      clientMetadata: { client_name: 'Claude Desktop (test)', redirect_uris: [redirectUrl], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' },
    });
    const { authorizationUrl, codeVerifier } = await startAuthorization(as, { metadata, clientInformation, redirectUrl, scope: 'mcp', state: 'client-state-1', resource: new URL(`${base}/mcp`) });
    return { as, metadata, clientInformation, authorizationUrl, codeVerifier };
  }

  /** The browser: authorization endpoint → consent page → the member approves → back to the client. */
  async function consent(authorizationUrl: URL, approve = true): Promise<URL> {
    const res = await fetch(authorizationUrl, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const consentPage = new URL(res.headers.get('location')!);
    expect(consentPage.pathname).toBe('/oauth/consent');
    const request = consentPage.searchParams.get('request')!;
    const shown = await h.http.get(`/v1/oauth/requests/${request}`).set('Cookie', member);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ clientName: 'Claude Desktop (test)', redirectUri: redirectUrl, scope: 'mcp', resource: `${base}/mcp` });
    const decided = await h.http.post(`/v1/oauth/requests/${request}/${approve ? 'approve' : 'deny'}`).set('Cookie', member);
    expect(decided.status).toBe(200);
    return new URL(decided.body.redirectTo);
  }

  it('registers, gets the member\'s consent and issues a token bound to the member, the client and the gateway', async () => {
    const { as, metadata, clientInformation, authorizationUrl, codeVerifier } = await begin();
    const back = await consent(authorizationUrl);
    expect(back.origin + back.pathname).toBe(redirectUrl);
    expect(back.searchParams.get('state')).toBe('client-state-1');
    const tokens = await exchangeAuthorization(as, { metadata, clientInformation, authorizationCode: back.searchParams.get('code')!, codeVerifier, redirectUri: redirectUrl, resource: new URL(`${base}/mcp`) });
    expect(tokens.token_type).toBe('Bearer');
    expect(tokens.access_token).toMatch(/^stm_/);
    const caller = await resolveMcpToken(h.ds, h.config, tokens.access_token, `${base}/mcp`);
    expect(caller).toMatchObject({ orgId: org.id, userId: org.users.member.id, clientId: clientInformation.client_id });
    // Bound to the gateway's resource: another audience gets nothing.
    expect(await resolveMcpToken(h.ds, h.config, tokens.access_token, 'https://elsewhere.example/mcp')).toBeUndefined();
    expect(h.logs()).not.toContain(tokens.access_token);
    // The code is single-use, and a second use (it leaked) ends the tokens the first one got.
    await expect(exchangeAuthorization(as, { metadata, clientInformation, authorizationCode: back.searchParams.get('code')!, codeVerifier, redirectUri: redirectUrl })).rejects.toThrow(/invalid_grant|already used/i);
    expect(await resolveMcpToken(h.ds, h.config, tokens.access_token, `${base}/mcp`)).toBeUndefined();
    await expect(refreshAuthorization(as, { metadata, clientInformation, refreshToken: tokens.refresh_token! })).rejects.toThrow(/revoked|invalid_grant/i);
    const url = new URL(adminUrl());
    url.pathname = `/${h.db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    const reuse = (await su.query(`SELECT outcome, canonical::jsonb->'payload' AS payload FROM audit_events WHERE org_id = $1 AND action = 'mcp_oauth.code_reuse'`, [org.id]).finally(() => su.end())).rows;
    expect(reuse).toEqual([{ outcome: 'denied', payload: expect.objectContaining({ clientId: clientInformation.client_id, kind: 'authorization_code', accessTokensRevoked: 1, refreshTokensRevoked: 1 }) }]);
    // A code never issued revokes nothing and says the same.
    await expect(exchangeAuthorization(as, { metadata, clientInformation, authorizationCode: 'never-issued', codeVerifier, redirectUri: redirectUrl })).rejects.toThrow(/invalid_grant|already used/i);
  });

  it('a code used twice at the same moment: whatever tokens either use got end (the second use does not lose the race)', async () => {
    for (let trial = 0; trial < 8; trial++) {
      const b = await begin();
      const code = (await consent(b.authorizationUrl)).searchParams.get('code')!;
      const exchange = () => exchangeAuthorization(b.as, { metadata: b.metadata, clientInformation: b.clientInformation, authorizationCode: code, codeVerifier: b.codeVerifier, redirectUri: redirectUrl });
      const results = await Promise.allSettled([exchange(), exchange()]);
      // At most one use gets tokens, and none it got still works.
      const got = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(got.length).toBeLessThanOrEqual(1);
      for (const t of got) expect(await resolveMcpToken(h.ds, h.config, t.access_token, `${base}/mcp`)).toBeUndefined();
    }
  });

  it('refuses a wrong PKCE verifier, and a suspended member\'s token stops working', async () => {
    const { as, metadata, clientInformation, authorizationUrl, codeVerifier } = await begin();
    const back = await consent(authorizationUrl);
    const wrong = `${codeVerifier.slice(0, -4)}AAAA`;
    await expect(exchangeAuthorization(as, { metadata, clientInformation, authorizationCode: back.searchParams.get('code')!, codeVerifier: wrong, redirectUri: redirectUrl })).rejects.toThrow(/verifier|invalid_grant/i);
    // Someone who saw the code but holds no verifier does not use it up: the client it was issued to still exchanges it.
    const mine = await exchangeAuthorization(as, { metadata, clientInformation, authorizationCode: back.searchParams.get('code')!, codeVerifier, redirectUri: redirectUrl });
    expect(await resolveMcpToken(h.ds, h.config, mine.access_token, `${base}/mcp`)).toBeDefined();

    const second = await begin();
    const back2 = await consent(second.authorizationUrl);
    const tokens = await exchangeAuthorization(second.as, { metadata: second.metadata, clientInformation: second.clientInformation, authorizationCode: back2.searchParams.get('code')!, codeVerifier: second.codeVerifier, redirectUri: redirectUrl });
    expect(await resolveMcpToken(h.ds, h.config, tokens.access_token, `${base}/mcp`)).toBeDefined();
    const owner = await login(h, org.users.owner.email);
    expect((await h.http.post(`/v1/members/${org.users.member.id}/suspend`).set('Cookie', owner).send({ reason: 'left' })).status).toBe(200);
    expect(await resolveMcpToken(h.ds, h.config, tokens.access_token, `${base}/mcp`)).toBeUndefined();
    expect((await h.http.post(`/v1/members/${org.users.member.id}/reactivate`).set('Cookie', owner).send({})).status).toBe(200);
    member = await login(h, org.users.member.email);
  });

  it('refuses unregistered redirect URIs, plain-http remote redirects, other methods, and a denied consent', async () => {
    const { clientInformation, authorizationUrl } = await begin();
    const evil = new URL(authorizationUrl);
    evil.searchParams.set('redirect_uri', 'https://attacker.example/cb');
    const res = await fetch(evil, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    const plain = new URL(authorizationUrl);
    plain.searchParams.set('code_challenge_method', 'plain');
    expect((await fetch(plain, { redirect: 'manual' })).status).toBe(400);
    const reg = await h.http.post('/oauth/register').send({ redirect_uris: ['http://attacker.example/cb'] });
    expect(reg.status).toBe(400);
    expect(reg.body.error).toBe('invalid_redirect_uri');
    const denied = await consent(authorizationUrl, false);
    expect(denied.searchParams.get('error')).toBe('access_denied');
    expect(denied.searchParams.get('code')).toBeNull();
    expect(clientInformation.client_id).toMatch(/^mcp_/);
  });

  it('answers bad input at the OAuth endpoints with 4xx and an OAuth error', async () => {
    const cases = [
      await h.http.post('/oauth/register').set('Content-Type', 'application/json').send('{"redirect_uris": '),
      await h.http.post('/oauth/register').send({ redirect_uris: 'http://127.0.0.1/cb' }),
      await h.http.post('/oauth/register').send({ redirect_uris: [`https://x.example/${'a'.repeat(3000)}`] }),
      await h.http.post('/oauth/register').send({ redirect_uris: ['https://x.example/cb'], token_endpoint_auth_method: 'client_secret_basic' }),
      await h.http.post('/oauth/token').type('form').send({ grant_type: 'password', username: 'a', password: 'b' }),
      await h.http.post('/oauth/token').type('form').send({ grant_type: 'authorization_code', code: 'x', redirect_uri: redirectUrl, client_id: 'c', code_verifier: 'short' }),
      await h.http.post('/oauth/token').set('Content-Type', 'text/plain').send('code=x'),
    ];
    expect(cases.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 400, 415]);
    for (const r of cases) expect(typeof r.body.error).toBe('string');
    const before = await h.ds.query(`SELECT count(*)::int AS n FROM mcp_oauth_clients`);
    expect(before[0].n).toBeGreaterThan(0);
  });
});

/** An MCP client's OAuth state, kept in memory (what Claude Desktop keeps in its keychain). */
class MemoryAuthProvider implements OAuthClientProvider {
  info?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier = '';
  authorizationUrl?: URL;
  constructor(readonly redirect: string, readonly name: string) {}
  get redirectUrl(): string {
    return this.redirect;
  }
  get clientMetadata(): OAuthClientMetadata {
    return { client_name: this.name, redirect_uris: [this.redirect], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  state(): string {
    return 'sdk-state';
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string): void {
    this.verifier = v;
  }
  codeVerifier(): string {
    return this.verifier;
  }
}

/** A browser's cookie jar, enough for one origin. */
class Jar {
  private readonly cookies = new Map<string, string>();
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0]!;
      const i = pair.indexOf('=');
      if (/Max-Age=0(;|$)/i.test(c)) this.cookies.delete(pair.slice(0, i));
      else this.cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
  }
}

const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1];
const form = (v: Record<string, string>) => new URLSearchParams(v).toString();

describe('MCP OAuth against the gateway (SDK client, sign-in and consent page, tools/list)', () => {
  let h: Harness;
  let a: SeededOrg;
  let b: SeededOrg;
  let base: string;
  let su: Client;
  const redirectUrl = 'http://127.0.0.1:53683/callback';
  const open: McpClient[] = [];

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    h = await startHarness({ env: { STEWARD_PUBLIC_URL: base, STEWARD_EGRESS_ALLOW_HOSTS: '127.0.0.1' } });
    await new Promise<void>((resolve) => h.app.getHttpServer().listen(port, '127.0.0.1', resolve));
    a = await seedOrg(h.ds, 'acme-oauth');
    b = await seedOrg(h.ds, 'globex-oauth');
    const url = new URL(adminUrl());
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
  });
  afterEach(async () => {
    for (const c of open.splice(0)) {
      await (c.transport as StreamableHTTPClientTransport).terminateSession().catch(() => undefined);
      await c.close().catch(() => undefined);
    }
  });
  afterAll(async () => {
    await su?.end();
    await h?.close();
  });

  /** The browser: authorization endpoint → sign-in page → sign in → consent page → Allow/Deny → back to the client. */
  async function browse(authorizationUrl: URL, email: string, decision: 'approve' | 'deny' = 'approve'): Promise<URL> {
    const jar = new Jar();
    const start = await fetch(authorizationUrl, { redirect: 'manual' });
    expect(start.status).toBe(302);
    const pageUrl = new URL(start.headers.get('location')!);
    expect(pageUrl.origin + pageUrl.pathname).toBe(`${base}/oauth/consent`);
    const signInPage = await fetch(pageUrl, { headers: { cookie: jar.header() } });
    jar.take(signInPage);
    const signInHtml = await signInPage.text();
    expect(signInPage.status).toBe(200);
    expect(signInPage.headers.get('content-type')).toMatch(/^text\/html/);
    expect(signInPage.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(signInHtml).toContain('Sign in to Steward');
    const request = field(signInHtml, 'request')!;
    const signedIn = await fetch(`${base}/oauth/consent/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), origin: base, 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ request, csrf: field(signInHtml, 'csrf')!, email, password: PASSWORD }),
    });
    jar.take(signedIn);
    expect(signedIn.status).toBe(303);
    const consentPage = await fetch(new URL(signedIn.headers.get('location')!, base), { headers: { cookie: jar.header() } });
    const consentHtml = await consentPage.text();
    expect(consentPage.status).toBe(200);
    expect(consentHtml).toContain('Allow access?');
    expect(consentHtml).toContain(email);
    const decided = await fetch(`${base}/oauth/consent`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), origin: base, 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ request, csrf: field(consentHtml, 'csrf')!, decision }),
    });
    expect(decided.status).toBe(303);
    return new URL(decided.headers.get('location')!);
  }

  /** What an MCP client does from scratch: connect, get 401, run the OAuth flow (the person in the browser), connect again. */
  async function connectWithOAuth(email: string, name = 'Claude Desktop (sdk e2e)') {
    const provider = new MemoryAuthProvider(redirectUrl, name);
    const first = new McpClient({ name: 'sdk-oauth-e2e', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider });
    await expect(first.connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.info?.client_id).toMatch(/^mcp_/);
    const authorizationUrl = provider.authorizationUrl!;
    expect(authorizationUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorizationUrl.searchParams.get('resource')).toBe(`${base}/mcp`);
    const back = await browse(authorizationUrl, email);
    expect(back.origin + back.pathname).toBe(redirectUrl);
    expect(back.searchParams.get('state')).toBe('sdk-state');
    await transport.finishAuth(back.searchParams.get('code')!);
    expect(provider.saved?.access_token).toMatch(/^stm_/);
    expect(provider.saved?.refresh_token).toMatch(/^str_/);
    const client = new McpClient({ name: 'sdk-oauth-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider }));
    open.push(client);
    return { client, provider };
  }

  const initialize = (token: string, sessionId?: string) =>
    fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' } : {}) },
      body: JSON.stringify(sessionId ? { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} } : { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
  const metadataUrl = () => `resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`;

  it('an MCP client completes the OAuth flow against the gateway and lists tools; its calls are audited under the member and the client', async () => {
    const none = await fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe(`Bearer ${metadataUrl()}`);

    const { client, provider } = await connectWithOAuth(a.users.member.email);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['workspace-files__files_read', 'workspace-files__files_list']));
    const listed = await client.callTool({ name: 'workspace-files__files_list', arguments: {} });
    expect(listed.isError).toBeFalsy();

    const clientId = provider.info!.client_id;
    // The gate's events name the client (as for an API key: client "mcp", the session, and here the OAuth client);
    // the action is the member's own, in the member's org.
    const events = (await su.query(`SELECT org_id, canonical::jsonb AS e FROM audit_events WHERE canonical::jsonb->'payload'->'mcp'->>'oauthClientId' = $1`, [clientId])).rows as {
      org_id: string;
      e: { action: string; client: string; payload: { actionId: string; tool: string; mcp: { clientName: string }; credential?: { kind: string } } };
    }[];
    // The session's opening names the OAuth client and the kind of credential too.
    const opened = events.filter((ev) => ev.e.action === 'mcp.session_open');
    expect(opened.length).toBeGreaterThan(0);
    for (const ev of opened) expect(ev.e.payload).toMatchObject({ credential: { kind: 'mcp_token' }, mcp: { clientName: 'sdk-oauth-e2e' } });
    const gated = events.filter((ev) => ev.e.payload.actionId);
    expect(gated.length).toBeGreaterThan(0);
    for (const ev of gated) {
      expect(ev.org_id).toBe(a.id);
      expect(ev.e).toMatchObject({ client: 'mcp', payload: { tool: 'files.list', mcp: { clientName: 'sdk-oauth-e2e' } } });
      const [action] = (await su.query(`SELECT org_id, user_id FROM task_actions WHERE id = $1`, [ev.e.payload.actionId])).rows;
      expect(action).toEqual({ org_id: a.id, user_id: a.users.member.id });
    }
    const issued = (await su.query(`SELECT action FROM audit_events WHERE org_id = $1 AND canonical::jsonb->'payload'->>'clientId' = $2 ORDER BY occurred_at`, [a.id, clientId])).rows.map((r) => r.action);
    expect(issued).toEqual(expect.arrayContaining(['mcp_oauth.approve', 'mcp_oauth.token_issue']));
    expect(h.logs()).not.toContain(provider.saved!.access_token);
    expect(h.logs()).not.toContain(provider.saved!.refresh_token!);
  });

  it('rotates refresh tokens; a reused refresh token revokes its whole family; revocation ends a token at the gateway', async () => {
    const { provider } = await connectWithOAuth(a.users.member.email);
    const metadata = await discoverAuthorizationServerMetadata(base);
    const clientInformation = provider.info!;
    const first = provider.saved!;
    const second = await refreshAuthorization(base, { metadata, clientInformation, refreshToken: first.refresh_token! });
    expect(second.refresh_token).toMatch(/^str_/);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect((await initialize(second.access_token)).status).toBe(200);
    // The rotated token again: refused, and everything of that grant ends.
    await expect(refreshAuthorization(base, { metadata, clientInformation, refreshToken: first.refresh_token! })).rejects.toThrow(/already used|invalid_grant/i);
    const revoked = await initialize(second.access_token);
    expect(revoked.status).toBe(401);
    expect(revoked.headers.get('www-authenticate')).toBe(`Bearer ${metadataUrl()}, error="invalid_token"`);
    expect((await initialize(first.access_token)).status).toBe(401);
    await expect(refreshAuthorization(base, { metadata, clientInformation, refreshToken: second.refresh_token! })).rejects.toThrow(/revoked|invalid_grant/i);
    const reuse = (await su.query(`SELECT outcome FROM audit_events WHERE org_id = $1 AND action = 'mcp_oauth.refresh_reuse' AND canonical::jsonb->'payload'->>'clientId' = $2`, [a.id, clientInformation.client_id])).rows;
    expect(reuse).toEqual([{ outcome: 'denied' }]);

    // RFC 7009: revoking an access token ends it; revoking a refresh token ends the grant; unknown tokens answer 200 too.
    const other = await connectWithOAuth(a.users.member.email);
    const t = other.provider.saved!;
    const cid = other.provider.info!.client_id;
    expect((await initialize(t.access_token)).status).toBe(200);
    const byAnotherClient = await h.http.post('/oauth/revoke').type('form').send({ token: t.access_token, client_id: clientInformation.client_id });
    expect(byAnotherClient.status).toBe(200);
    expect((await initialize(t.access_token)).status).toBe(200);
    expect((await h.http.post('/oauth/revoke').type('form').send({ token: t.access_token, client_id: cid })).status).toBe(200);
    expect((await initialize(t.access_token)).status).toBe(401);
    expect((await h.http.post('/oauth/revoke').type('form').send({ token: t.refresh_token, client_id: cid, token_type_hint: 'refresh_token' })).status).toBe(200);
    await expect(refreshAuthorization(base, { metadata, clientInformation: other.provider.info!, refreshToken: t.refresh_token! })).rejects.toThrow(/revoked|invalid_grant/i);
    expect((await h.http.post('/oauth/revoke').type('form').send({ token: 'str_never-issued-token-value-xyz', client_id: cid })).status).toBe(200);
    expect((await h.http.post('/oauth/revoke').type('form').send({ client_id: cid })).status).toBe(400);
  });

  it('a grant lives at most 90 days however often it is refreshed, and ends when the member changes their password', async () => {
    const metadata = await discoverAuthorizationServerMetadata(base);
    const { provider } = await connectWithOAuth(a.users.approver.email);
    const info = provider.info!;
    const family = async () => (await su.query(`SELECT family_id FROM mcp_access_tokens WHERE org_id = $1 AND user_id = $2 ORDER BY created_at DESC LIMIT 1`, [a.id, a.users.approver.id])).rows[0].family_id as string;
    // On its 89th day, a refresh gives a token that lives only to the 90th.
    const fam = await family();
    await su.query(`UPDATE mcp_refresh_tokens SET created_at = created_at - interval '89 days' WHERE org_id = $1 AND family_id = $2`, [a.id, fam]);
    const late = await refreshAuthorization(base, { metadata, clientInformation: info, refreshToken: provider.saved!.refresh_token! });
    const [{ left }] = (await su.query(`SELECT extract(epoch FROM expires_at - now()) / 86400 AS left FROM mcp_refresh_tokens WHERE org_id = $1 AND family_id = $2 AND used_at IS NULL`, [a.id, fam])).rows;
    expect(Number(left)).toBeGreaterThan(0.9);
    expect(Number(left)).toBeLessThan(1.1);
    // Past its 90th day: refused, and every token of the grant ends.
    await su.query(`UPDATE mcp_refresh_tokens SET created_at = created_at - interval '2 days' WHERE org_id = $1 AND family_id = $2`, [a.id, fam]);
    await expect(refreshAuthorization(base, { metadata, clientInformation: info, refreshToken: late.refresh_token! })).rejects.toThrow(/older than 90 days|invalid_grant/i);
    expect((await initialize(late.access_token)).status).toBe(401);

    // A new grant; the member changes their password: the grant ends (the client approves again).
    const again = await connectWithOAuth(a.users.approver.email);
    expect((await initialize(again.provider.saved!.access_token)).status).toBe(200);
    const cookie = await login(h, a.users.approver.email);
    const changed = await h.http.post('/v1/auth/password').set('Cookie', cookie).send({ currentPassword: PASSWORD, newPassword: 'another passphrase for the approver' });
    expect(changed.status).toBe(204);
    try {
      expect((await initialize(again.provider.saved!.access_token)).status).toBe(401);
      await expect(refreshAuthorization(base, { metadata, clientInformation: again.provider.info!, refreshToken: again.provider.saved!.refresh_token! })).rejects.toThrow(/revoked|invalid_grant/i);
    } finally {
      const back = await h.http.post('/v1/auth/password').set('Cookie', cookie).send({ currentPassword: 'another passphrase for the approver', newPassword: PASSWORD });
      expect(back.status).toBe(204);
    }
  });

  it("lists the grants a member gave MCP clients; the member or an admin revokes one and its tokens end at the gateway; others neither see nor end it", async () => {
    const desk = await connectWithOAuth(a.users.member.email, 'Desk client (grants)');
    const ide = await connectWithOAuth(a.users.member.email, 'IDE client (grants)');
    const member = await login(h, a.users.member.email);
    type GrantView = { id: string; userId: string; clientId: string; clientName: string; status: string; createdAt: string; lastRefreshedAt: string; expiresAt: string; revokedAt: string | null };
    const mine = async (cookie: string, query: Record<string, string> = {}) => {
      const res = await h.http.get('/v1/mcp-grants').query(query).set('Cookie', cookie);
      expect(res.status).toBe(200);
      return res.body as { items: GrantView[]; total: number };
    };
    const listed = await mine(member);
    const deskGrant = listed.items.find((g) => g.clientId === desk.provider.info!.client_id)!;
    const ideGrant = listed.items.find((g) => g.clientId === ide.provider.info!.client_id)!;
    expect(deskGrant).toMatchObject({ userId: a.users.member.id, clientName: 'Desk client (grants)', status: 'active', revokedAt: null });
    expect(ideGrant).toMatchObject({ clientName: 'IDE client (grants)', status: 'active' });
    expect(Date.parse(deskGrant.expiresAt) - Date.parse(deskGrant.createdAt)).toBe(90 * 86_400_000);
    // Only the member's own: another member of the org sees none of them and cannot end them; nor can org B.
    const approver = await login(h, a.users.approver.email);
    expect((await mine(approver)).items.map((g) => g.userId).filter((u) => u !== a.users.approver.id)).toEqual([]);
    expect((await h.http.get('/v1/mcp-grants').query({ user: a.users.member.id }).set('Cookie', approver)).status).toBe(403);
    expect((await h.http.delete(`/v1/mcp-grants/${deskGrant.id}`).set('Cookie', approver)).status).toBe(404);
    const otherOrg = await login(h, b.users.owner.email);
    expect((await h.http.delete(`/v1/mcp-grants/${deskGrant.id}`).set('Cookie', otherOrg)).status).toBe(404);
    expect((await mine(otherOrg)).items.find((g) => g.id === deskGrant.id)).toBeUndefined();
    expect((await initialize(desk.provider.saved!.access_token)).status).toBe(200);

    // The member ends the desk client's grant: its access token, its refresh token and its open session stop working.
    expect((await h.http.delete(`/v1/mcp-grants/${deskGrant.id}`).set('Cookie', member)).status).toBe(204);
    expect((await initialize(desk.provider.saved!.access_token)).status).toBe(401);
    const metadata = await discoverAuthorizationServerMetadata(base);
    await expect(refreshAuthorization(base, { metadata, clientInformation: desk.provider.info!, refreshToken: desk.provider.saved!.refresh_token! })).rejects.toThrow(/revoked|invalid_grant/i);
    await new Promise((r) => setTimeout(r, 1100));
    await expect(desk.client.listTools()).rejects.toThrow();
    const again = await h.http.delete(`/v1/mcp-grants/${deskGrant.id}`).set('Cookie', member);
    expect(again.status).toBe(409);
    expect(again.headers['content-type']).toMatch(/^application\/problem\+json/);
    const [event] = (await su.query(`SELECT actor_id, target_id, canonical::jsonb->'payload' AS payload FROM audit_events WHERE org_id = $1 AND action = 'mcp_oauth.grant_revoke'`, [a.id])).rows;
    expect(event).toMatchObject({ actor_id: a.users.member.id, target_id: a.users.member.id, payload: { familyId: deskGrant.id, clientId: deskGrant.clientId, refreshTokensRevoked: 1, accessTokensRevoked: 1 } });

    // An admin ends the member's other grant (offboarding a lost laptop); the lists show what ended.
    const owner = await login(h, a.users.owner.email);
    const ofMember = await mine(owner, { user: a.users.member.id, status: 'active' });
    expect(ofMember.items.map((g) => g.id)).toContain(ideGrant.id);
    expect(ofMember.items.map((g) => g.id)).not.toContain(deskGrant.id);
    expect((await h.http.delete(`/v1/mcp-grants/${ideGrant.id}`).set('Cookie', owner)).status).toBe(204);
    expect((await initialize(ide.provider.saved!.access_token)).status).toBe(401);
    const ended = await mine(member, { status: 'revoked' });
    expect(ended.items.map((g) => g.id)).toEqual(expect.arrayContaining([deskGrant.id, ideGrant.id]));
    expect(ended.total).toBe(ended.items.length);
    expect((await mine(member, { status: 'active' })).items.map((g) => g.id)).not.toContain(deskGrant.id);
    for (const g of ended.items) expect(g.revokedAt).not.toBeNull();
    // Bad input changes nothing.
    expect((await h.http.get('/v1/mcp-grants').query({ status: 'gone' }).set('Cookie', member)).status).toBe(400);
    expect((await h.http.get('/v1/mcp-grants').query({ user: 'not-a-uuid' }).set('Cookie', owner)).status).toBe(400);
    expect((await h.http.delete('/v1/mcp-grants/not-a-uuid').set('Cookie', member)).status).toBe(404);
  });

  it('the calls-per-second limit holds per OAuth client and member: tokens got by refreshing do not multiply it', async () => {
    const { provider } = await connectWithOAuth(a.users.member.email, 'Rate-limited client');
    const metadata = await discoverAuthorizationServerMetadata(base);
    const first = provider.saved!;
    const second = await refreshAuthorization(base, { metadata, clientInformation: provider.info!, refreshToken: first.refresh_token! });
    const third = await refreshAuthorization(base, { metadata, clientInformation: provider.info!, refreshToken: second.refresh_token! });
    // Each token sends the whole per-second allowance (50 tool calls, in one JSON-RPC batch): together, over it.
    const batch = JSON.stringify(Array.from({ length: h.config.GATEWAY_CALLS_PER_SECOND }, (_, i) => ({ jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'x', arguments: {} } })));
    const send = (token: string) =>
      fetch(`${base}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: batch });
    const statuses: number[] = [];
    for (const t of [first, second, third]) {
      const res = await send(t.access_token);
      statuses.push(res.status);
      await res.text();
    }
    // (Three requests within a second: at least two fall in the same one-second window.)
    expect(statuses.filter((st) => st === 429).length).toBeGreaterThanOrEqual(1);
  });

  it('refuses an expired token, a token for another resource, and keeps an org A token out of org B', async () => {
    const inA = await connectWithOAuth(a.users.member.email, 'client in A');
    const inB = await connectWithOAuth(b.users.member.email, 'client in B');
    const tokenA = inA.provider.saved!.access_token;
    const tokenB = inB.provider.saved!.access_token;

    // The token is for the gateway alone: the REST API does not take it.
    const rest = await h.http.get('/v1/auth/session').set('Authorization', `Bearer ${tokenA}`);
    expect(rest.status).toBe(401);
    // Org A's token on org B's MCP session: not found (sessions belong to their org and user).
    const sessionB = (inB.client.transport as StreamableHTTPClientTransport).sessionId!;
    expect(sessionB).toBeTruthy();
    const crossed = await initialize(tokenA, sessionB);
    expect(crossed.status).toBe(404);
    expect((await initialize(tokenB, sessionB)).status).toBe(200);
    // What A's client did is in A's trail; nothing of it in B's.
    await inA.client.callTool({ name: 'workspace-files__files_list', arguments: {} });
    const trail = (await su.query(`SELECT org_id FROM audit_events WHERE canonical::jsonb->'payload'->'mcp'->>'oauthClientId' = $1`, [inA.provider.info!.client_id])).rows.map((r) => r.org_id);
    expect(trail.length).toBeGreaterThan(0);
    expect(new Set(trail)).toEqual(new Set([a.id]));

    // Issued for another resource (audience): refused with the challenge.
    await su.query(`UPDATE mcp_access_tokens SET resource = 'https://elsewhere.example/mcp' WHERE client_id = $1`, [inB.provider.info!.client_id]);
    const otherAudience = await initialize(tokenB);
    expect(otherAudience.status).toBe(401);
    expect(otherAudience.headers.get('www-authenticate')).toContain(metadataUrl());

    // Expired: refused (the clock is the database's; the token's expiry is moved into the past).
    expect((await initialize(tokenA)).status).toBe(200);
    await su.query(`UPDATE mcp_access_tokens SET expires_at = now() - interval '1 second' WHERE client_id = $1`, [inA.provider.info!.client_id]);
    const expired = await initialize(tokenA);
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toBe(`Bearer ${metadataUrl()}, error="invalid_token"`);
    expect((await expired.json()).detail).toMatch(/expired/);
    // A made-up token of the right shape, and an API key that does not exist: 401 with the challenge too.
    expect((await initialize('stm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).status).toBe(401);
    expect((await initialize('stw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).headers.get('www-authenticate')).toContain(metadataUrl());
  });

  it('the consent page refuses cross-site and forged forms, wrong passwords, and a denied consent returns access_denied', async () => {
    const provider = new MemoryAuthProvider(redirectUrl, 'Forms test');
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider });
    await expect(new McpClient({ name: 'x', version: '1' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    const start = await fetch(provider.authorizationUrl!, { redirect: 'manual' });
    const pageUrl = new URL(start.headers.get('location')!);
    const jar = new Jar();
    const page = await fetch(pageUrl);
    jar.take(page);
    const html = await page.text();
    const request = field(html, 'request')!;
    const csrf = field(html, 'csrf')!;
    const post = (path: string, body: Record<string, string>, headers: Record<string, string>) =>
      fetch(`${base}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString() });
    const creds = { request, csrf, email: a.users.member.email, password: PASSWORD };
    // Another site posting the form (its Origin), a post without the browser's binding cookie, a forged token.
    expect((await post('/oauth/consent/sign-in', creds, { cookie: jar.header(), origin: 'https://evil.example' })).status).toBe(403);
    expect((await post('/oauth/consent/sign-in', creds, { cookie: jar.header(), 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await post('/oauth/consent/sign-in', creds, {})).status).toBe(403);
    expect((await post('/oauth/consent/sign-in', { ...creds, csrf: 'forged' }, { cookie: jar.header() })).status).toBe(403);
    const wrong = await post('/oauth/consent/sign-in', { ...creds, password: 'not the password' }, { cookie: jar.header() });
    expect(wrong.status).toBe(401);
    const wrongHtml = await wrong.text();
    expect(wrongHtml).toContain('role="alert"');
    expect(wrongHtml).not.toContain('not the password');
    const ok = await post('/oauth/consent/sign-in', creds, { cookie: jar.header(), origin: base });
    expect(ok.status).toBe(303);
    jar.take(ok);
    // The consent form is bound to this session: a token made for another session is refused.
    const other = await login(h, a.users.admin.email);
    const otherPage = await fetch(pageUrl, { headers: { cookie: other } });
    const otherCsrf = field(await otherPage.text(), 'csrf')!;
    expect((await post('/oauth/consent', { request, csrf: otherCsrf, decision: 'approve' }, { cookie: jar.header() })).status).toBe(403);
    expect((await post('/oauth/consent', { request, csrf: otherCsrf, decision: 'approve' }, {})).status).toBe(401);
    const consent = await fetch(pageUrl, { headers: { cookie: jar.header() } });
    const consentCsrf = field(await consent.text(), 'csrf')!;
    expect((await post('/oauth/consent', { request, csrf: consentCsrf, decision: 'approve' }, { cookie: jar.header(), origin: 'https://evil.example' })).status).toBe(403);
    const denied = await post('/oauth/consent', { request, csrf: consentCsrf, decision: 'deny' }, { cookie: jar.header(), origin: base });
    expect(denied.status).toBe(303);
    const back = new URL(denied.headers.get('location')!);
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('code')).toBeNull();
    // Answered once: the page is gone.
    expect((await fetch(pageUrl, { headers: { cookie: jar.header() } })).status).toBe(404);
  });

  it("signs in through the org's single sign-on from the consent page (no password), then the client lists tools", async () => {
    const callbackUrl = `${base}/v1/auth/sso/callback`;
    const idp = await startIdp('steward-acme-oauth', 'idp-client-secret-for-mcp-consent', callbackUrl);
    h.onClose(() => idp.stop());
    const owner = await login(h, a.users.owner.email);
    expect((await h.http.put('/v1/org/sso').set('Cookie', owner).send({ issuer: idp.issuer, clientId: 'steward-acme-oauth', clientSecret: 'idp-client-secret-for-mcp-consent' })).status).toBe(200);
    await idp.setAccount('okta|carol', { email: 'carol@acme-oauth.example', email_verified: true, name: 'Carol Counsel' });

    const provider = new MemoryAuthProvider(redirectUrl, 'Claude Desktop (SSO)');
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider });
    await expect(new McpClient({ name: 'sso-e2e', version: '1' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    const jar = new Jar();
    const start = await fetch(provider.authorizationUrl!, { redirect: 'manual' });
    const pageUrl = new URL(start.headers.get('location')!);
    const page = await fetch(pageUrl);
    jar.take(page);
    const html = await page.text();
    expect(html).toContain('action="/oauth/consent/sso"');
    // The single sign-on form: a page that moves on to the org's provider (found by the email's domain).
    const sso = await fetch(`${base}/oauth/consent/sso`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), origin: base, 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ request: field(html, 'request')!, csrf: field(html, 'csrf')!, email: 'carol@acme-oauth.example' }),
    });
    expect(sso.status).toBe(200);
    const ssoCookie = sso.headers.getSetCookie().find((c) => c.startsWith('steward_sso='))!.split(';')[0]!;
    const toProvider = /http-equiv="refresh" content="0;url=([^"]+)"/.exec(await sso.text())![1]!.replace(/&amp;/g, '&');
    expect(toProvider.startsWith(idp.issuer)).toBe(true);
    // At the provider, then back to Steward's callback: signed in, and a page that returns to the consent page.
    const back = await browseUntil(toProvider, callbackUrl);
    const landed = await fetch(back, { redirect: 'manual', headers: { cookie: ssoCookie } });
    expect(landed.status).toBe(200);
    jar.take(landed);
    const landedHtml = await landed.text();
    const returnTo = /http-equiv="refresh" content="0;url=([^"]+)"/.exec(landedHtml)![1]!;
    expect(returnTo).toBe(`/oauth/consent?request=${field(html, 'request')}`);
    const consent = await fetch(new URL(returnTo, base), { headers: { cookie: jar.header() } });
    const consentHtml = await consent.text();
    expect(consentHtml).toContain('Allow access?');
    expect(consentHtml).toContain('carol@acme-oauth.example');
    const decided = await fetch(`${base}/oauth/consent`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), origin: base, 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ request: field(consentHtml, 'request')!, csrf: field(consentHtml, 'csrf')!, decision: 'approve' }),
    });
    expect(decided.status).toBe(303);
    await transport.finishAuth(new URL(decided.headers.get('location')!).searchParams.get('code')!);
    const client = new McpClient({ name: 'sso-e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider }));
    open.push(client);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('workspace-files__files_read');
    const [carol] = (await su.query(`SELECT u.id FROM users u JOIN memberships m ON m.user_id = u.id WHERE u.email = 'carol@acme-oauth.example' AND m.org_id = $1`, [a.id])).rows;
    expect((await resolveMcpToken(h.ds, h.config, provider.saved!.access_token, `${base}/mcp`))?.userId).toBe(carol.id);
  });
});
