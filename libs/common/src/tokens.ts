import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

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
