import type { Config } from '@steward/common';
import { SESSION_COOKIE } from './auth.guard';

/** The console session cookie (password sign-in, SSO and the MCP consent page set the same one). */
export function sessionCookie(config: Pick<Config, 'SESSION_COOKIE_SECURE' | 'NODE_ENV'>, token: string, maxAgeSeconds: number): string {
  const secure = config.SESSION_COOKIE_SECURE ?? config.NODE_ENV === 'production';
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}
