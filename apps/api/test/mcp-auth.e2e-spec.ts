import { createServer } from 'node:net';
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  exchangeAuthorization,
  registerClient,
  startAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { resolveMcpToken } from '../src/mcp-auth/mcp-tokens';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * The authorization-server side of the MCP authorization spec, driven by the MCP SDK's own
 * client functions (what Claude Desktop and other MCP clients run): protected resource and
 * authorization server metadata, dynamic registration, PKCE, the member's consent, the token,
 * and what the gateway checks with it. (Listing tools through the gateway belongs with the
 * gateway, built on another branch.)
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
    expect(metadata).toMatchObject({ issuer: base, code_challenge_methods_supported: ['S256'], registration_endpoint: `${base}/oauth/register` });
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
    // The code is single-use.
    await expect(exchangeAuthorization(as, { metadata, clientInformation, authorizationCode: back.searchParams.get('code')!, codeVerifier, redirectUri: redirectUrl })).rejects.toThrow();
    expect(h.logs()).not.toContain(tokens.access_token);
  });

  it('refuses a wrong PKCE verifier, and a suspended member\'s token stops working', async () => {
    const { as, metadata, clientInformation, authorizationUrl, codeVerifier } = await begin();
    const back = await consent(authorizationUrl);
    const wrong = `${codeVerifier.slice(0, -4)}AAAA`;
    await expect(exchangeAuthorization(as, { metadata, clientInformation, authorizationCode: back.searchParams.get('code')!, codeVerifier: wrong, redirectUri: redirectUrl })).rejects.toThrow(/verifier|invalid_grant/i);

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
