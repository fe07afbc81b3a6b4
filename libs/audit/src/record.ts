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

export interface PreparedEvent {
  id: string;
  orgId: string;
  occurredAt: Date;
  /** The canonical JSON the row stores and the chain hashes. */
  canonical: string;
}

/**
 * Builds an event's stored form (sensitive fields sealed, blind index computed) in the caller's
 * transaction (month and person keys are created there when missing), without inserting it — for
 * callers that insert it in one statement with their own rows (the gate's write-ahead).
 */
export async function prepareEvent(em: EntityManager, keyring: AuditKeyring, input: RecordInput): Promise<PreparedEvent> {
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
  return { id: input.id, orgId: input.orgId, occurredAt: input.occurredAt, canonical: withoutNul(canonical(toCanonicalEvent(input, sealed, blind))) };
}

/** A `\u0000` escape not preceded by an escaping backslash (the even run of backslashes before it is kept). */
const NUL_ESCAPE = /(?<!\\)((?:\\\\)*)\\u0000/g;

/**
 * PostgreSQL's jsonb (which the trail's indexes read) refuses U+0000, so a NUL in any string an
 * event carries (a tool's arguments may hold one) becomes U+FFFD before the event is hashed: the
 * stored canonical bytes are then exactly `canonical()` of the event as recorded.
 */
export function withoutNul(json: string): string {
  return json.includes('\\u0000') ? json.replace(NUL_ESCAPE, '$1\ufffd') : json;
}

/**
 * Writes one event in the caller's transaction (the same one as the change it records),
 * so there is no change without its event and no event for work that rolled back.
 */
export async function recordEvent(em: EntityManager, keyring: AuditKeyring, input: RecordInput): Promise<void> {
  const e = await prepareEvent(em, keyring, input);
  await em.query('INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES ($1, $2, $3, $4)', [e.id, e.orgId, e.occurredAt, e.canonical]);
}
