import type { DataSource } from 'typeorm';
import { inOrg } from '@steward/db';
import { INDEX_ONLY } from './planner';
import type { Checkpoint } from './checkpoint';
import { canonical, GENESIS } from './event';
import type { CheckpointSigner } from './signing';
import { loadCheckpoints } from './verify';
import { cursorPages } from './pages';
import { EXPORT_CHUNK_CHARS, type PageFormat, PageFormatter } from './export-format';

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
   * The exact bytes signed when the manifest was made (`manifestStatementOf`): the org, the range,
   * the count, the hash before the range and both end hashes. The last hash commits to every entry
   * of the range, so the whole export is covered by this signature, entries after the last
   * checkpoint included.
   */
  statement: string;
  /** base64 Ed25519 signature over the statement. */
  signature: string;
}

/** What a manifest's signature covers, as canonical JSON (the verifier compares each field with the manifest). */
export function manifestStatementOf(m: Pick<ExportManifest, 'org' | 'fromSeq' | 'toSeq' | 'count' | 'prevHash' | 'firstHash' | 'lastHash' | 'exportedAt' | 'kid'>): string {
  return canonical({ v: MANIFEST_STATEMENT, org: m.org, fromSeq: m.fromSeq, toSeq: m.toSeq, count: m.count, prevHash: m.prevHash, firstHash: m.firstHash, lastHash: m.lastHash, exportedAt: m.exportedAt, kid: m.kid });
}
export const MANIFEST_STATEMENT = 'steward-audit-export-manifest/1';

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
  return linePages(ds, orgId, fromSeq, toSeq, `c.seq || E'\\t' || encode(c.hash, 'hex') || E'\\t' || COALESCE(e.canonical, 'null') || E'\\n'`, pageSize);
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
  };
  const statement = manifestStatementOf(unsigned);
  return { ...unsigned, statement, signature: await signer.sign(Buffer.from(statement, 'utf8')) };
}
