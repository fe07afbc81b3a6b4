import type { AuditClient } from '@steward/db';
import type { AppAbility, PermissionRule } from '@steward/policy';

/** Who is calling, resolved once per request by the auth guard. Bound to one org. */
export interface Principal {
  /** mcp_token: an OAuth access token a member granted an MCP client (accepted by the gateway only). */
  kind: 'session' | 'api_key' | 'mcp_token';
  orgId: string;
  userId: string;
  /** The session id, the API key id or the MCP access token id. */
  credentialId: string;
  /** The audit actor: the user for sessions and MCP tokens, the key for API keys. */
  actorType: 'user' | 'api_key';
  actorId: string;
  roles: string[];
  /** What the principal may do: the rules of its roles, within an API key's scopes. */
  rules: PermissionRule[];
  /** An API key limited to some scopes (not "*"): it acts with less than its member's roles, so it grants no role. */
  scoped?: boolean;
  ability: AppAbility;
  /** When the second factor was last proven in this session. */
  mfaAt: Date | null;
  client: AuditClient;
  /** The OAuth client (MCP client) the member let act for them, for mcp_token principals. */
  mcpClientId?: string;
  sourceIp: string | null;
  requestId: string;
}

/** The org's SCIM provisioning client, resolved from its bearer token on `/scim/v2` routes. */
export interface ScimCaller {
  orgId: string;
  tokenId: string;
  sourceIp: string | null;
  requestId: string;
}
