import type { DataSource, EntityManager } from 'typeorm';
import { inOrg } from '@steward/db';
import { PINNED_ORDER } from './planner';
import { chainHash } from './event';

/**
 * One sequencer per org at a time: a lease in audit_heads with a fencing token. It reads
 * events whose transaction is older than every running one (so no late commit can slip
 * in behind it), in (txid, id) order, chains them, and writes the chain rows together
 * with a compare-and-swap on the org's head — a sequencer that lost its lease, or a
 * second one, can never fork the chain.
 */
export interface SealOptions {
  /** Who is sealing (process id + random); the fencing token changes when the holder does. */
  holder: string;
  batchSize?: number;
  /**
   * At most about this many bytes of events per batch (default 32 MiB; the first event of a batch
   * always goes): an event may carry up to 256 KiB of sealed arguments, and 2,000 of them in one
   * batch would take the worker's memory (and every org's sealing with it).
   */
  batchBytes?: number;
  leaseSeconds?: number;
  /** Stop after this many batches (default: until caught up). */
  maxBatches?: number;
  /** Called after each batch has committed, with the ids it sealed in chain order (metrics, benchmarks). */
  onBatch?: (eventIds: string[]) => void;
}

export interface SealResult {
  sealed: number;
  head: { seq: number; hash: Buffer };
  /** Another holder has the lease. */
  busy: boolean;
  /** The lease was lost mid-way (fenced off); nothing after that was written. */
  fenced: boolean;
}

interface Head {
  seq: string;
  hash: Buffer;
  lease_token: string;
  last_txid: string;
  last_event: string;
}

function inOrgTx<T>(ds: DataSource, orgId: string, work: (em: EntityManager) => Promise<T>): Promise<T> {
  return inOrg(ds, { orgId }, work, PINNED_ORDER);
}

export async function acquireLease(ds: DataSource, orgId: string, holder: string, leaseSeconds = 15): Promise<Head | null> {
  return inOrgTx(ds, orgId, async (em) => {
    await em.query('INSERT INTO audit_heads (org_id) VALUES ($1) ON CONFLICT (org_id) DO NOTHING', [orgId]);
    const rows: Head[] = await em.query(
      `UPDATE audit_heads
         SET lease_token = CASE WHEN lease_holder = $2 AND lease_until > now() THEN lease_token ELSE lease_token + 1 END,
             lease_holder = $2, lease_until = now() + make_interval(secs => $3)
       WHERE org_id = $1 AND (lease_until IS NULL OR lease_until <= now() OR lease_holder = $2)
       RETURNING seq, hash, lease_token, last_txid, last_event`,
      [orgId, holder, leaseSeconds],
    );
    return (Array.isArray(rows[0]) ? (rows[0] as Head[])[0] : rows[0]) ?? null;
  });
}

export async function sealOrg(ds: DataSource, orgId: string, options: SealOptions): Promise<SealResult> {
  const batchSize = options.batchSize ?? 2000;
  const batchBytes = options.batchBytes ?? 32 * 1024 * 1024;
  const leaseSeconds = options.leaseSeconds ?? 15;
  const head = await acquireLease(ds, orgId, options.holder, leaseSeconds);
  if (!head) return { sealed: 0, head: { seq: 0, hash: Buffer.alloc(32) }, busy: true, fenced: false };
  let seq = Number(head.seq);
  let hash = head.hash;
  let lastTxid = head.last_txid;
  let lastEvent = head.last_event;
  const token = head.lease_token;
  let sealed = 0;
  for (let batch = 0; options.maxBatches === undefined || batch < options.maxBatches; batch++) {
    const outcome = await inOrgTx(ds, orgId, async (em) => {
      // The next events in order, up to the count and (their sizes read from the stored values'
      // headers, none loaded to count) the bytes of a batch.
      const rows: { id: string; occurred_at: Date; canonical: string; txid: string; before: string }[] = await em.query(
        `SELECT id, occurred_at, canonical, txid, before FROM (
           SELECT id, occurred_at, canonical, txid,
                  sum(octet_length(canonical)) OVER (ORDER BY txid, id ROWS UNBOUNDED PRECEDING) - octet_length(canonical) AS before
             FROM audit_events
            WHERE org_id = $1 AND (txid, id) > ($2::bigint, $3::uuid)
              AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
            ORDER BY txid, id LIMIT $4) b
          WHERE before = 0 OR before < $5
          ORDER BY txid, id`,
        [orgId, lastTxid, lastEvent, batchSize, batchBytes],
      );
      if (!rows.length) return { state: 'done' as const, ids: [] as string[] };
      const seqs: string[] = [];
      const ids: string[] = [];
      const times: Date[] = [];
      const hashes: Buffer[] = [];
      let h = hash;
      rows.forEach((r, i) => {
        h = chainHash(h, r.canonical);
        seqs.push(String(seq + i + 1));
        ids.push(r.id);
        times.push(r.occurred_at);
        hashes.push(h);
      });
      const last = rows[rows.length - 1];
      const result: { n: number }[] = await em.query(
        `WITH head AS (
           UPDATE audit_heads SET seq = $3, hash = $4, last_txid = $5, last_event = $6, updated_at = now(),
                  lease_until = now() + make_interval(secs => $9)
            WHERE org_id = $1 AND seq = $2 AND lease_token = $7 AND lease_holder = $8 AND lease_until > clock_timestamp()
            RETURNING 1),
         ins AS (
           INSERT INTO audit_chain (org_id, seq, event_id, occurred_at, hash)
           SELECT $1, t.s, t.e, t.o, t.h FROM unnest($10::bigint[], $11::uuid[], $12::timestamptz[], $13::bytea[]) AS t(s, e, o, h)
            WHERE EXISTS (SELECT 1 FROM head)
           RETURNING 1)
         SELECT count(*)::int AS n FROM ins`,
        [orgId, seq, seq + rows.length, h, last.txid, last.id, token, options.holder, leaseSeconds, seqs, ids, times, hashes],
      );
      if (result[0].n !== rows.length) return { state: 'fenced' as const, ids };
      seq += rows.length;
      hash = h;
      lastTxid = last.txid;
      lastEvent = last.id;
      sealed += rows.length;
      // More when the batch was full by count, or may have been cut by bytes (then, at worst, the next read finds nothing).
      const bytes = Number(last.before) + Buffer.byteLength(last.canonical);
      return { state: rows.length < batchSize && bytes < batchBytes / 2 ? ('done' as const) : ('more' as const), ids };
    });
    if (outcome.state === 'fenced') return { sealed, head: { seq, hash }, busy: false, fenced: true };
    if (outcome.ids.length) options.onBatch?.(outcome.ids);
    if (outcome.state === 'done') break;
  }
  return { sealed, head: { seq, hash }, busy: false, fenced: false };
}

/** Seconds since the oldest event not yet sealed was recorded (0 when caught up). */
export async function sealingLagSeconds(ds: DataSource, orgId: string): Promise<number> {
  return inOrgTx(ds, orgId, async (em) => {
    const [row] = await em.query(
      `SELECT coalesce(extract(epoch FROM now() - min(e.occurred_at)), 0)::float AS lag
         FROM audit_events e LEFT JOIN audit_heads h ON h.org_id = e.org_id
        WHERE e.org_id = $1 AND (h.org_id IS NULL OR (e.txid, e.id) > (h.last_txid, h.last_event))`,
      [orgId],
    );
    return Math.max(0, Number(row?.lag ?? 0));
  });
}
