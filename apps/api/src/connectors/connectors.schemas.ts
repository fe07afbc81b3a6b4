import { ACTION_TYPE_NAMES } from '@steward/policy';
import { extractSchema } from '@steward/connectors';
import { z } from 'zod';
import { secretInput, Timestamp, Uuid } from '../core/schemas';

/** A secret sent in an HTTP header: no control characters (a header cannot hold them). */
const headerSecret = secretInput(1, 4096).refine((v) => ![...v].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f), { message: 'must not contain control characters (line breaks, tabs, NUL)' });

const HttpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2000);
/** Words of query parameter names that carry a secret (a key, token, password, signature, session). */
const SECRET_WORDS = new Set(['key', 'apikey', 'token', 'accesstoken', 'secret', 'password', 'passwd', 'pwd', 'pass', 'sig', 'signature', 'auth', 'authorization', 'session', 'sessionid', 'credential', 'credentials', 'jwt', 'bearer']);
/** Whether a parameter name is, or has a word that is, one of SECRET_WORDS ("api_key", "accessToken", "X-Api-Key"; not "assignee" or "keyword"). */
const secretParam = (name: string): boolean => {
  const spaced = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return SECRET_WORDS.has(spaced.replace(/[^a-z0-9]/g, '')) || spaced.split(/[^a-z0-9]+/).some((w) => SECRET_WORDS.has(w));
};
/**
 * A remote MCP server's endpoint: shown to every member and written to the audit trail, so it must
 * not carry a secret. No user:password, no fragment, and no query parameter named like a key or
 * token: such a secret goes in the connector's credential (auth kind api_key, sent in a header).
 */
const ServerUrl = HttpUrl.superRefine((v, ctx) => {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return; // HttpUrl said why.
  }
  if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'must not carry a user name or password: give the secret as the connector credential (auth kind api_key)' });
  if (u.hash) ctx.addIssue({ code: 'custom', message: 'must not have a fragment (#...)' });
  const secret = [...u.searchParams.keys()].find(secretParam);
  if (secret !== undefined) {
    ctx.addIssue({ code: 'custom', message: `must not carry a secret in its query string ("${secret.slice(0, 40)}"): members see the URL and the audit trail records it; give the secret as the connector credential (auth kind api_key, sent in a header)` });
  }
});
const Text = (max: number) => z.string().max(max);
export const ActionTypeName = z.enum(ACTION_TYPE_NAMES as [string, ...string[]]);
const ToolName = z.string().max(200);
const HeaderName = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'a header name: letters, digits and "-"').max(64);

export const AuthInput = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  /** A secret sent in a header (default "Authorization: Bearer <secret>"). */
  z.strictObject({ kind: z.literal('api_key'), header: HeaderName.optional(), scheme: z.string().regex(/^[A-Za-z0-9_-]{0,32}$/).max(32).optional() }),
  z.strictObject({
    kind: z.literal('oauth2'),
    authorizationUrl: HttpUrl,
    tokenUrl: HttpUrl,
    clientId: z.string().min(1).max(500),
    /** Write-only: kept in the vault as the connector's OAuth client credential. */
    clientSecret: secretInput(1, 2000).optional(),
    scopes: z.array(z.string().min(1).max(200)).max(50).optional(),
    /** RFC 7009 revocation endpoint: revoking the credential then revokes the grant at the provider too. */
    revocationUrl: HttpUrl.optional(),
  }),
]);

export const AuthView = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  z.strictObject({ kind: z.literal('api_key'), header: Text(64), scheme: Text(32) }),
  z.strictObject({ kind: z.literal('oauth2'), authorizationUrl: Text(2000), tokenUrl: Text(2000), revocationUrl: Text(2000).nullable(), clientId: Text(500), scopes: z.array(Text(200)).max(50), hasClientSecret: z.boolean() }),
]);

