import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { AppError, type Config, ErrorCode, hashToken, newId, newToken, safeEqual, TokenPrefix } from '@steward/common';
import { type EntityManager, Membership } from '@steward/db';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG, REDIS } from '../core/tokens';
import type { AuthorizeQuery, CodeGrant, RefreshGrant, RegisterClientBody, RevokeBody, TokenBody } from './mcp-auth.schemas';
import { mcpIssuer, mcpResource } from './mcp-tokens';

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
/**
 * Takes a code once, atomically: deletes it and leaves "<family id>|<the code's grant>" under the
 * used-code key for the code's lifetime. KEYS: code, used code; ARGV: family id, seconds.
 */
const TAKE_CODE = `local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1] .. '|' .. v, 'EX', tonumber(ARGV[2]))
end
return v`;
const TOKEN_TTL_SECONDS = 3600;
const REFRESH_TTL_SECONDS = 30 * 24 * 3600;
/** A grant's whole life, however often it is refreshed: then the member approves the client again. */
export const GRANT_MAX_SECONDS = 90 * 24 * 3600;

interface Grant {
  orgId: string;
  userId: string;
  clientId: string;
  resource: string;
  scope: string;
}

interface RefreshRow {
  token_id: string;
  org_id: string;
  family_id: string;
  user_id: string;
  client_id: string;
  resource: string;
  scope: string;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
}

