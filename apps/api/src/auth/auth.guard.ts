import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { AppError, type Config, hashToken, TokenPrefix } from '@steward/common';
import { ApiKey, Membership, User } from '@steward/db';
import { buildAbility, scopedRules } from '@steward/policy';
import { AccessService } from '../access/access.service';
import { Db } from '../core/db.service';
import { ENDPOINT, type EndpointSpec } from '../core/endpoint';
import { CONFIG } from '../core/tokens';
import type { Principal, ScimCaller } from './principal';

export const SESSION_COOKIE = 'steward_session';

/**
 * A cookie's value, or undefined when it is absent, malformed, or sent more than once: a sibling
 * host or port can set a same-named cookie with a longer path that the browser sends first, so of
 * two values neither is trusted (the caller is signed out, not signed in as the other).
 */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 8192) return undefined;
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || part.slice(0, eq).trim() !== name) continue;
    if (found !== undefined) return undefined;
    try {
      found = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return found;
}

export interface Credential {
  kind: 'session' | 'api_key' | 'mcp_token';
  id: string;
  orgId: string;
  userId: string;
  mfaAt: Date | null;
  scopes?: string[];
  /** For mcp_token: the OAuth client it was issued to. */
  clientId?: string;
}

/**
 * Resolves the caller from a session cookie or an API key (Authorization: Bearer stw_...)
 * through the narrow lookup functions, then loads its membership and roles in its org.
 * Deny by default: a route without an Endpoint spec is refused.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly db: Db,
    private readonly access: AccessService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const spec = this.reflector.get<EndpointSpec | undefined>(ENDPOINT, context.getHandler());
    if (!spec) throw AppError.notFound('route');
    if (spec.auth === 'public') return true;
    const req = context.switchToHttp().getRequest<Request>();
    if (spec.auth === 'scim') {
      req.scim = await this.scimCaller(req);
      return true;
    }
    const principal = await this.authenticate(req);
    if (spec.auth === 'session' && principal.kind !== 'session') {
      throw AppError.forbidden('This operation needs a console session, not an API key.');
    }
    req.principal = principal;
    return true;
  }

  /** The caller of a request, or of a credential resolved elsewhere (the MCP gateway resolves its OAuth tokens itself). */
  async authenticate(req: Request, resolved?: Credential): Promise<Principal> {
    const credential = resolved ?? (await this.credential(req));
    if (!credential) throw AppError.unauthenticated();
    return this.db.inOrg({ orgId: credential.orgId, userId: credential.userId }, async (em) => {
      // One connection, one query at a time (a transaction's queries are never concurrent).
      const membership = await em.findOneBy(Membership, { orgId: credential.orgId, userId: credential.userId });
      const user = await em.findOneBy(User, { id: credential.userId });
      if (!membership || !user) throw AppError.unauthenticated();
      if (membership.status !== 'active') throw AppError.forbidden('Your membership of this org is suspended.');
      const { roles, rules } = await this.access.roleSet(em, credential.orgId, credential.userId);
      if (credential.kind === 'api_key') {
        await em
          .createQueryBuilder()
          .update(ApiKey)
          .set({ lastUsedAt: () => 'now()' })
          .where('id = :id AND (last_used_at IS NULL OR last_used_at < now() - interval \'1 minute\')', { id: credential.id })
          .execute();
      }
      const ua = req.header('user-agent') ?? '';
      return {
        kind: credential.kind,
        orgId: credential.orgId,
        userId: credential.userId,
        credentialId: credential.id,
        actorType: credential.kind === 'api_key' ? 'api_key' : 'user',
        actorId: credential.kind === 'api_key' ? credential.id : credential.userId,
        roles,
        // Within the key's scopes: what a scoped key may hand out (roles, invitations, key scopes) is what it may do.
        rules: scopedRules(rules, credential.scopes),
        ...(credential.scopes && !credential.scopes.includes('*') ? { scoped: true } : {}),
        ability: buildAbility(rules, credential.userId, credential.scopes),
        mfaAt: credential.mfaAt,
        client: credential.kind === 'session' ? 'console' : credential.kind === 'mcp_token' ? 'mcp' : ua.startsWith('steward-cli') ? 'cli' : 'rest',
        ...(credential.clientId ? { mcpClientId: credential.clientId } : {}),
        sourceIp: req.ip ?? null,
        requestId: req.id,
      } satisfies Principal;
    });
  }

  /** The org's SCIM client, from its bearer token (never a session or an API key). */
  private async scimCaller(req: Request): Promise<ScimCaller> {
    const match = /^Bearer\s+(\S{1,200})$/i.exec(req.header('authorization') ?? '');
    const token = match?.[1];
    if (!token || !token.startsWith(TokenPrefix.Scim)) throw AppError.unauthenticated('SCIM needs the org\'s SCIM token: "Authorization: Bearer stp_...".');
    const rows: { token_id: string; org_id: string }[] = await this.db.outsideOrg((em) =>
      em.query('SELECT token_id, org_id FROM steward_auth_scim_token($1)', [hashToken(this.config.STEWARD_TOKEN_PEPPER, token)]),
    );
    const row = rows[0];
    if (!row) throw AppError.unauthenticated('The SCIM token is unknown or revoked.');
    await this.db.inOrg({ orgId: row.org_id }, (em) =>
      em.query(`UPDATE scim_tokens SET last_used_at = now() WHERE org_id = $1 AND id = $2 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, [row.org_id, row.token_id]),
    );
    return { orgId: row.org_id, tokenId: row.token_id, sourceIp: req.ip ?? null, requestId: req.id };
  }

  /**
   * A browser's state-changing request made by another page (a form or a script on another site,
   * or on a sibling host or port, to which SameSite cookies still go): refused when it rides on the
   * session cookie. The console's own proxy sends neither header (it calls from its server); a
   * browser sends both, and says where the page was.
   */
  private crossSite(req: Request): boolean {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return false;
    const site = req.header('sec-fetch-site');
    if (site && site !== 'same-origin' && site !== 'none') return true;
    const origin = req.header('origin');
    if (origin === undefined) return false;
    const own = [this.config.STEWARD_PUBLIC_URL, this.config.STEWARD_CONSOLE_URL, `${req.protocol}://${req.get('host') ?? ''}`].flatMap((u) => (u && URL.canParse(u) ? [new URL(u).origin] : []));
    return !own.includes(origin);
  }

  private async credential(req: Request): Promise<Credential | undefined> {
    const authorization = req.header('authorization');
    if (authorization) {
      const match = /^Bearer\s+(\S{1,200})$/i.exec(authorization);
      const token = match?.[1];
      if (!token || !token.startsWith(TokenPrefix.ApiKey)) throw AppError.unauthenticated('The Authorization header must be "Bearer stw_...".');
      const rows: { key_id: string; org_id: string; user_id: string; scopes: string[] }[] = await this.db.outsideOrg((em) =>
        em.query('SELECT key_id, org_id, user_id, scopes FROM steward_auth_api_key($1)', [hashToken(this.config.STEWARD_TOKEN_PEPPER, token)]),
      );
      const row = rows[0];
      if (!row) throw AppError.unauthenticated('The API key is unknown, expired or revoked.');
      return { kind: 'api_key', id: row.key_id, orgId: row.org_id, userId: row.user_id, mfaAt: null, scopes: row.scopes };
    }
    const cookie = readCookie(req, SESSION_COOKIE);
    if (cookie && cookie.startsWith(TokenPrefix.Session) && cookie.length <= 200) {
      if (this.crossSite(req)) throw AppError.forbidden('A state-changing request from another site is refused (CSRF): the console sends its requests through its own /api.');
      const rows: { session_id: string; org_id: string; user_id: string; mfa_at: Date | null }[] = await this.db.outsideOrg((em) =>
        em.query('SELECT session_id, org_id, user_id, mfa_at FROM steward_auth_session($1)', [hashToken(this.config.STEWARD_TOKEN_PEPPER, cookie)]),
      );
      const row = rows[0];
      if (row) return { kind: 'session', id: row.session_id, orgId: row.org_id, userId: row.user_id, mfaAt: row.mfa_at };
    }
    return undefined;
  }
}
