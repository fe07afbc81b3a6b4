import type { DataSource } from 'typeorm';
import { chainHash, GENESIS } from './event';
import type { Checkpoint } from './checkpoint';
import { verifySignature } from './signing';
import { inOrg } from '@steward/db';
import { cursorPages } from './pages';
import { DROPPED_COUNTS_SQL, DROPPED_CTE, PURGED_SQL } from './retention';
import { LinkChecker } from './link-check';

export interface ChainEntry {
  seq: number;
  eventId: string;
  /** The stored hash (hex or bytes). */
  hash: Buffer;
  /** The event's canonical JSON, or null when the event row is gone. */
  canonical: string | null;
  /** The event's partition was dropped by retention: its stored hash is taken as is. */
  purged?: boolean;
  /** The month (YYYY-MM-01) of a purged entry, as its chain row dates it: counted against what the month's drop recorded. */
  month?: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Chain entries checked. */
  checked: number;
  lastSeq: number;
  lastHash: string;
  /** The first sequence number that does not verify. */
  firstBadSeq: number | null;
  reason: string | null;
  checkpointsVerified: number;
  /** Entries whose events retention removed (their hashes were taken as stored). */
  purged: number;
}

/**
 * Walks a chain in sequence order: every link recomputed from the canonical bytes, every
 * gap and missing event named; then every checkpoint's signature (with the auditor's copy
 * of the public key) and its (seq, hash) against the chain, so a cut tail behind a pushed
 * checkpoint is found too.
 */
/** The canonical text names this event id as its `"id"` (without building a search string per link). */
function namesEvent(canonicalText: string, eventId: string): boolean {
  for (let i = canonicalText.indexOf(eventId); i !== -1; i = canonicalText.indexOf(eventId, i + 1)) {
    if (canonicalText.startsWith('"id":"', i - 6) && canonicalText.charCodeAt(i + eventId.length) === 34) return true;
  }
  return false;
}

export class ChainVerifier {
  private prev: Buffer;
  private expected: number;
  private checked = 0;
  private purged = 0;
  private bad: { seq: number; reason: string } | null = null;
  private readonly hashes = new Map<number, string>();
  /** Purged entries per month, and the last such seq: no more than the month's drop recorded (`finish`). */
  private readonly purgedIn = new Map<string, { n: number; lastSeq: number }>();
  private purgeLimits: Record<string, number> | null = null;

  constructor(start: { seq: number; hash: Buffer } = { seq: 0, hash: GENESIS }) {
    this.prev = start.hash;
    this.expected = start.seq + 1;
  }

  get failed(): boolean {
    return this.bad !== null;
  }

  /** The hash the next entry links to. */
  get lastHash(): Buffer {
    return this.prev;
  }

  /** The sequence number the next entry must have. */
  get nextSeq(): number {
    return this.expected;
  }

  /** Takes in the counts and remembered hashes of a walk over the part of the chain just before this one. */
  absorb(before: ChainVerifier): this {
    this.checked += before.checked;
    this.purged += before.purged;
    for (const [seq, hash] of before.hashes) this.hashes.set(seq, hash);
    for (const [month, c] of before.purgedIn) {
      const mine = this.purgedIn.get(month);
      this.purgedIn.set(month, { n: c.n + (mine?.n ?? 0), lastSeq: Math.max(c.lastSeq, mine?.lastSeq ?? 0) });
    }
    return this;
  }

  /**
   * How many of the org's chain entries each dropped month held when it was dropped (its drop events
   * say): more entries missing in a month than that means events were deleted, and their entries'
   * dates moved into the month to pass as purged. A month with no count on record (dropped before
   * counts were recorded) is not limited.
   */
  limitPurged(limits: Record<string, number>): this {
    this.purgeLimits = limits;
    return this;
  }

  /** `linkChecked`: the entry's link was already found to hold (LinkChecker): its stored hash is taken. */
  add(entry: ChainEntry, remember?: (seq: number) => boolean, linkChecked = false): void {
    if (this.bad) return;
    if (entry.seq !== this.expected) {
      this.bad = { seq: this.expected, reason: `chain entry ${this.expected} is missing (next is ${entry.seq})` };
      return;
    }
    if (entry.canonical === null && entry.purged) {
      this.prev = entry.hash;
      this.expected++;
      this.checked++;
      this.purged++;
      if (entry.month) {
        const c = this.purgedIn.get(entry.month) ?? { n: 0, lastSeq: 0 };
        this.purgedIn.set(entry.month, { n: c.n + 1, lastSeq: entry.seq });
      }
      return;
    }
    if (entry.canonical === null) {
      this.bad = { seq: entry.seq, reason: `event ${entry.eventId} of seq ${entry.seq} is missing` };
      return;
    }
    const h = linkChecked ? entry.hash : chainHash(this.prev, entry.canonical);
    if (!h.equals(entry.hash) || !namesEvent(entry.canonical, entry.eventId)) {
      let id: unknown;
      try {
        id = (JSON.parse(entry.canonical) as { id?: unknown }).id;
      } catch {
        id = undefined;
      }
      this.bad =
        id !== entry.eventId
          ? { seq: entry.seq, reason: `seq ${entry.seq} holds event ${String(id)}, expected ${entry.eventId}` }
          : { seq: entry.seq, reason: `hash mismatch at seq ${entry.seq}: the event or an earlier link was changed` };
      return;
    }
    this.prev = h;
    if (!remember || remember(entry.seq)) this.hashes.set(entry.seq, h.toString('hex'));
    this.expected++;
    this.checked++;
  }