export const InstallConnectorBody = z
  .strictObject({
    /** A catalog entry (built-in or partner); omit to register any remote MCP server by URL. */
    catalogId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/).max(64).optional(),
    name: z.string().trim().min(1).max(200).optional(),
    /** The remote MCP server's Streamable HTTP endpoint. */
    url: ServerUrl.optional(),
    auth: AuthInput.optional(),
    credentialScope: z.enum(['org', 'user']).optional(),
  })
  .refine((v) => v.catalogId !== undefined || (v.url !== undefined && v.name !== undefined), { message: 'give a catalogId, or a name and url of a remote MCP server' });

export const ConnectorView = z.strictObject({
  id: Uuid,
  catalogId: Text(64).nullable(),
  kind: z.enum(['builtin', 'remote']),
  name: Text(200),
  url: Text(2000).nullable(),
  auth: AuthView,
  credentialScope: z.enum(['org', 'user']),
  status: z.enum(['active', 'unreachable', 'needs_credential']),
  lastError: Text(1000).nullable(),
  discoveredAt: Timestamp.nullable(),
  tools: z.strictObject({ total: z.int().min(0), approved: z.int().min(0), held: z.int().min(0), pending: z.int().min(0) }),
  /** The MCP gateway relays this upstream's sampling requests (it asks the user's model to write text) to the client. */
  relaySampling: z.boolean(),
  /** The MCP gateway relays this upstream's elicitation requests (it asks the user for input) to the client. */
  relayElicitation: z.boolean(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
/** An admin's settings of an installed connector (each change audited as `connector.update`). */
export const UpdateConnectorBody = z
  .strictObject({
    /** Relay the upstream's sampling/createMessage requests to the MCP client (default false). */
    relaySampling: z.boolean().optional(),
    /** Relay the upstream's elicitation/create requests to the MCP client (default false). */
    relayElicitation: z.boolean().optional(),
  })
  .refine((v) => v.relaySampling !== undefined || v.relayElicitation !== undefined, { message: 'give relaySampling or relayElicitation' });

export const ConnectorList = z.strictObject({ items: z.array(ConnectorView).max(200) });

export const CatalogEntry = z.strictObject({
  id: Text(64),
  name: Text(200),
  vendor: Text(200),
  description: Text(2000).nullable(),
  runtime: z.enum(['builtin', 'remote']),
  url: Text(2000).nullable(),
  auth: z.enum(['none', 'api_key', 'oauth2']),
  credentialScope: z.enum(['org', 'user']),
  tools: z.array(z.strictObject({ name: Text(64), description: Text(4000), action: Text(64) })).max(200),
});
export const CatalogList = z.strictObject({ items: z.array(CatalogEntry).max(200) });

const Flag = z.strictObject({ where: Text(500), reason: Text(200), excerpt: Text(1000) });
const Diff = z.strictObject({ path: Text(1000), kind: z.enum(['added', 'removed', 'changed']), before: z.unknown().optional(), after: z.unknown().optional() });

export const ToolView = z.strictObject({
  name: ToolName,
  title: Text(200).nullable(),
  description: Text(20_000),
  inputSchema: z.record(z.string().max(200), z.unknown()),
  hash: Text(80),
  /** The action type the gate decides it as: "unknown" (Watched by default) until an admin maps it. */
  action: Text(64),
  extract: z.record(z.string().max(64), z.unknown()).nullable(),
  /** approved: pinned and served; pending: new, never approved; held: changed since approval (diff) or held by an admin; removed: gone upstream. */
  status: z.enum(['pending', 'approved', 'held', 'removed']),
  approvedHash: Text(80).nullable(),
  approvedAt: Timestamp.nullable(),
  approvedBy: Uuid.nullable(),
  /** Changes since the approved definition. */
  diff: z.array(Diff).max(500),
  /** Text aimed at the model found in the description or schema. */
  flags: z.array(Flag).max(100),
  updatedAt: Timestamp,
});
export const ToolList = z.strictObject({ items: z.array(ToolView).max(1000) });

export const DiscoveryView = z.strictObject({
  connector: ConnectorView,
  added: z.array(ToolName).max(1000),
  changed: z.array(ToolName).max(1000),
  removed: z.array(ToolName).max(1000),
  unchanged: z.array(ToolName).max(1000),
});

export const MapToolBody = z
  .strictObject({
    action: ActionTypeName.optional(),
    extract: extractSchema.nullable().optional(),
  })
  .refine((v) => Object.keys(v).length > 0, { message: 'nothing to change' });

export const ApproveToolBody = z.strictObject({
  /** The definition hash the admin reviewed: approval fails if the tool changed meanwhile. */
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'the tool\'s "hash" as listed').max(80),
  action: ActionTypeName.optional(),
});

export const HoldToolBody = z.strictObject({ reason: z.string().trim().min(1).max(500) });

export const EgressHosts = z.strictObject({
  /**
   * Hosts this org's connectors and notices may reach on non-public addresses (names, IPs or
   * *.domain), inside the ranges the operator lets orgs open (`orgRanges`). Link-local and cloud
   * metadata addresses stay refused.
   */
  hosts: z.array(z.string().trim().toLowerCase().regex(/^(\*\.)?[a-z0-9.:_[\]-]{1,253}$/, 'a host name, an IP address or *.domain').max(255)).max(100),
});
export const EgressHostsView = z.strictObject({
  hosts: z.array(Text(255)).max(100),
  /** From the operator's STEWARD_EGRESS_ALLOW_HOSTS (read-only here). */
  operatorHosts: z.array(Text(255)).max(500),
  /** The operator's STEWARD_EGRESS_ORG_RANGES: the only non-public addresses `hosts` can open (empty: none). */
  orgRanges: z.array(Text(64)).max(500),
});

export const SetCredentialBody = z.strictObject({
  /** "org": the connector's shared credential (admins); "user": the caller's own. Default: the connector's scope. */
  scope: z.enum(['org', 'user']).optional(),
  /** Write-only: an API key or token. Never returned, logged or audited. */
  secret: headerSecret,
});
export const RotateCredentialBody = z.strictObject({ secret: headerSecret.optional() });

export const CredentialView = z.strictObject({
  id: Uuid,
  connectorId: Uuid,
  /** null for the org's shared credential. */
  userId: Uuid.nullable(),
  kind: z.enum(['secret', 'oauth2', 'oauth_client']),
  status: z.enum(['active', 'needs_reauth', 'revoked']),
  expiresAt: Timestamp.nullable(),
  lastError: Text(1000).nullable(),
  createdAt: Timestamp,
  rotatedAt: Timestamp.nullable(),
  refreshedAt: Timestamp.nullable(),
  lastUsedAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
});
export const CredentialList = z.strictObject({ items: z.array(CredentialView).max(500) });
/** A revoked credential, and whether the provider revoked the OAuth grant too (RFC 7009). */
export const RevokedCredentialView = CredentialView.extend({
  /** revoked: the provider confirmed; failed: it could not be reached or refused (the grant may still be live there); not_supported: no revocation endpoint, or not OAuth. */
  providerRevocation: z.enum(['revoked', 'failed', 'not_supported']),
});
export const ListCredentialsQuery = z.strictObject({ connectorId: Uuid.optional() });

export const CredentialTestView = z.strictObject({
  ok: z.boolean(),
  /** What was checked: the upstream accepted it (tools listed), or only that it decrypts (built-in connectors are not contacted here). */
  checked: z.enum(['upstream', 'decrypt']),
  tools: z.int().min(0).nullable(),
});

export const OAuthStartBody = z.strictObject({
  /** Where the authorization server sends the user back (the console's callback page). */
  redirectUri: HttpUrl,
  scope: z.enum(['org', 'user']).optional(),
});
export const OAuthStartView = z.strictObject({ authorizationUrl: Text(8000), state: Text(200), expiresAt: Timestamp });
export const OAuthCallbackBody = z.strictObject({
  state: z.string().min(16).max(200),
  code: z.string().min(1).max(4000),
});
