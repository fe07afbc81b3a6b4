import type { DataSource } from 'typeorm';
import { AppError } from '@steward/common';
import { inOrg } from '@steward/db';
import { INDEX_ONLY } from './planner';
import type { Checkpoint } from './checkpoint';
import { canonical, GENESIS } from './event';
import type { CheckpointSigner } from './signing';
import { loadCheckpoints } from './verify';
import { cursorPages } from './pages';
import { EXPORT_CHUNK_CHARS, MISSING_EVENT, type PageFormat, PageFormatter } from './export-format';
import { DROPPED_COUNTS_SQL, DROPPED_CTE, DROPPED_MONTHS_SQL, PURGED_SQL } from './retention';

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
  /** The key that signed the manifest. */
  kid: string;
  /**
   * The entries of the range whose events retention purged (their months' partitions dropped, as
   * the drop events on record say), by month: the seq runs the export writes with a `null` event,
   * and how many of the org's entries the month held when it was dropped (null: dropped before drops
   * recorded counts). Signed with the rest; without it (a manifest of version 1) every `null` event
   * is missing. The offline verifier takes a `null` event only inside these runs, and no more in a
   * month than it held, as the online verifier does with the drops on record.
   */
  purged?: PurgedMonth[];
  /**
   * The exact bytes signed when the manifest was made (`manifestStatementOf`): the org, the range,
   * the count, the hash before the range, both end hashes and the purged runs. The last hash commits
   * to every entry of the range, so the whole export is covered by this signature, entries after the
   * last checkpoint included.
   */
  statement: string;
  /** base64 Ed25519 signature over the statement. */
  signature: string;
}

/** A month retention dropped, inside an export's range: its purged entries' seq runs (inclusive) and what it held when dropped. */
export interface PurgedMonth {
  /** YYYY-MM-01 (UTC), as the chain entries are dated. */
  month: string;
  held: number | null;
  runs: [number, number][];
}

/**
 * What a manifest's signature covers, as canonical JSON (the verifier compares each field with the
 * manifest): version 2 with the purged runs, version 1 (manifests made before them) without.
 */
export function manifestStatementOf(m: Pick<ExportManifest, 'org' | 'fromSeq' | 'toSeq' | 'count' | 'prevHash' | 'firstHash' | 'lastHash' | 'exportedAt' | 'kid' | 'purged'>): string {
  const base = { org: m.org, fromSeq: m.fromSeq, toSeq: m.toSeq, count: m.count, prevHash: m.prevHash, firstHash: m.firstHash, lastHash: m.lastHash, exportedAt: m.exportedAt, kid: m.kid };
  return m.purged === undefined ? canonical({ v: MANIFEST_STATEMENT_V1, ...base }) : canonical({ v: MANIFEST_STATEMENT, ...base, purged: m.purged });
}
export const MANIFEST_STATEMENT = 'steward-audit-export-manifest/2';
export const MANIFEST_STATEMENT_V1 = 'steward-audit-export-manifest/1';
/** At most this many purged runs in a manifest (a run per dropped month in practice; a range with more is refused, to be exported in parts). */
export const MAX_PURGED_RUNS = 10_000;

function inOrgRead<T>(ds: DataSource, orgId: string, sql: string, args: unknown[]): Promise<T> {
  return inOrg(ds, { orgId }, (em) => em.query(sql, args) as Promise<T>, INDEX_ONLY);
}

/** Chain entries in sequence order, a page at a time (never the whole range in memory; the next page is fetched meanwhile). */
export async function* exportPages(ds: DataSource, orgId: string, fromSeq: number, toSeq: number, pageSize = 5000): AsyncGenerator<ExportLine[]> {
  const pages = cursorPages<{ seq: string; hash: string; canonical: string | null }>(
    ds,
    orgId,
    `SELECT c.seq, encode(c.hash, 'hex') AS hash, e.canonical FROM audit_chain c
       LEFT JOIN LATERAL (SELECT ev.canonical FROM audit_events ev
                           WHERE ev.org_id = c.org_id AND ev.occurred_at = c.occurred_at AND ev.id = c.event_id OFFSET 0) e ON true
      WHERE c.org_id = $1 AND c.seq >= $2 AND c.seq <= $3 ORDER BY c.seq`,
    [orgId, fromSeq, toSeq],
    pageSize,
  );
  for await (const rows of pages) {
    yield rows.map((r) => ({ seq: Number(r.seq), hash: r.hash, canonical: r.canonical ?? 'null' }));
  }
}