  finish(checkpoints: Checkpoint[], publicKeyPem: string | null, org?: string): VerifyResult {
    let verified = 0;
    const lastSeq = this.expected - 1;
    if (!this.bad && this.purgeLimits) {
      for (const [month, c] of [...this.purgedIn].sort((a, b) => a[1].lastSeq - b[1].lastSeq)) {
        const limit = this.purgeLimits[month];
        if (limit !== undefined && c.n > limit) {
          this.bad = { seq: c.lastSeq, reason: `${c.n} entries dated ${month.slice(0, 7)} have no event, but that month's partition held ${limit} when it was dropped: events were deleted` };
          break;
        }
      }
    }
    if (!this.bad) {
      for (const c of [...checkpoints].sort((a, b) => a.seq - b.seq)) {
        if (publicKeyPem !== null && !verifySignature(publicKeyPem, Buffer.from(c.statement, 'utf8'), c.signature)) {
          this.bad = { seq: c.seq, reason: `checkpoint at seq ${c.seq} has a signature this public key does not accept` };
          break;
        }
        let s: { org?: string; seq?: number; hash?: string };
        try {
          s = JSON.parse(c.statement);
        } catch {
          s = {};
        }
        // The statement must be a checkpoint's, of this org, and say exactly this seq and hash.
        if (!Number.isSafeInteger(c.seq) || typeof c.hash !== 'string' || !/^[0-9a-f]{64}$/.test(c.hash) || s.seq !== c.seq || s.hash !== c.hash || (org && s.org !== org)) {
          this.bad = { seq: c.seq, reason: `checkpoint at seq ${c.seq} does not match its signed statement` };
          break;
        }
        if (c.seq > lastSeq) {
          this.bad = { seq: lastSeq + 1, reason: `the chain ends at seq ${lastSeq} but a signed checkpoint covers seq ${c.seq}: entries ${lastSeq + 1}–${c.seq} were cut` };
          break;
        }
        const at = this.hashes.get(c.seq);
        if (at !== undefined && at !== c.hash) {
          this.bad = { seq: c.seq, reason: `the chain at seq ${c.seq} differs from the signed checkpoint` };
          break;
        }
        // Counted only when compared with the chain (one before the range proves nothing here).
        if (at !== undefined) verified++;
      }
    }
    return {
      ok: this.bad === null,
      checked: this.checked,
      lastSeq,
      lastHash: this.prev.toString('hex'),
      firstBadSeq: this.bad?.seq ?? null,
      reason: this.bad?.reason ?? null,
      checkpointsVerified: verified,
      purged: this.purged,
    };
  }
}

export async function loadCheckpoints(ds: DataSource, orgId: string): Promise<Checkpoint[]> {
  return inOrg(ds, { orgId }, async (em) => {
    const rows: { seq: string; hash: Buffer; key_id: string; signature: string; statement: string }[] = await em.query(
      'SELECT seq, hash, key_id, signature, statement FROM audit_checkpoints WHERE org_id = $1 ORDER BY seq',
      [orgId],
    );
    return rows.map((r) => ({ org: orgId, seq: Number(r.seq), hash: r.hash.toString('hex'), at: JSON.parse(r.statement).at, kid: r.key_id, statement: r.statement, signature: r.signature }));
  });
}

/**
 * Verifies an org's trail in the database, in pages (never the whole chain in memory). A long chain
 * is walked as two halves at once (two cursors, two database backends): the second half starts
 * from the stored hash where the first ends, which the first half's own walk checks link by link,
 * so the two walks together check every link of the chain.
 */
