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
const subjectAad = (orgId: string, month: string, subject: string, gen: number) => `audit/${orgId}/${month}/${subject}/${gen}`;

/**
 * How long a process keeps a person's key in memory. An erasure elsewhere takes effect for
 * writes here within this time (what is sealed meanwhile is under a destroyed key: unreadable).
 */
const SUBJECT_KEY_TTL_MS = 5_000;

export interface SubjectKey {
  key: Buffer;
  gen: number;
}

/**
 * How long a process keeps an org's month key in memory before it reads the row again: a key that
 * retention destroyed in another process (the worker's purge) opens nothing here after this time.
 */
const MONTH_KEY_TTL_MS = 60_000;

export class AuditKeyring {
  /** Only keys read back from committed rows are cached (a key made in a transaction that rolls back must not be). */
  private readonly cache = new Map<string, { key: Buffer; until: number }>();
  private readonly monthKeyTtlMs: number;

  constructor(
    private readonly provider: KeyProvider,
    options: { monthKeyTtlMs?: number } = {},
  ) {
    this.monthKeyTtlMs = options.monthKeyTtlMs ?? MONTH_KEY_TTL_MS;
  }

  /** The month's key, creating it in the caller's transaction when missing; null once destroyed. */
  async key(em: EntityManager, orgId: string, month: string, create: boolean): Promise<Buffer | null> {
    const cacheKey = `${orgId}/${month}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.until > Date.now()) return hit.key;
    if (hit) this.cache.delete(cacheKey);
    const rows: { wrapped: string | null }[] = await em.query(`SELECT wrapped FROM audit_keys WHERE org_id = $1 AND month = $2 AND subject = '' AND generation = 0`, [orgId, month]);
    if (rows.length) {
      if (!rows[0].wrapped) return null;
      const key = await this.provider.unwrap(rows[0].wrapped, aadOf(orgId, month));
      this.cache.set(cacheKey, { key, until: Date.now() + this.monthKeyTtlMs });
      return key;
    }
    if (!create) return null;
    const key = newDataKey();
    const wrapped = await this.provider.wrap(key, aadOf(orgId, month));
    const inserted: unknown[] = await em.query(
      `INSERT INTO audit_keys (org_id, month, wrapped) VALUES ($1, $2, $3) ON CONFLICT (org_id, month, subject, generation) DO NOTHING RETURNING month`,
      [orgId, month, wrapped],
    );
    if (inserted.length) return key;
    return this.key(em, orgId, month, false); // another writer made it first
  }

  private readonly subjects = new Map<string, { k: SubjectKey; until: number }>();

  /**
   * The key that seals a person's fields this month, for writing: the newest generation, or a new
   * one when there is none or the newest was destroyed (the person was erased; later events get a
   * fresh key). Created in the caller's transaction.
   */
  async subjectKey(em: EntityManager, orgId: string, month: string, subject: string): Promise<SubjectKey> {
    const cacheKey = `${orgId}/${month}/${subject}`;
    const hit = this.subjects.get(cacheKey);
    if (hit && hit.until > Date.now()) return hit.k;
    for (let attempt = 0; ; attempt++) {
      const [row]: { wrapped: string | null; generation: number }[] = await em.query(
        'SELECT wrapped, generation FROM audit_keys WHERE org_id = $1 AND month = $2 AND subject = $3 ORDER BY generation DESC LIMIT 1',
        [orgId, month, subject],
      );
      if (row?.wrapped) {
        const k = { key: await this.provider.unwrap(row.wrapped, subjectAad(orgId, month, subject, row.generation)), gen: row.generation };
        this.subjects.set(cacheKey, { k, until: Date.now() + SUBJECT_KEY_TTL_MS });
        return k;
      }
      const gen = row ? row.generation + 1 : 0;
      const key = newDataKey();
      const wrapped = await this.provider.wrap(key, subjectAad(orgId, month, subject, gen));
      const inserted: unknown[] = await em.query(
        'INSERT INTO audit_keys (org_id, month, subject, generation, wrapped) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING month',
        [orgId, month, subject, gen, wrapped],
      );
      // Not cached until committed elsewhere: a rolled-back transaction must not leave a key in memory.
      if (inserted.length) return { key, gen };
      if (attempt >= 3) throw new Error('could not create the audit subject key');
    }
  }

  /** A person's key of one month and generation, for reading; null once destroyed (erased or past retention). */
  async subjectKeyAt(em: EntityManager, orgId: string, month: string, subject: string, gen: number): Promise<Buffer | null> {
    const [row]: { wrapped: string | null }[] = await em.query('SELECT wrapped FROM audit_keys WHERE org_id = $1 AND month = $2 AND subject = $3 AND generation = $4', [
      orgId,
      month,
      subject,
      gen,
    ]);
    return row?.wrapped ? this.provider.unwrap(row.wrapped, subjectAad(orgId, month, subject, gen)) : null;
  }

  /** Drops a person's keys from this process's memory. */
  forgetSubject(orgId: string, subject: string): void {
    for (const [k, v] of this.subjects) {
      if (k.startsWith(`${orgId}/`) && k.endsWith(`/${subject}`)) {
        v.k.key.fill(0);
        this.subjects.delete(k);
      }
    }
  }

  forget(orgId: string, month: string): void {
    for (const [k, v] of this.subjects) {
      if (k.startsWith(`${orgId}/${month}/`)) {
        v.k.key.fill(0);
        this.subjects.delete(k);
      }
    }
    this.cache.get(`${orgId}/${month}`)?.key.fill(0);
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
