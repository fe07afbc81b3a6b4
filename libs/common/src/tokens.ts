import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Prefixes make a leaked token recognisable (and scrubbable from logs). */
export const TokenPrefix = {
  ApiKey: 'stw_',
  Session: 'sts_',
  Invitation: 'sti_',
  Scim: 'stp_',
  /** OAuth access tokens for MCP clients (the gateway checks them). */
  Mcp: 'stm_',
  /** OAuth refresh tokens for MCP clients (rotated on every use). */
  McpRefresh: 'str_',
  /** One-time account recovery links (an owner or admin issues one for a member who lost their password). */
  Recovery: 'sta_',
} as const;
export type TokenPrefix = (typeof TokenPrefix)[keyof typeof TokenPrefix];

/** A new high-entropy token: prefix + 256 random bits in base64url. */
export function newToken(prefix: TokenPrefix): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** HMAC-SHA-256 under the server-side pepper: fast to check, useless without the pepper. */
export function hashToken(pepper: string, token: string): Buffer {
  return createHmac('sha256', pepper).update(token, 'utf8').digest();
}

export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A short displayable form: the prefix and the first characters, enough to recognise a key. */
export function tokenHint(token: string): string {
  return token.slice(0, 12);
}

/**
 * Who may read `/metrics` (API and worker): with METRICS_TOKEN, whoever sends it as a Bearer token;
 * without one, anyone outside production and nobody in production ("off": answer 404).
 */
export function metricsAccess(config: { METRICS_TOKEN?: string; NODE_ENV: string }, authorization: string | undefined): 'ok' | 'unauthorized' | 'off' {
  if (!config.METRICS_TOKEN) return config.NODE_ENV === 'production' ? 'off' : 'ok';
  const given = /^Bearer\s+(\S{1,512})$/i.exec(authorization ?? '')?.[1];
  if (!given) return 'unauthorized';
  const h = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(h(given), h(config.METRICS_TOKEN)) ? 'ok' : 'unauthorized';
}
