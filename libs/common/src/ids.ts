import { randomUUID } from 'node:crypto';

/**
 * A time-ordered UUID (RFC 9562 version 7): 48-bit Unix milliseconds, then random bits.
 * App-generated so inserts never contend on a sequence and ids sort by creation time.
 * The random bits (74) are those of a version-4 UUID from the CSPRNG (`randomUUID`, which draws
 * from a buffered pool instead of asking the generator for every id), its variant bits kept.
 */
export function newId(now: number = Date.now()): string {
  const ms = now.toString(16).padStart(12, '0');
  // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx: 3 random hex after the version, then the variant group, then 12.
  const r = randomUUID();
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${r.slice(15, 18)}-${r.slice(19, 23)}-${r.slice(24)}`;
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
