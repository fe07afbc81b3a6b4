import { createHmac } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { gcmOpen, gcmSeal, type KeyProvider, newDataKey } from '@steward/vault';

/**
 * Per org and month data keys for sensitive event fields. Destroying a month's key makes
 * that month's sealed fields (and blind index) unreadable while the chain still verifies,
 * because the chain covers the ciphertext.
 */
export function monthOf(d: Date): string {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-01`;
}

const aadOf = (orgId: string, month: string) => `audit/${orgId}/${month}`;

export class AuditKeyring {
  /** Only keys read back from committed rows are cached (a key made in a transaction that rolls back must not be). */
  private readonly cache = new Map<string, Buffer>();

  constructor(private readonly provider: KeyProvider) {}

  /** The month's key, creating it in the caller's transaction when missing; null once destroyed. */
  async key(em: EntityManager, orgId: string, month: string, create: boolean): Promise<Buffer | null> {
    const cacheKey = `${orgId}/${month}`;
    const hit = this.cache.get(cacheKey);
    if (hit) return hit;
    const rows: { wrapped: string | null }[] = await em.query('SELECT wrapped FROM audit_keys WHERE org_id = $1 AND month = $2', [orgId, month]);
    if (rows.length) {
      if (!rows[0].wrapped) return null;
      const key = await this.provider.unwrap(rows[0].wrapped, aadOf(orgId, month));
      this.cache.set(cacheKey, key);
      return key;
    }
    if (!create) return null;
    const key = newDataKey();
    const wrapped = await this.provider.wrap(key, aadOf(orgId, month));
    const inserted: unknown[] = await em.query(
      'INSERT INTO audit_keys (org_id, month, wrapped) VALUES ($1, $2, $3) ON CONFLICT (org_id, month) DO NOTHING RETURNING month',
      [orgId, month, wrapped],
    );
    if (inserted.length) return key;
    return this.key(em, orgId, month, false); // another writer made it first
  }

  forget(orgId: string, month: string): void {
    this.cache.get(`${orgId}/${month}`)?.fill(0);
    this.cache.delete(`${orgId}/${month}`);
  }

  seal(key: Buffer, eventId: string, fields: Record<string, unknown>): string {
    return gcmSeal(key, Buffer.from(JSON.stringify(fields), 'utf8'), `audit-event/${eventId}`).toString('base64url');
  }

  open(key: Buffer, eventId: string, ct: string): Record<string, unknown> {
    return JSON.parse(gcmOpen(key, Buffer.from(ct, 'base64url'), `audit-event/${eventId}`).toString('utf8'));
  }

  /** Keyed hash of one sensitive value, for search by value without storing it. */
  blind(key: Buffer, field: string, value: string): string {
    return createHmac('sha256', key).update('blind|').update(field).update('|').update(value.toLowerCase()).digest('base64url').slice(0, 32);
  }
}