type Meta = { sourceIp: string | null; requestId: string };
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
    return mcpIssuer(this.config);
  }

  /** The protected resource: the MCP gateway's endpoint. */
  resource(): string {
    return mcpResource(this.config);
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
      grant_types_supported: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint: `${i}/oauth/revoke`,
      revocation_endpoint_auth_methods_supported: ['none'],
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
      grant_types: ['authorization_code', 'refresh_token'],
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
    // The API's own sign-in and consent page (server-rendered, see consent-page.ts).
    return `${this.issuer()}/oauth/consent?request=${id}`;
  }

  private key(kind: 'request' | 'code' | 'used-code' | 'reused-code', id: string): string {
    return `${this.config.REDIS_PREFIX}:mcp-oauth:${kind}:${createHash('sha256').update(id).digest('hex')}`;
  }

  async request(id: string) {
    const raw = await this.redis.get(this.key('request', id));
    if (!raw) throw AppError.notFound('authorization request');
    const r = JSON.parse(raw) as PendingAuthorization;
    return { id, clientId: r.clientId, clientName: r.clientName, redirectUri: r.redirectUri, scope: r.scope, resource: r.resource };
  }

  /** Who is about to consent, as the page shows it. */
  async who(p: Principal): Promise<{ email: string; orgName: string }> {
    return this.db.inOrg(p, async (em) => {
      const [u]: { email: string }[] = await em.query(`SELECT email FROM users WHERE id = $1`, [p.userId]);
      const [o]: { name: string }[] = await em.query(`SELECT name FROM orgs WHERE id = $1`, [p.orgId]);
      return { email: u?.email ?? '', orgName: o?.name ?? '' };
    });
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

  async token(body: z.infer<typeof TokenBody>, meta: Meta) {
    return body.grant_type === 'refresh_token' ? this.refresh(body, meta) : this.exchange(body, meta);
  }

  /**
   * Code + PKCE verifier → an access token bound to the member, the client and the resource, and the
   * first refresh token of a new family. A code is used once: taking it leaves in its place, for the
   * code's lifetime, the family its tokens get, so that a second use (the code leaked, and someone
   * raced or followed the client) ends every token issued with it (OAuth 2.1 §4.1.3).
   */
  private async exchange(body: CodeGrant, meta: Meta) {
    const familyId = newId();
    // Checked before it is taken: a request that cannot use the code (another client or redirect URI,
    // a wrong verifier — someone who saw the code but does not hold the verifier) leaves it to the
    // client it was issued to, instead of using it up and making that client's exchange look like a reuse.
    const seen = (await this.redis.get(this.key('code', body.code))) as string | null;
    if (seen) {
      const c = JSON.parse(seen) as IssuedCode;
      if (c.clientId !== body.client_id || c.redirectUri !== body.redirect_uri) throw new OAuthError(400, 'invalid_grant', 'The code was issued to another client or redirect URI.');
      if (!sha256(body.code_verifier).equals(Buffer.from(c.challenge, 'base64url'))) throw new OAuthError(400, 'invalid_grant', 'The code verifier does not match the challenge.');
      if (body.resource && body.resource.replace(/\/+$/, '') !== c.resource) throw new OAuthError(400, 'invalid_target', 'The resource differs from the authorized one.');
    }
    const raw = seen ? ((await this.redis.eval(TAKE_CODE, 2, this.key('code', body.code), this.key('used-code', body.code), familyId, CODE_TTL_SECONDS)) as string | null) : null;
    if (!raw) {
      await this.codeReused(body.code, meta);
      throw new OAuthError(400, 'invalid_grant', 'The code is unknown, expired or already used.');
    }
    const c = JSON.parse(raw) as IssuedCode;
    const view = await this.db.inOrg({ orgId: c.orgId, userId: c.userId }, async (em) => {
      const m = await em.findOneBy(Membership, { orgId: c.orgId, userId: c.userId });
      if (!m || m.status !== 'active') throw new OAuthError(400, 'invalid_grant', 'The member who approved is no longer active.');
      const issued = await this.issue(em, c, familyId);
      await this.audit.record(em, this.actor(c, meta), {
        action: 'mcp_oauth.token_issue',
        targetType: 'User',
        targetId: c.userId,
        payload: { tokenId: issued.tokenId, familyId, clientId: c.clientId, expiresInSeconds: TOKEN_TTL_SECONDS },
      });
      return issued.view;
    });
    // A second use that came while these tokens were being written found nothing committed to
    // revoke: it left its mark first, so whichever comes last ends the family (here, once committed).
    if (await this.redis.get(this.key('reused-code', body.code))) {
      await this.revokeFamily({ org_id: c.orgId, user_id: c.userId, family_id: familyId, client_id: c.clientId }, meta, 'mcp_oauth.code_reuse');
      throw new OAuthError(400, 'invalid_grant', 'The code was used twice; the tokens issued with it are revoked.');
    }
    return view;
  }

  /** An access token and a refresh token in one family (same transaction as the caller's audit event). */
  private async issue(em: EntityManager, g: Grant, familyId: string) {
    const access = newToken(TokenPrefix.Mcp);
    const refresh = newToken(TokenPrefix.McpRefresh);
    const tokenId = newId();
    await em.query(
      `INSERT INTO mcp_access_tokens (org_id, id, user_id, client_id, token_hash, resource, scope, expires_at, family_id) VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8), $9)`,
      [g.orgId, tokenId, g.userId, g.clientId, hashToken(this.config.STEWARD_TOKEN_PEPPER, access), g.resource, g.scope, TOKEN_TTL_SECONDS, familyId],
    );
    await em.query(
      // Each refresh token lives 30 days, and none past the grant's 90th day (counted from its first token).
      `INSERT INTO mcp_refresh_tokens (org_id, id, family_id, user_id, client_id, token_hash, resource, scope, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, least(now() + make_interval(secs => $9),
                 coalesce((SELECT min(f.created_at) FROM mcp_refresh_tokens f WHERE f.org_id = $1 AND f.family_id = $3), now()) + make_interval(secs => $10)))`,
      [g.orgId, newId(), familyId, g.userId, g.clientId, hashToken(this.config.STEWARD_TOKEN_PEPPER, refresh), g.resource, g.scope, REFRESH_TTL_SECONDS, GRANT_MAX_SECONDS],
    );
    return { tokenId, view: { access_token: access, token_type: 'Bearer' as const, expires_in: TOKEN_TTL_SECONDS, refresh_token: refresh, scope: g.scope } };
  }

  private actor(g: Pick<Grant, 'orgId' | 'userId'>, meta: Meta) {
    return { orgId: g.orgId, actorType: 'user' as const, actorId: g.userId, client: 'mcp' as const, sourceIp: meta.sourceIp, requestId: meta.requestId };
  }

  private async refreshRow(token: string): Promise<RefreshRow | undefined> {
    if (!token.startsWith(TokenPrefix.McpRefresh) || token.length > 200) return undefined;
    const rows: RefreshRow[] = await this.db.outsideOrg((em) => em.query('SELECT * FROM steward_auth_mcp_refresh($1)', [hashToken(this.config.STEWARD_TOKEN_PEPPER, token)]));
    return rows[0];
  }

  /** A code presented again: the family its first use got (if that use issued any tokens) ends. */
  private async codeReused(code: string, meta: Meta): Promise<void> {
    const used = await this.redis.get(this.key('used-code', code));
    if (!used) return;
    // The mark first, then the revocation: a first use still writing its tokens checks the mark
    // once they are committed (see exchange), so one of the two always ends them.
    await this.redis.set(this.key('reused-code', code), '1', 'EX', CODE_TTL_SECONDS);
    const cut = used.indexOf('|');
    const familyId = used.slice(0, cut);
    const c = JSON.parse(used.slice(cut + 1)) as IssuedCode;
    await this.revokeFamily({ org_id: c.orgId, user_id: c.userId, family_id: familyId, client_id: c.clientId }, meta, 'mcp_oauth.code_reuse');
  }

  /** Ends a whole family: every refresh token and every access token issued in it. */
  private async revokeFamily(
    row: Pick<RefreshRow, 'org_id' | 'user_id' | 'family_id' | 'client_id'>,
    meta: Meta,
    action: 'mcp_oauth.refresh_reuse' | 'mcp_oauth.code_reuse' | 'mcp_oauth.token_revoke' | 'mcp_oauth.grant_expired',
  ): Promise<void> {
    await this.db.inOrg({ orgId: row.org_id, userId: row.user_id }, async (em) => {
      const refresh = await em.query(`UPDATE mcp_refresh_tokens SET revoked_at = now() WHERE org_id = $1 AND family_id = $2 AND revoked_at IS NULL`, [row.org_id, row.family_id]);
      const access = await em.query(`UPDATE mcp_access_tokens SET revoked_at = now() WHERE org_id = $1 AND family_id = $2 AND revoked_at IS NULL`, [row.org_id, row.family_id]);
      await this.audit.record(em, this.actor({ orgId: row.org_id, userId: row.user_id }, meta), {
        action,
        targetType: 'User',
        targetId: row.user_id,
        outcome: action === 'mcp_oauth.token_revoke' ? 'success' : 'denied',
        payload: { familyId: row.family_id, clientId: row.client_id, kind: action === 'mcp_oauth.code_reuse' ? 'authorization_code' : 'refresh_token', refreshTokensRevoked: Number(refresh[1] ?? 0), accessTokensRevoked: Number(access[1] ?? 0) },
      });
    });
  }

  /**
   * Refresh-token rotation (OAuth 2.1 §4.3.1): the token is used once and replaced by the next of
   * its family; presenting a token that was already rotated means it leaked (or the client
   * misbehaves): the whole family is revoked, access tokens too, and the event is audited.
   */
  private async refresh(body: RefreshGrant, meta: Meta) {
    const row = await this.refreshRow(body.refresh_token);
    if (!row || row.client_id !== body.client_id) throw new OAuthError(400, 'invalid_grant', 'The refresh token is unknown or was issued to another client.');
    if (row.revoked_at) throw new OAuthError(400, 'invalid_grant', 'The refresh token was revoked.');
    if (row.used_at) {
      await this.revokeFamily(row, meta, 'mcp_oauth.refresh_reuse');
      throw new OAuthError(400, 'invalid_grant', 'The refresh token was already used; every token of this grant is now revoked.');
    }
    if (new Date(row.expires_at).getTime() <= Date.now()) throw new OAuthError(400, 'invalid_grant', 'The refresh token expired.');
    if (body.scope && body.scope.split(' ').some((s) => !row.scope.split(' ').includes(s))) throw new OAuthError(400, 'invalid_scope', 'A refresh cannot widen the scope.');
    if (body.resource && body.resource.replace(/\/+$/, '') !== row.resource) throw new OAuthError(400, 'invalid_target', 'The resource differs from the authorized one.');
    const outcome = await this.db.inOrg({ orgId: row.org_id, userId: row.user_id }, async (em) => {
      // Used once: of two concurrent refreshes with the same token, one wins and the other is a reuse.
      const claimed = await em.query(`UPDATE mcp_refresh_tokens SET used_at = now() WHERE org_id = $1 AND id = $2 AND used_at IS NULL AND revoked_at IS NULL RETURNING id`, [row.org_id, row.token_id]);
      if (!claimed[0]?.length) return 'reused' as const;
      const m = await em.findOneBy(Membership, { orgId: row.org_id, userId: row.user_id });
      if (!m || m.status !== 'active') return 'inactive' as const;
      const [age]: { over: boolean }[] = await em.query(`SELECT min(created_at) < now() - make_interval(secs => $3) AS over FROM mcp_refresh_tokens WHERE org_id = $1 AND family_id = $2`, [row.org_id, row.family_id, GRANT_MAX_SECONDS]);
      if (age?.over) return 'aged' as const;
      const issued = await this.issue(em, { orgId: row.org_id, userId: row.user_id, clientId: row.client_id, resource: row.resource, scope: row.scope }, row.family_id);
      await this.audit.record(em, this.actor({ orgId: row.org_id, userId: row.user_id }, meta), {
        action: 'mcp_oauth.token_refresh',
        targetType: 'User',
        targetId: row.user_id,
        payload: { tokenId: issued.tokenId, familyId: row.family_id, clientId: row.client_id, expiresInSeconds: TOKEN_TTL_SECONDS },
      });
      return issued.view;
    });
    if (outcome === 'reused') {
      await this.revokeFamily(row, meta, 'mcp_oauth.refresh_reuse');
      throw new OAuthError(400, 'invalid_grant', 'The refresh token was already used; every token of this grant is now revoked.');
    }
    if (outcome === 'inactive') throw new OAuthError(400, 'invalid_grant', 'The member who approved is no longer active.');
    if (outcome === 'aged') {
      await this.revokeFamily(row, meta, 'mcp_oauth.grant_expired');
      throw new OAuthError(400, 'invalid_grant', `The grant is older than ${GRANT_MAX_SECONDS / 86_400} days: the member approves the client again.`);
    }
    return outcome;
  }

  /**
   * RFC 7009: a refresh token ends its family, an access token itself. The answer is the same
   * whether or not the token was known (a client learns nothing), and a client can only revoke its own tokens.
   */
  async revoke(body: z.infer<typeof RevokeBody>, meta: Meta): Promise<void> {
    const refresh = body.token_type_hint !== 'access_token' || body.token.startsWith(TokenPrefix.McpRefresh) ? await this.refreshRow(body.token) : undefined;
    if (refresh) {
      if (refresh.client_id === body.client_id && !refresh.revoked_at) await this.revokeFamily(refresh, meta, 'mcp_oauth.token_revoke');
      return;
    }
    if (!body.token.startsWith(TokenPrefix.Mcp) || body.token.length > 200) return;
    const rows: { token_id: string; org_id: string; user_id: string; client_id: string }[] = await this.db.outsideOrg((em) =>
      em.query('SELECT token_id, org_id, user_id, client_id FROM steward_auth_mcp_token($1)', [hashToken(this.config.STEWARD_TOKEN_PEPPER, body.token)]),
    );
    const a = rows[0];
    if (!a || a.client_id !== body.client_id) return;
    await this.db.inOrg({ orgId: a.org_id, userId: a.user_id }, async (em) => {
      await em.query(`UPDATE mcp_access_tokens SET revoked_at = now() WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL`, [a.org_id, a.token_id]);
      await this.audit.record(em, this.actor({ orgId: a.org_id, userId: a.user_id }, meta), {
        action: 'mcp_oauth.token_revoke',
        targetType: 'User',
        targetId: a.user_id,
        payload: { tokenId: a.token_id, clientId: a.client_id, kind: 'access_token' },
      });
    });
  }

  /**
   * The consent page's CSRF token: an HMAC under the pepper of what binds the form to this
   * browser (its sign-in binding cookie, or its session) and to this authorization request.
   */
  csrfToken(binding: string, requestId: string): string {
    return createHmac('sha256', this.config.STEWARD_TOKEN_PEPPER).update(`mcp-consent\n${binding}\n${requestId}`).digest('base64url');
  }

  checkCsrf(binding: string, requestId: string, token: string): boolean {
    return safeEqual(Buffer.from(this.csrfToken(binding, requestId)), Buffer.from(token));
  }
}