export async function verifyOrg(ds: DataSource, orgId: string, publicKeyPem: string | null, pageSize = 4000, splitFrom = 200_000): Promise<VerifyResult> {
  const checkpoints = await loadCheckpoints(ds, orgId);
  const marks = new Set(checkpoints.map((c) => c.seq));
  const [{ counts }]: { counts: Record<string, number> }[] = await inOrg(ds, { orgId }, (em) => em.query(`SELECT ${DROPPED_COUNTS_SQL} AS counts`, [orgId]));
  const limited = (v: ChainVerifier) => v.limitPurged(counts);
  const [head]: { seq: string }[] = await inOrg(ds, { orgId }, (em) => em.query('SELECT seq FROM audit_heads WHERE org_id = $1', [orgId]));
  const last = Number(head?.seq ?? 0);
  const split = last >= Math.max(2, splitFrom) ? Math.floor(last / 2) : 0;
  if (!split) return limited(await walk(ds, orgId, new ChainVerifier(), 0, null, marks, pageSize)).finish(checkpoints, publicKeyPem, orgId);
  const [mid]: { hash: Buffer }[] = await inOrg(ds, { orgId }, (em) => em.query('SELECT hash FROM audit_chain WHERE org_id = $1 AND seq = $2', [orgId, split]));
  if (!mid) return limited(await walk(ds, orgId, new ChainVerifier(), 0, null, marks, pageSize)).finish(checkpoints, publicKeyPem, orgId);
  const [first, second] = await Promise.all([
    walk(ds, orgId, new ChainVerifier(), 0, split, marks, pageSize),
    walk(ds, orgId, new ChainVerifier({ seq: split, hash: mid.hash }), split, null, marks, pageSize),
  ]);
  if (first.failed) return first.finish(checkpoints, publicKeyPem, orgId);
  // The first half must end exactly where the second starts (its last link checked against the same
  // stored hash); if the chain changed under the walk, one walk over the whole chain decides.
  if (first.nextSeq !== split + 1) return limited(await walk(ds, orgId, new ChainVerifier(), 0, null, marks, pageSize)).finish(checkpoints, publicKeyPem, orgId);
  return limited(second.absorb(first)).finish(checkpoints, publicKeyPem, orgId);
}

/** One walk over (after, until] of the chain into `verifier`. */
async function walk(ds: DataSource, orgId: string, verifier: ChainVerifier, after: number, until: number | null, marks: Set<number>, pageSize: number): Promise<ChainVerifier> {
  const rows = cursorPages<{ seq: string; event_id: string; hash: Buffer; canonical: string | null; purged: boolean; month: string }>(
    ds,
    orgId,
    // An event is accepted as purged only before the purge point and in a month whose partition drop
    // is itself on record (an audit.partition_drop event): the purge point alone is one field anyone
    // who can delete events could also set.
    `WITH ${DROPPED_CTE}
     SELECT c.seq, c.event_id, c.hash, e.canonical, ${PURGED_SQL} AS purged,
            to_char(date_trunc('month', c.occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS month
       FROM audit_chain c
       LEFT JOIN LATERAL (SELECT ev.canonical FROM audit_events ev
                           WHERE ev.org_id = c.org_id AND ev.occurred_at = c.occurred_at AND ev.id = c.event_id OFFSET 0) e ON true
      WHERE c.org_id = $1 AND c.seq > $2 AND ($3::bigint IS NULL OR c.seq <= $3) ORDER BY c.seq`,
    [orgId, after, until],
    pageSize,
  );
  // Links are hashed on worker threads, pages side by side while the next ones arrive; each page is
  // then taken in order (sequence, presence, ids). A page with a failing link is walked again link
  // by link, which names the first bad entry exactly as the sequential check does.
  const links = new LinkChecker(1);
  const inFlight: { entries: ChainEntry[]; bad: Promise<number> }[] = [];
  let prev: Buffer = verifier.lastHash;
  const settle = async (p: { entries: ChainEntry[]; bad: Promise<number> }) => {
    const bad = await p.bad;
    for (const e of p.entries) verifier.add(e, (s) => marks.has(s), bad === -1);
  };
  try {
    for await (const page of rows) {
      const entries: ChainEntry[] = page.map((r) => ({ seq: Number(r.seq), eventId: r.event_id, hash: r.hash, canonical: r.canonical, purged: r.purged, ...(r.purged && r.canonical === null ? { month: r.month } : {}) }));
      const bad = links.check(prev, entries.map((e) => e.hash), entries.map((e) => e.canonical));
      bad.catch(() => undefined); // awaited in order below
      inFlight.push({ entries, bad });
      prev = entries[entries.length - 1].hash;
      while (inFlight.length > 3) await settle(inFlight.shift()!);
      if (verifier.failed) break;
    }
    while (inFlight.length && !verifier.failed) await settle(inFlight.shift()!);
  } finally {
    await links.close();
  }
  return verifier;
}
