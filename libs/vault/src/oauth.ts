import * as oauth from 'oauth4webapi';
import { guardedFetch, type EgressOptions, isEgressAllowlisted } from '@steward/common';

/**
 * OAuth 2 authorization code with PKCE (S256) for connectors, on `oauth4webapi` (a small,
 * well-kept, spec-compliant client): the authorization URL, the code exchange and refreshes.
 * Token endpoint requests go through the egress guard; plain http only to a host an admin or
 * the operator allowlisted (loopback fakes in tests, an internal authorization server).
 */
export interface OAuthClientConfig {
  authorizationUrl: string;
  tokenUrl: string;
  clientId: string;
  /** Confidential clients (client_secret_post); absent: a public client with PKCE only. */
  clientSecret?: string;
  scopes: string[];
  /** RFC 7009 token revocation endpoint, where the provider has one. */
  revocationUrl?: string;
}

export interface OAuthTokens {
  accessToken: string;
  refreshToken?: string;
  tokenType: string;
  /** Epoch ms when the access token expires (absent: the server did not say). */
  expiresAt?: number;
  scope?: string;
}

export type OAuthFailure = 'invalid_grant' | 'refused' | 'unreachable' | 'bad_response' | 'bad_callback';

export class OAuthError extends Error {
  constructor(
    readonly kind: OAuthFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OAuthError';
  }
}

export interface OAuthHttp {
  egress?: EgressOptions;
  timeoutMs?: number;
}

function server(cfg: OAuthClientConfig): oauth.AuthorizationServer {
  return { issuer: new URL(cfg.tokenUrl).origin, authorization_endpoint: cfg.authorizationUrl, token_endpoint: cfg.tokenUrl, ...(cfg.revocationUrl ? { revocation_endpoint: cfg.revocationUrl } : {}) };
}

const clientAuth = (cfg: OAuthClientConfig) => (cfg.clientSecret ? oauth.ClientSecretPost(cfg.clientSecret) : oauth.None());

function requestOptions(cfg: OAuthClientConfig, http: OAuthHttp): oauth.TokenEndpointRequestOptions {
  const url = new URL(cfg.tokenUrl);
  // A token answer is a few KiB: a server that sends more is broken or hostile (the tokens are sealed and stored).
  const fetchFn = guardedFetch({ ...http.egress, timeoutMs: http.timeoutMs ?? 15_000, maxJsonBytes: TOKEN_ANSWER_MAX_BYTES });
  return {
    [oauth.customFetch]: (input: string, init: RequestInit) => fetchFn(input, init),
    // http only for a host allowlisted by the operator or an admin (never for a public host).
    [oauth.allowInsecureRequests]: url.protocol === 'http:' && isEgressAllowlisted(url.hostname, http.egress),
    signal: AbortSignal.timeout(http.timeoutMs ?? 15_000),
  };
}

/** The URL to send the user to, and what to keep server-side until the callback (state, verifier). */
export async function authorizationRequest(cfg: OAuthClientConfig, redirectUri: string): Promise<{ url: string; state: string; codeVerifier: string }> {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(cfg.authorizationUrl);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', cfg.clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  if (cfg.scopes.length) url.searchParams.set('scope', cfg.scopes.join(' '));
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  return { url: url.href, state, codeVerifier };
}

/** The largest token endpoint answer taken, and the longest token or scope kept from it. */
export const TOKEN_ANSWER_MAX_BYTES = 65_536;
const TOKEN_MAX_CHARS = 16_384;

function tokensOf(res: oauth.TokenEndpointResponse, previousRefresh?: string): OAuthTokens {
  for (const [name, v] of [['access_token', res.access_token], ['refresh_token', res.refresh_token], ['scope', res.scope]] as const) {
    if (typeof v === 'string' && v.length > TOKEN_MAX_CHARS) throw new OAuthError('bad_response', `the authorization server's ${name} is longer than ${TOKEN_MAX_CHARS} characters`);
  }
  return {
    accessToken: res.access_token,
    refreshToken: res.refresh_token ?? previousRefresh,
    tokenType: res.token_type,
    expiresAt: typeof res.expires_in === 'number' ? Date.now() + res.expires_in * 1000 : undefined,
    scope: res.scope,
  };
}

