import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { AppError, type Config, ErrorCode, hashToken, newId, newToken, TokenPrefix } from '@steward/common';
import { Membership } from '@steward/db';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG, REDIS } from '../core/tokens';
import type { AuthorizeQuery, RegisterClientBody, TokenBody } from './mcp-auth.schemas';

/** An OAuth error (RFC 6749 §5.2 `error`), rendered beside the problem's fields. */
export class OAuthError extends AppError {
  constructor(status: number, readonly oauthError: string, detail: string) {
    super(status, status === 401 ? ErrorCode.Unauthenticated : ErrorCode.ValidationFailed, status === 401 ? 'Unauthenticated' : 'Bad request', detail);
  }
}

interface PendingAuthorization {
  clientId: string;
  clientName: string | null;
  redirectUri: string;
  challenge: string;
  state?: string;
  scope: string;
  resource: string;
}

interface IssuedCode extends PendingAuthorization {
  orgId: string;
  userId: string;
}

export const MCP_SCOPE = 'mcp';
const REQUEST_TTL_SECONDS = 600;
const CODE_TTL_SECONDS = 60;
const TOKEN_TTL_SECONDS = 3600;
const sha256 = (v: string) => createHash('sha256').update(v).digest();

/** Redirect URIs a public client may register: https, or http on loopback (native apps, RFC 8252). */
function acceptableRedirect(uri: string): boolean {
  const u = new URL(uri);
  if (u.hash || u.username || u.password) return false;
  return u.protocol === 'https:' || (u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname));
}

/**
 * The authorization-server side of the MCP authorization spec (OAuth 2.1): metadata
 * (RFC 9728, RFC 8414), dynamic client registration (RFC 7591, public clients), authorization
 * code with PKCE S256 only, consent by a signed-in member in the console, and access tokens
 * bound to (org, user, client, resource) that the MCP gateway resolves with
 * `steward_auth_mcp_token` (see `resolveMcpToken`).
 */
