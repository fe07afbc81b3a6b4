import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * One event shape for everything Steward records. `canonical` (RFC 8785 JSON) is what
 * is stored and what the chain hashes, so any party can reproduce a hash from an export.
 */
export type ActorType = 'user' | 'api_key' | 'agent_task' | 'system' | 'scim_token';
export type Client = 'rest' | 'mcp' | 'cli' | 'console' | 'worker' | 'system' | 'scim';
export type Outcome = 'success' | 'failure' | 'denied';

export interface AuditEventInput {
  id: string;
  orgId: string;
  occurredAt: Date;
  actor: { type: ActorType; id: string | null };
  /** An agent action type ("email.send") or an admin operation ("member.suspend"). */
  action: string;
  target?: { type: string; id: string | null } | null;
  level?: string | null;
  decision?: string | null;
  outcome: Outcome;
  policyVersion?: number | null;
  task?: string | null;
  approval?: string | null;
  connector?: string | null;
  client: Client;
  sourceIp?: string | null;
  requestId?: string | null;
  /** Not sensitive: ids, names of things, counts. */
  payload?: Record<string, unknown>;
}

export interface SealedPart {
  /** The org-month data key that sealed it ("2026-11-01"). */
  month: string;
  /** The person the fields are about, when sealed under that person's key (erasable on its own). */
  subject?: string;
  /** The generation of the person's key (a new one after each erasure). */
  gen?: number;
  /** AES-256-GCM ciphertext (base64url) of the sensitive fields' JSON. */
  ct: string;
}

export interface CanonicalEvent {
  v: 1;
  id: string;
  org: string;
  at: string;
  actor: { type: ActorType; id: string | null };
  action: string;
  target?: { type: string; id: string | null };
  level?: string;
  decision?: string;
  outcome: Outcome;
  policy?: number;
  task?: string;
  approval?: string;
  connector?: string;
  client: Client;
  ip?: string;
  req?: string;
  payload: Record<string, unknown>;
  sealed?: SealedPart;
  /** Keyed hashes of sensitive values, for search by value (blind index). */
  blind?: string[];
}

export function toCanonicalEvent(e: AuditEventInput, sealed?: SealedPart, blind?: string[]): CanonicalEvent {
  const out: CanonicalEvent = {
    v: 1,
    id: e.id,
    org: e.orgId,
    at: e.occurredAt.toISOString(),
    actor: { type: e.actor.type, id: e.actor.id },
    action: e.action,
    outcome: e.outcome,
    client: e.client,
    payload: e.payload ?? {},
  };
  if (e.target) out.target = { type: e.target.type, id: e.target.id };
  if (e.level) out.level = e.level;
  if (e.decision) out.decision = e.decision;
  if (typeof e.policyVersion === 'number') out.policy = e.policyVersion;
  if (e.task) out.task = e.task;
  if (e.approval) out.approval = e.approval;
  if (e.connector) out.connector = e.connector;
  if (e.sourceIp) out.ip = e.sourceIp.slice(0, 64);
  if (e.requestId) out.req = e.requestId.slice(0, 64);
  if (sealed) out.sealed = sealed;
  if (blind?.length) out.blind = [...blind].sort();
  return out;
}

export function canonical(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('value cannot be canonicalised');
  return text;
}

export const GENESIS = Buffer.alloc(32);

/** One-shot hashing (Node ≥ 20.12): no Hash object per link. */
const oneShot = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer }).hash;
/** prev_hash and the canonical bytes side by side, reused from link to link (a chain walk hashes millions). */
let scratch = Buffer.allocUnsafe(64 * 1024);

/** hash = sha256(prev_hash || canonical) */
export function chainHash(prev: Buffer, canonicalText: string | Buffer): Buffer {
  if (!oneShot || typeof canonicalText !== 'string' || prev.length !== 32) return createHash('sha256').update(prev).update(canonicalText).digest();
  // A UTF-16 code unit is at most three UTF-8 bytes.
  if (32 + canonicalText.length * 3 > scratch.length) {
    if (canonicalText.length > 1 << 20) return createHash('sha256').update(prev).update(canonicalText).digest();
    scratch = Buffer.allocUnsafe(32 + canonicalText.length * 3);
  }
  prev.copy(scratch, 0);
  const n = scratch.write(canonicalText, 32, 'utf8');
  return oneShot('sha256', scratch.subarray(0, 32 + n), 'buffer');
}