function mapError(err: unknown, what: string): OAuthError {
  if (err instanceof OAuthError) return err;
  if (err instanceof oauth.ResponseBodyError) {
    // Only what says the grant or the client is no good asks a person to connect again; an outage
    // (server_error, temporarily_unavailable, or any 5xx/429 answer) is retried by the next call.
    const transient = err.error === 'server_error' || err.error === 'temporarily_unavailable' || err.status >= 500 || err.status === 429;
    if (transient) return new OAuthError('unreachable', `${what}: the authorization server is unavailable (${err.error}, HTTP ${err.status}); try again later`, { cause: err });
    const kind: OAuthFailure = err.error === 'invalid_grant' ? 'invalid_grant' : 'refused';
    return new OAuthError(kind, `${what}: the authorization server refused (${err.error}${err.error_description ? `: ${err.error_description.slice(0, 200)}` : ''})`, { cause: err });
  }
  if (err instanceof oauth.AuthorizationResponseError) {
    return new OAuthError('bad_callback', `${what}: the authorization was refused (${err.error})`, { cause: err });
  }
  const e = err as { code?: string; message?: string; name?: string; cause?: { code?: string; status?: number } };
  // An answer with a server error status and no OAuth error body: an outage, not a refusal.
  const status = e?.cause?.status;
  if (e?.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' && typeof status === 'number' && (status >= 500 || status === 429)) {
    return new OAuthError('unreachable', `${what}: the authorization server is unavailable (HTTP ${status}); try again later`, { cause: err });
  }
  if (e?.code === 'egress_refused') return new OAuthError('unreachable', `${what}: ${e.message}`, { cause: err });
  if (e?.code === 'ETOOBIG' || e?.cause?.code === 'ETOOBIG') return new OAuthError('bad_response', `${what}: the authorization server's answer is larger than ${TOKEN_ANSWER_MAX_BYTES} bytes`, { cause: err });
  if (e?.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || e?.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' || e?.code === 'OAUTH_INVALID_RESPONSE' || e?.code === 'OAUTH_PARSE_ERROR') {
    return new OAuthError('bad_response', `${what}: the authorization server's answer is not valid OAuth (${(e.message ?? '').slice(0, 200)})`, { cause: err });
  }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return new OAuthError('unreachable', `${what}: the authorization server did not answer in time`, { cause: err });
  return new OAuthError('unreachable', `${what}: cannot reach the authorization server (${e?.code ?? e?.cause?.code ?? (e?.message ?? String(err)).slice(0, 200)})`, { cause: err });
}

/** Checks the callback's parameters against the expected state and exchanges the code (with the PKCE verifier). */
export async function exchangeCode(
  cfg: OAuthClientConfig,
  callback: { code: string; state: string; expectedState: string; codeVerifier: string; redirectUri: string },
  http: OAuthHttp = {},
): Promise<OAuthTokens> {
  const as = server(cfg);
  const client: oauth.Client = { client_id: cfg.clientId };
  try {
    const params = oauth.validateAuthResponse(as, client, new URLSearchParams({ code: callback.code, state: callback.state }), callback.expectedState);
    const res = await oauth.authorizationCodeGrantRequest(as, client, clientAuth(cfg), params, callback.redirectUri, callback.codeVerifier, requestOptions(cfg, http));
    return tokensOf(await oauth.processAuthorizationCodeResponse(as, client, res));
  } catch (err) {
    throw mapError(err, 'OAuth code exchange');
  }
}

/** Uses the refresh token; `invalid_grant` means the user must authorise again. */
export async function refreshTokens(cfg: OAuthClientConfig, refreshToken: string, http: OAuthHttp = {}): Promise<OAuthTokens> {
  const as = server(cfg);
  const client: oauth.Client = { client_id: cfg.clientId };
  try {
    const res = await oauth.refreshTokenGrantRequest(as, client, clientAuth(cfg), refreshToken, requestOptions(cfg, http));
    return tokensOf(await oauth.processRefreshTokenResponse(as, client, res), refreshToken);
  } catch (err) {
    throw mapError(err, 'OAuth refresh');
  }
}

/**
 * Revokes a token at the provider (RFC 7009): the refresh token where there is one (that ends the
 * whole grant), else the access token. Answers once the provider confirmed; throws OAuthError otherwise.
 */
export async function revokeAtProvider(cfg: OAuthClientConfig, tokens: Pick<OAuthTokens, 'accessToken' | 'refreshToken'>, http: OAuthHttp = {}): Promise<void> {
  if (!cfg.revocationUrl) throw new OAuthError('bad_response', 'this provider has no revocation endpoint');
  const as = server(cfg);
  const client: oauth.Client = { client_id: cfg.clientId };
  const [token, hint] = tokens.refreshToken ? [tokens.refreshToken, 'refresh_token'] : [tokens.accessToken, 'access_token'];
  try {
    const base = requestOptions({ ...cfg, tokenUrl: cfg.revocationUrl }, http);
    const res = await oauth.revocationRequest(as, client, clientAuth(cfg), token, { ...base, additionalParameters: { token_type_hint: hint } });
    await oauth.processRevocationResponse(res);
  } catch (err) {
    throw mapError(err, 'OAuth revocation');
  }
}