@Injectable()
export class McpAuthService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  issuer(): string {
    return (this.config.STEWARD_PUBLIC_URL ?? `http://localhost:${this.config.PORT}`).replace(/\/+$/, '');
  }

  /** The protected resource: the MCP gateway's endpoint. */
  resource(): string {
    return `${this.issuer()}/mcp`;
  }

  protectedResourceMetadata() {
    return { resource: this.resource(), authorization_servers: [this.issuer()], scopes_supported: [MCP_SCOPE], bearer_methods_supported: ['header'], resource_name: 'Steward MCP gateway' };
  }

  authorizationServerMetadata() {
    const i = this.issuer();
    return {
      issuer: i,
      authorization_endpoint: `${i}/oauth/authorize`,
      token_endpoint: `${i}/oauth/token`,
      registration_endpoint: `${i}/oauth/register`,
      scopes_supported: [MCP_SCOPE],
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code'],
      token_endpoint_auth_methods_supported: ['none'],
      code_challenge_methods_supported: ['S256'],
    };
  }

  async register(body: z.infer<typeof RegisterClientBody>, meta: { sourceIp: string | null }) {
    const bad = body.redirect_uris.find((u) => !acceptableRedirect(u));
    if (bad) throw new OAuthError(400, 'invalid_redirect_uri', 'Redirect URIs must be https, or http on a loopback address.');
    const clientId = `mcp_${randomBytes(18).toString('base64url')}`;
    const [row]: { created_at: Date }[] = await this.db.outsideOrg((em) =>
      em.query(`INSERT INTO mcp_oauth_clients (id, client_name, redirect_uris) VALUES ($1, $2, $3) RETURNING created_at`, [clientId, body.client_name ?? null, body.redirect_uris]),
    );
    void meta;
    return {
      client_id: clientId,
      client_id_issued_at: Math.floor(new Date(row!.created_at).getTime() / 1000),
      client_name: body.client_name,
      redirect_uris: body.redirect_uris,
      token_endpoint_auth_method: 'none' as const,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      scope: MCP_SCOPE,
    };
  }

  private async client(clientId: string): Promise<{ id: string; client_name: string | null; redirect_uris: string[] } | undefined> {
    const rows = await this.db.outsideOrg((em) => em.query(`SELECT id, client_name, redirect_uris FROM mcp_oauth_clients WHERE id = $1`, [clientId]));
    return rows[0];
  }

  /**
   * Checks the request (an unknown client or redirect URI is answered here, never redirected to),
   * keeps it for ten minutes and sends the browser to the console's consent page.
   */
  async authorize(q: z.infer<typeof AuthorizeQuery>): Promise<string> {
    const client = await this.client(q.client_id);
    if (!client) throw new OAuthError(400, 'invalid_client', 'Unknown client_id.');
    if (!client.redirect_uris.includes(q.redirect_uri)) throw new OAuthError(400, 'invalid_request', 'redirect_uri is not one the client registered.');
    if (q.resource && q.resource.replace(/\/+$/, '') !== this.resource()) throw new OAuthError(400, 'invalid_target', `The only resource here is ${this.resource()}.`);
    const scope = q.scope ?? MCP_SCOPE;
    if (scope.split(' ').some((s) => s !== MCP_SCOPE)) throw new OAuthError(400, 'invalid_scope', `The only scope is "${MCP_SCOPE}".`);
    const id = randomBytes(24).toString('base64url');
    const pending: PendingAuthorization = { clientId: client.id, clientName: client.client_name, redirectUri: q.redirect_uri, challenge: q.code_challenge, state: q.state, scope, resource: this.resource() };
    await this.redis.set(this.key('request', id), JSON.stringify(pending), 'EX', REQUEST_TTL_SECONDS);
    const console = (this.config.STEWARD_CONSOLE_URL ?? this.issuer()).replace(/\/+$/, '');
    return `${console}/oauth/consent?request=${id}`;
  }

  private key(kind: 'request' | 'code', id: string): string {
    return `${this.config.REDIS_PREFIX}:mcp-oauth:${kind}:${createHash('sha256').update(id).digest('hex')}`;
  }

  async request(id: string) {
    const raw = await this.redis.get(this.key('request', id));
    if (!raw) throw AppError.notFound('authorization request');
    const r = JSON.parse(raw) as PendingAuthorization;
    return { id, clientId: r.clientId, clientName: r.clientName, redirectUri: r.redirectUri, scope: r.scope, resource: r.resource };
  }

  /** The signed-in member approves (a code for their org and user) or denies; the request is used once. */
  async decide(p: Principal, id: string, approve: boolean): Promise<{ redirectTo: string }> {
    const raw = await this.redis.getdel(this.key('request', id));
    if (!raw) throw AppError.notFound('authorization request');
    const r = JSON.parse(raw) as PendingAuthorization;
    const back = new URL(r.redirectUri);
    if (r.state !== undefined) back.searchParams.set('state', r.state);
    back.searchParams.set('iss', this.issuer());
    await this.db.inOrg(p, (em) =>
      this.audit.record(em, p, { action: approve ? 'mcp_oauth.approve' : 'mcp_oauth.deny', targetType: 'User', targetId: p.userId, payload: { clientId: r.clientId, clientName: r.clientName, redirectHost: back.host } }),
    );
    if (!approve) {
      back.searchParams.set('error', 'access_denied');
      return { redirectTo: back.href };
    }
    const code = randomBytes(32).toString('base64url');
    const issued: IssuedCode = { ...r, orgId: p.orgId, userId: p.userId };
    await this.redis.set(this.key('code', code), JSON.stringify(issued), 'EX', CODE_TTL_SECONDS);
    back.searchParams.set('code', code);
    return { redirectTo: back.href };
  }

  /** Code + PKCE verifier → an access token bound to the member, the client and the resource. */
  async token(body: z.infer<typeof TokenBody>, meta: { sourceIp: string | null; requestId: string }) {
    const raw = await this.redis.getdel(this.key('code', body.code));
    if (!raw) throw new OAuthError(400, 'invalid_grant', 'The code is unknown, expired or already used.');
    const c = JSON.parse(raw) as IssuedCode;
    if (c.clientId !== body.client_id || c.redirectUri !== body.redirect_uri) throw new OAuthError(400, 'invalid_grant', 'The code was issued to another client or redirect URI.');
    if (!sha256(body.code_verifier).equals(Buffer.from(c.challenge, 'base64url'))) throw new OAuthError(400, 'invalid_grant', 'The code verifier does not match the challenge.');
    if (body.resource && body.resource.replace(/\/+$/, '') !== c.resource) throw new OAuthError(400, 'invalid_target', 'The resource differs from the authorized one.');
    const token = newToken(TokenPrefix.Mcp);
    await this.db.inOrg({ orgId: c.orgId, userId: c.userId }, async (em) => {
      const m = await em.findOneBy(Membership, { orgId: c.orgId, userId: c.userId });
      if (!m || m.status !== 'active') throw new OAuthError(400, 'invalid_grant', 'The member who approved is no longer active.');
      const id = newId();
      await em.query(
        `INSERT INTO mcp_access_tokens (org_id, id, user_id, client_id, token_hash, resource, scope, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))`,
        [c.orgId, id, c.userId, c.clientId, hashToken(this.config.STEWARD_TOKEN_PEPPER, token), c.resource, c.scope, TOKEN_TTL_SECONDS],
      );
      await this.audit.record(
        em,
        { orgId: c.orgId, actorType: 'user', actorId: c.userId, client: 'mcp', sourceIp: meta.sourceIp, requestId: meta.requestId },
        { action: 'mcp_oauth.token_issue', targetType: 'User', targetId: c.userId, payload: { tokenId: id, clientId: c.clientId, expiresInSeconds: TOKEN_TTL_SECONDS } },
      );
    });
    return { access_token: token, token_type: 'Bearer' as const, expires_in: TOKEN_TTL_SECONDS, scope: c.scope };
  }
}
