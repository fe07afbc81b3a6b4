import type { AuditClient } from '@steward/db';
import type { AppAbility, PermissionRule } from '@steward/policy';

/** Who is calling, resolved once per request by the auth guard. Bound to one org. */
export interface Principal {
  kind: 'session' | 'api_key';
  orgId: string;
  userId: string;
  /** The session id or the API key id. */
  credentialId: string;
  /** The audit actor: the user for sessions, the key for API keys. */
  actorType: 'user' | 'api_key';
  actorId: string;
  roles: string[];
  rules: PermissionRule[];
  ability: AppAbility;
  /** When the second factor was last proven in this session. */
  mfaAt: Date | null;
  client: AuditClient;
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
