import { type Config, hashToken, TokenPrefix } from '@steward/common';
import { type DataSource, inOrg, outsideOrg } from '@steward/db';

/** The authorization server's issuer: Steward's public URL. */
export function mcpIssuer(config: Pick<Config, 'STEWARD_PUBLIC_URL' | 'PORT'>): string {
  return (config.STEWARD_PUBLIC_URL ?? `http://localhost:${config.PORT}`).replace(/\/+$/, '');
}

/** The protected resource (the audience every MCP access token is bound to): the gateway's endpoint. */
export function mcpResource(config: Pick<Config, 'STEWARD_PUBLIC_URL' | 'PORT'>): string {
  return `${mcpIssuer(config)}/mcp`;
}

/** What the gateway's 401 points MCP clients at (RFC 9728 §5.1). */
export function mcpChallenge(config: Pick<Config, 'STEWARD_PUBLIC_URL' | 'PORT'>, error?: 'invalid_token'): string {
  return `Bearer resource_metadata="${mcpIssuer(config)}/.well-known/oauth-protected-resource/mcp"${error ? `, error="${error}"` : ''}`;
}

export interface McpCaller {
  tokenId: string;
  orgId: string;
  userId: string;
  clientId: string;
}

/**
 * What the MCP gateway must check on every request (`Authorization: Bearer stm_...`):
 * the token is live (not expired, not revoked) through the narrow lookup, it was issued for this
 * gateway's resource URL (audience binding, RFC 8707), and the member is still active in the org
 * (SCIM deactivation or a suspension ends MCP access at once). Otherwise the gateway answers 401
 * with `WWW-Authenticate: Bearer resource_metadata="<public url>/.well-known/oauth-protected-resource/mcp"`.
 */
export async function resolveMcpToken(ds: DataSource, config: Pick<Config, 'STEWARD_TOKEN_PEPPER'>, token: string, resource: string): Promise<McpCaller | undefined> {
  if (!token.startsWith(TokenPrefix.Mcp) || token.length > 200) return undefined;
  const rows: { token_id: string; org_id: string; user_id: string; client_id: string; resource: string }[] = await outsideOrg(ds, (em) =>
    em.query('SELECT token_id, org_id, user_id, client_id, resource FROM steward_auth_mcp_token($1)', [hashToken(config.STEWARD_TOKEN_PEPPER, token)]),
  );
  const row = rows[0];
  if (!row || row.resource !== resource) return undefined;
  const [m]: { status: string }[] = await inOrg(ds, { orgId: row.org_id }, (em) => em.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [row.org_id, row.user_id]));
  if (m?.status !== 'active') return undefined;
  return { tokenId: row.token_id, orgId: row.org_id, userId: row.user_id, clientId: row.client_id };
}