/**
 * The NDJSON export's text, in chunks of whole lines a little under V8's large-object size. The
 * database writes each line (`{"seq":…,"hash":"…","canonical":"…"}`, the same bytes as
 * `JSON.stringify` of an ExportLine: PostgreSQL's JSON string escaping is JSON.stringify's for
 * every character a UTF-8 database can hold), so an export of a million events allocates one
 * short-lived string per event here instead of a row, a line object and its serialisation.
 */
export async function* exportNdjsonChunks(ds: DataSource, orgId: string, fromSeq: number, toSeq: number, pageSize = 2000): AsyncGenerator<string> {
  const line = `'{"seq":' || c.seq || ',"hash":"' || encode(c.hash, 'hex') || '","canonical":' || COALESCE(to_json(e.canonical)::text, '"null"') || E'}\\n'`;
  for await (const chunks of linePages(ds, orgId, fromSeq, toSeq, line, pageSize)) yield* chunks;
}

/**
 * Chain entries as tab-separated lines (`seq`, `hash`, the canonical bytes, a newline), in chunks
 * of whole lines, a page of chunks at a time. Canonical JSON holds no raw tab or newline (JSON
 * escapes every control character), so the lines split without ambiguity; a page travels to a
 * formatting thread as a few strings rather than thousands of row objects.
 */
export function exportTsvPages(ds: DataSource, orgId: string, fromSeq: number, toSeq: number, pageSize = 2000): AsyncGenerator<string[]> {
  // An entry without its event: `null` where retention purged it (its month's drop on record, before
  // the purge point: the verifier's rule), else MISSING_EVENT (the event formats stop there, see formatTsvPage).
  const gone = `CASE WHEN c.occurred_at < (SELECT h.purged_before FROM audit_heads h WHERE h.org_id = $1)
      AND to_char(date_trunc('month', c.occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') = ANY(${DROPPED_MONTHS_SQL}) THEN 'null' ELSE '${MISSING_EVENT}' END`;
  return linePages(ds, orgId, fromSeq, toSeq, `c.seq || E'\\t' || encode(c.hash, 'hex') || E'\\t' || COALESCE(e.canonical, ${gone}) || E'\\n'`, pageSize);
}

/** Lines written by the database (`line`: an SQL expression over the chain entry c and its event e), a page at a time as chunks of whole lines. */
async function* linePages(ds: DataSource, orgId: string, fromSeq: number, toSeq: number, line: string, pageSize: number): AsyncGenerator<string[]> {
  const pages = cursorPages<{ line: string }>(
    ds,
    orgId,
    `SELECT ${line} AS line
       FROM audit_chain c
       LEFT JOIN LATERAL (SELECT ev.canonical FROM audit_events ev
                           WHERE ev.org_id = c.org_id AND ev.occurred_at = c.occurred_at AND ev.id = c.event_id OFFSET 0) e ON true
      WHERE c.org_id = $1 AND c.seq >= $2 AND c.seq <= $3 ORDER BY c.seq`,
    [orgId, fromSeq, toSeq],
    pageSize,
  );
  let text = '';
  for await (const rows of pages) {
    const chunks: string[] = [];
    for (const r of rows) {
      text += r.line;
      if (text.length >= EXPORT_CHUNK_CHARS) {
        chunks.push(text);
        text = '';
      }
    }
    if (chunks.length) yield chunks;
  }
  if (text) yield [text];
}

/**
 * An export as text chunks in the given format: NDJSON written by the database, the other formats
 * from pages formatted on a worker thread (the next pages fetched meanwhile).
 */
