import { generateSecret, generateURI, verify } from 'otplib';

/** RFC 6238 TOTP: 6 digits, 30-second steps, one step of clock drift either way. */
export const TOTP_PERIOD = 30;

export function newTotpSecret(): string {
  return generateSecret();
}

export function totpUri(secret: string, account: string): string {
  return generateURI({ issuer: 'Steward', label: account, secret });
}

/**
 * Checks a code and returns the time step it matched, or null. The caller refuses a
 * step at or below the last one accepted, so a code cannot be replayed.
 */
export async function checkTotp(secret: string, code: string, now = Date.now()): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null;
  const result = await verify({ secret, token: code, epochTolerance: TOTP_PERIOD, epoch: Math.floor(now / 1000) });
  if (!result.valid) return null;
  const step = (result as { timeStep?: number }).timeStep;
  return typeof step === 'number' ? step : Math.floor(now / 1000 / TOTP_PERIOD);
}
