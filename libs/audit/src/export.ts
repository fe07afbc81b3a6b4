import type { DataSource } from 'typeorm';
import { inOrg } from '@steward/db';
import { INDEX_ONLY } from './planner';
import type { Checkpoint } from './checkpoint';
import { GENESIS } from './event';
import { loadCheckpoints } from './verify';
import { prefetchPages } from './pages';

/** One NDJSON line of an export: the chain entry and the event's exact canonical bytes. */
export interface ExportLine {
  seq: number;
  hash: string;
  canonical: string;
}

export interface ExportManifest {
  format: 'steward-audit-ndjson/1';
  org: string;
  fromSeq: number;
  toSeq: number;
  count: number;
  /** The hash before fromSeq (the genesis zeros when fromSeq = 1): the verifier starts from it. */
  prevHash: string;
  firstHash: string | null;
  lastHash: string | null;
  /** Signed checkpoints inside the range, for the verifier to check with the auditor's key. */
  checkpoints: Checkpoint[];
  exportedAt: string;
}

function inOrgRead<T>(ds: DataSource, orgId: string, sql: string, args: unknown[]): Promise<T> {
  return inOrg(ds, { orgId }, (em) => em.query(sql, args) as Promise<T>, INDEX_ONLY);
}

/** Chain entries in sequence order, a page at a time (never the whole range in memory; the next page is fetched meanwhile). */
export async function* exportPages(ds: DataSource, orgId: string, fromSeq: number, toSeq: number, pageSize = 5000): AsyncGenerator<ExportLine[]> {
  const page = (after: number) =>
    inOrgRead<{ seq: string; hash: string; canonical: string | null }[]>(
      ds,
      orgId,
      `SELECT c.seq, encode(c.hash, 'hex') AS hash, e.canonical FROM audit_chain c
         LEFT JOIN LATERAL (SELECT ev.canonical FROM audit_events ev
                             WHERE ev.org_id = c.org_id AND ev.occurred_at = c.occurred_at AND ev.id = c.event_id OFFSET 0) e ON true
        WHERE c.org_id = $1 AND c.seq > $2 AND c.seq <= $3 ORDER BY c.seq LIMIT $4`,
      [orgId, after, toSeq, pageSize],
    );
  for await (const rows of prefetchPages(page, fromSeq - 1, pageSize, toSeq)) {
    yield rows.map((r) => ({ seq: Number(r.seq), hash: r.hash, canonical: r.canonical ?? 'null' }));
  }
}

/** Streams chain entries in sequence order, one at a time. */
export async function* exportLines(ds: DataSource, orgId: string, fromSeq: number, toSeq: number, pageSize = 5000): AsyncGenerator<ExportLine> {
  for await (const page of exportPages(ds, orgId, fromSeq, toSeq, pageSize)) yield* page;
}

export async function exportRange(ds: DataSource, orgId: string, from?: number, to?: number): Promise<{ fromSeq: number; toSeq: number }> {
  const [head] = await inOrgRead<{ seq: string }[]>(ds, orgId, 'SELECT seq FROM audit_heads WHERE org_id = $1', [orgId]);
  const last = Number(head?.seq ?? 0);
  const fromSeq = Math.max(1, from ?? 1);
  const toSeq = Math.min(last, to ?? last);
  return { fromSeq, toSeq };
}

export async function exportManifest(ds: DataSource, orgId: string, fromSeq: number, toSeq: number): Promise<ExportManifest> {
  const rows: { seq: string; hash: Buffer }[] = await inOrgRead(ds, orgId, 'SELECT seq, hash FROM audit_chain WHERE org_id = $1 AND seq IN ($2, $3, $4)', [orgId, fromSeq - 1, fromSeq, toSeq]);
  const at = (s: number) => rows.find((r) => Number(r.seq) === s)?.hash.toString('hex') ?? null;
  const checkpoints = (await loadCheckpoints(ds, orgId)).filter((c) => c.seq >= fromSeq && c.seq <= toSeq);
  return {
    format: 'steward-audit-ndjson/1',
    org: orgId,
    fromSeq,
    toSeq,
    count: Math.max(0, toSeq - fromSeq + 1),
    prevHash: fromSeq <= 1 ? GENESIS.toString('hex') : (at(fromSeq - 1) ?? GENESIS.toString('hex')),
    firstHash: toSeq >= fromSeq ? at(fromSeq) : null,
    lastHash: toSeq >= fromSeq ? at(toSeq) : null,
    checkpoints,
    exportedAt: new Date().toISOString(),
  };
}
