import { z } from 'zod';
import { PageQuery, Timestamp, Uuid } from '../core/schemas';

/**
 * A grant: what a member allowed one MCP client (Claude Desktop, an IDE) on the consent page, with
 * every access and refresh token issued under it since (one refresh-token family).
 */
export const McpGrantView = z.strictObject({
  id: Uuid,
  userId: Uuid,
  clientId: z.string().max(100),
  /** The name the client registered itself under (chosen by the client: shown, never trusted). */
  clientName: z.string().max(200).nullable(),
  scope: z.string().max(200),
  resource: z.string().max(2000),
  /** `active` while the client can still get tokens; `revoked` once ended (by the member, an admin, reuse, a password change); else `expired`. */
  status: z.enum(['active', 'expired', 'revoked']),
  /** When the member consented. */
  createdAt: Timestamp,
  /** When the client last got a new token (its consent or its latest refresh). */
  lastRefreshedAt: Timestamp,
  /** The grant's end: 90 days after the consent, however often it is refreshed. */
  expiresAt: Timestamp,
  revokedAt: Timestamp.nullable(),
});

export const ListMcpGrantsQuery = PageQuery.extend({
  status: z.enum(['active', 'expired', 'revoked']).optional(),
  /** Only this member's grants (everyone's needs the permission to read every API key). */
  user: Uuid.optional(),
});
