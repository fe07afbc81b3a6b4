import type { EntityManager } from 'typeorm';
import { type AuditEventInput, canonical, toCanonicalEvent } from './event';
import { type AuditKeyring, monthOf } from './keyring';

export interface RecordInput extends AuditEventInput {
  /** Arguments, recipients, content excerpts: sealed under the org-month key, searchable by blind index. */
  sensitive?: Record<string, string | string[] | number | boolean | null>;
  /**
   * The person the sensitive fields are about (an erasure request shreds them): default the
   * acting user; the gate names the employee an agent acts for; null for none.
   */
  subject?: string | null;
}

/**
 * Writes one event in the caller's transaction (the same one as the change it records),
 * so there is no change without its event and no event for work that rolled back.
 */
export async function recordEvent(em: EntityManager, keyring: AuditKeyring, input: RecordInput): Promise<void> {
  let sealed;
  let blind: string[] | undefined;
  if (input.sensitive && Object.keys(input.sensitive).length) {
    const month = monthOf(input.occurredAt);
    const key = await keyring.key(em, input.orgId, month, true);
    const subject = input.subject !== undefined ? input.subject : input.actor.type === 'user' ? input.actor.id : null;
    if (key) {
      if (subject) {
        const sk = await keyring.subjectKey(em, input.orgId, month, subject);
        sealed = { month, subject, gen: sk.gen, ct: keyring.seal(sk.key, input.id, input.sensitive) };
      } else {
        sealed = { month, ct: keyring.seal(key, input.id, input.sensitive) };
      }
      blind = [];
      for (const [field, value] of Object.entries(input.sensitive)) {
        for (const v of Array.isArray(value) ? value : [value]) {
          if (typeof v === 'string' && v.length > 0 && v.length <= 320) blind.push(keyring.blind(key, field, v));
        }
      }
    }
  }
  const event = toCanonicalEvent(input, sealed, blind);
  await em.query('INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES ($1, $2, $3, $4)', [
    input.id,
    input.orgId,
    input.occurredAt,
    canonical(event),
  ]);
}
