import { Injectable } from '@nestjs/common';
import { AppError } from '@steward/common';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { GRANT_MAX_SECONDS } from './mcp-auth.service';
import type { ListMcpGrantsQuery, McpGrantView } from './mcp-grants.schemas';

interface GrantRow {
  id: string;
  user_id: string;
  client_id: string;
  client_name: string | null;
  scope: string;
  resource: string;
  created_at: Date;
  last_refreshed_at: Date;
  revoked_at: Date | null;
  status: 'active' | 'expired' | 'revoked';
}

/**
 * The grants members gave MCP clients (one refresh-token family each), listed and revoked like
 * API keys and under the same permissions (`ApiKey`): both are bearer credentials of the gateway.
 * A revoked grant ends every token issued under it; a gateway session open with one of them is
 * refused from its next request (within a second).
 */
@Injectable()
export class McpGrantsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  async list(p: Principal, q: z.infer<typeof ListMcpGrantsQuery>) {
    const reach = this.access.reach(p, 'read', 'ApiKey');
    if (reach === 'none') await this.access.authorize(p, 'read', 'ApiKey');
    if (reach === 'own' && q.user && q.user !== p.userId) throw AppError.forbidden("Your roles allow listing only your own MCP clients' grants.");
    const user = reach === 'own' ? p.userId : (q.user ?? null);
    return this.db.inOrg(p, async (em) => {
      // One row per family; `status` from its tokens: active while an unused refresh token is live.
      const grants = `
        WITH g AS (
          SELECT r.family_id AS id, r.user_id, r.client_id, c.client_name, r.scope, r.resource,
                 min(r.created_at) AS created_at, max(r.created_at) AS last_refreshed_at, max(r.revoked_at) AS revoked_at,
                 bool_or(r.revoked_at IS NULL AND r.used_at IS NULL AND r.expires_at > now()) AS live
            FROM mcp_refresh_tokens r JOIN mcp_oauth_clients c ON c.id = r.client_id
           WHERE r.org_id = $1 AND ($2::uuid IS NULL OR r.user_id = $2::uuid)
           GROUP BY r.family_id, r.user_id, r.client_id, c.client_name, r.scope, r.resource)
        SELECT g.*, CASE WHEN g.live THEN 'active' WHEN g.revoked_at IS NOT NULL THEN 'revoked' ELSE 'expired' END AS status
          FROM g WHERE $3::text IS NULL OR (CASE WHEN g.live THEN 'active' WHEN g.revoked_at IS NOT NULL THEN 'revoked' ELSE 'expired' END) = $3::text`;
      const params = [p.orgId, user, q.status ?? null];
      const rows: GrantRow[] = await em.query(`${grants} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5`, [...params, q.limit, q.offset]);
      const [{ n }]: { n: string }[] = await em.query(`SELECT count(*) AS n FROM (${grants}) x`, params);
      return { items: rows.map(view), total: Number(n), limit: q.limit, offset: q.offset };
    });
  }

  /** Ends a grant: every refresh and access token issued under it, at once. 409 when it had already ended. */
  async revoke(p: Principal, id: string): Promise<void> {
    await this.db.inOrg(p, async (em) => {
      const [g]: { user_id: string; client_id: string }[] = await em.query(`SELECT user_id, client_id FROM mcp_refresh_tokens WHERE org_id = $1 AND family_id = $2 LIMIT 1`, [p.orgId, id]);
      if (!g) throw AppError.notFound('MCP grant');
      await this.access.authorize(p, 'revoke', 'ApiKey', { id, userId: g.user_id });
      // Row locks make a concurrent revocation wait and then find nothing left to end (409).
      const refresh = await em.query(`UPDATE mcp_refresh_tokens SET revoked_at = now() WHERE org_id = $1 AND family_id = $2 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > now()`, [p.orgId, id]);
      const access = await em.query(`UPDATE mcp_access_tokens SET revoked_at = now() WHERE org_id = $1 AND family_id = $2 AND revoked_at IS NULL AND expires_at > now()`, [p.orgId, id]);
      const ended = { refresh: Number(refresh[1] ?? 0), access: Number(access[1] ?? 0) };
      if (ended.refresh + ended.access === 0) throw AppError.conflict('The grant has already ended: the client holds no token that works.');
      await this.audit.record(em, p, {
        action: 'mcp_oauth.grant_revoke',
        targetType: 'User',
        targetId: g.user_id,
        payload: { familyId: id, clientId: g.client_id, refreshTokensRevoked: ended.refresh, accessTokensRevoked: ended.access },
      });
    });
  }
}

function view(r: GrantRow): z.infer<typeof McpGrantView> {
  const created = new Date(r.created_at);
  return {
    id: r.id,
    userId: r.user_id,
    clientId: r.client_id,
    clientName: r.client_name,
    scope: r.scope,
    resource: r.resource,
    status: r.status,
    createdAt: created.toISOString(),
    lastRefreshedAt: new Date(r.last_refreshed_at).toISOString(),
    expiresAt: new Date(created.getTime() + GRANT_MAX_SECONDS * 1000).toISOString(),
    revokedAt: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
  };
}