export async function* exportText(ds: DataSource, orgId: string, fromSeq: number, toSeq: number, format: PageFormat, productVersion: string): AsyncGenerator<string> {
  if (format === 'ndjson') {
    yield* exportNdjsonChunks(ds, orgId, fromSeq, toSeq);
    return;
  }
  const formatter = new PageFormatter(format, productVersion);
  try {
    yield* formatter.texts(exportTsvPages(ds, orgId, fromSeq, toSeq));
  } finally {
    await formatter.close();
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

/** The manifest of an export range, signed with the audit signing key (its statement covers the range, the count and the end hashes). */
export async function exportManifest(ds: DataSource, orgId: string, fromSeq: number, toSeq: number, signer: CheckpointSigner): Promise<ExportManifest> {
  const rows: { seq: string; hash: Buffer }[] = await inOrgRead(ds, orgId, 'SELECT seq, hash FROM audit_chain WHERE org_id = $1 AND seq IN ($2, $3, $4)', [orgId, fromSeq - 1, fromSeq, toSeq]);
  const at = (s: number) => rows.find((r) => Number(r.seq) === s)?.hash.toString('hex') ?? null;
  const checkpoints = (await loadCheckpoints(ds, orgId)).filter((c) => c.seq >= fromSeq && c.seq <= toSeq);
  const purged = await purgedRuns(ds, orgId, fromSeq, toSeq);
  const unsigned = {
    format: 'steward-audit-ndjson/1' as const,
    org: orgId,
    fromSeq,
    toSeq,
    count: Math.max(0, toSeq - fromSeq + 1),
    prevHash: fromSeq <= 1 ? GENESIS.toString('hex') : (at(fromSeq - 1) ?? GENESIS.toString('hex')),
    firstHash: toSeq >= fromSeq ? at(fromSeq) : null,
    lastHash: toSeq >= fromSeq ? at(toSeq) : null,
    checkpoints,
    exportedAt: new Date().toISOString(),
    kid: signer.keyId,
    purged,
  };
  const statement = manifestStatementOf(unsigned);
  return { ...unsigned, statement, signature: await signer.sign(Buffer.from(statement, 'utf8')) };
}


/**
 * The purged entries of a range (no event, before the org's purge point, in a month whose drop is on
 * record: the online verifier's rule), as seq runs per month with each month's count at its drop.
 * Nothing to read when the org never dropped a month.
 */
async function purgedRuns(ds: DataSource, orgId: string, fromSeq: number, toSeq: number): Promise<PurgedMonth[]> {
  if (toSeq < fromSeq) return [];
  return inOrg(ds, { orgId }, async (em) => {
    const [{ months, counts }]: { months: string[]; counts: Record<string, string | number> }[] = await em.query(`SELECT ${DROPPED_MONTHS_SQL} AS months, ${DROPPED_COUNTS_SQL} AS counts`, [orgId]);
    if (!months.length) return [];
    const rows: { month: string; from: string; to: string }[] = await em.query(
      `WITH ${DROPPED_CTE},
       p AS (SELECT c.seq, to_char(date_trunc('month', c.occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS month
               FROM audit_chain c
              WHERE c.org_id = $1 AND c.seq >= $2 AND c.seq <= $3 AND ${PURGED_SQL}
                AND NOT EXISTS (SELECT 1 FROM audit_events ev WHERE ev.org_id = c.org_id AND ev.occurred_at = c.occurred_at AND ev.id = c.event_id))
       SELECT month, min(seq) AS from, max(seq) AS to
         FROM (SELECT seq, month, seq - row_number() OVER (PARTITION BY month ORDER BY seq) AS run FROM p) r
        GROUP BY month, run ORDER BY min(seq) LIMIT ${MAX_PURGED_RUNS + 1}`,
      [orgId, fromSeq, toSeq],
    );
    if (rows.length > MAX_PURGED_RUNS) {
      throw AppError.validation([{ path: 'toSeq', message: `more than ${MAX_PURGED_RUNS} runs of purged entries` }], `The range holds more separate runs of entries purged by retention than one manifest describes (${MAX_PURGED_RUNS}): export it in parts.`);
    }
    const byMonth = new Map<string, PurgedMonth>();
    for (const r of rows) {
      let m = byMonth.get(r.month);
      if (!m) byMonth.set(r.month, (m = { month: r.month, held: counts[r.month] === undefined ? null : Number(counts[r.month]), runs: [] }));
      m.runs.push([Number(r.from), Number(r.to)]);
    }
    return [...byMonth.values()].sort((a, b) => a.month.localeCompare(b.month));
  });
}
