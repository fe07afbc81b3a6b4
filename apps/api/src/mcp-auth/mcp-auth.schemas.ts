import { z } from 'zod';

const Url = z.url({ protocol: /^https?$/ }).max(2000);

export const ProtectedResourceMetadata = z.looseObject({ resource: z.string().max(2000), authorization_servers: z.array(z.string().max(2000)).max(5) });
export const AuthorizationServerMetadata = z.looseObject({ issuer: z.string().max(2000), authorization_endpoint: z.string().max(2000), token_endpoint: z.string().max(2000) });

/** RFC 7591 client registration: public clients only (PKCE, no secret). */
export const RegisterClientBody = z.looseObject({
  redirect_uris: z.array(Url).min(1).max(10),
  client_name: z.string().trim().min(1).max(200).optional(),
  token_endpoint_auth_method: z.literal('none').optional(),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token'])).max(2).optional(),
  response_types: z.array(z.literal('code')).max(1).optional(),
  scope: z.string().max(200).optional(),
});

export const RegisteredClient = z.looseObject({
  client_id: z.string().max(100),
  client_id_issued_at: z.int(),
  redirect_uris: z.array(z.string().max(2000)).max(10),
  token_endpoint_auth_method: z.literal('none'),
  grant_types: z.array(z.string().max(40)).max(2),
  response_types: z.array(z.string().max(10)).max(1),
});

export const AuthorizeQuery = z.object({
  response_type: z.literal('code'),
  client_id: z.string().min(1).max(100),
  redirect_uri: Url,
  code_challenge: z.string().max(128).regex(/^[A-Za-z0-9_-]{43,128}$/, 'must be an S256 code challenge'),
  code_challenge_method: z.literal('S256'),
  state: z.string().max(500).optional(),
  scope: z.string().max(200).optional(),
  resource: Url.optional(),
});

export const AuthorizationRequestView = z.strictObject({
  id: z.string().max(100),
  clientId: z.string().max(100),
  clientName: z.string().max(200).nullable(),
  redirectUri: z.string().max(2000),
  scope: z.string().max(200),
  resource: z.string().max(2000),
});

export const AuthorizationDecision = z.strictObject({ redirectTo: z.string().max(5000) });

const CodeGrant = z.object({
  grant_type: z.literal('authorization_code'),
  code: z.string().min(1).max(200),
  redirect_uri: Url,
  client_id: z.string().min(1).max(100),
  code_verifier: z.string().max(128).regex(/^[A-Za-z0-9._~-]{43,128}$/, 'must be a PKCE code verifier'),
  resource: Url.optional(),
});

const RefreshGrant = z.object({
  grant_type: z.literal('refresh_token'),
  refresh_token: z.string().min(1).max(200),
  client_id: z.string().min(1).max(100),
  scope: z.string().max(200).optional(),
  resource: Url.optional(),
});

export const TokenBody = z.discriminatedUnion('grant_type', [CodeGrant, RefreshGrant]);
export type CodeGrant = z.infer<typeof CodeGrant>;
export type RefreshGrant = z.infer<typeof RefreshGrant>;

export const TokenView = z.strictObject({
  access_token: z.string().max(200),
  token_type: z.literal('Bearer'),
  expires_in: z.int(),
  refresh_token: z.string().max(200),
  scope: z.string().max(200),
});

/** RFC 7009 token revocation by a public client (it names itself with client_id). */
export const RevokeBody = z.object({
  token: z.string().min(1).max(200),
  token_type_hint: z.enum(['access_token', 'refresh_token']).optional(),
  client_id: z.string().min(1).max(100),
});

/** The consent page's forms (server-rendered HTML, form-encoded). */
export const ConsentPageQuery = z.object({ request: z.string().min(1).max(100) });
export const ConsentSignInForm = z.object({
  request: z.string().min(1).max(100),
  csrf: z.string().min(1).max(100),
  email: z.string().trim().max(320),
  password: z.string().max(256),
  org: z.string().max(100).optional(),
  totpCode: z.string().max(10).optional(),
});
export const ConsentDecisionForm = z.object({
  request: z.string().min(1).max(100),
  csrf: z.string().min(1).max(100),
  decision: z.enum(['approve', 'deny']),
});
export const ConsentSsoForm = z.object({
  request: z.string().min(1).max(100),
  csrf: z.string().min(1).max(100),
  email: z.string().trim().max(320),
});
