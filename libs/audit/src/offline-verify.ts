import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { type ExportLine, type ExportManifest, MANIFEST_STATEMENT, MANIFEST_STATEMENT_V1, MAX_PURGED_RUNS, manifestStatementOf, type PurgedMonth } from './export';
import type { Checkpoint } from './checkpoint';
import { verifySignature } from './signing';
import { ChainVerifier, type VerifyResult } from './verify';

const HEX64 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const seqOk = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** Why a manifest cannot be trusted before any line is read: its shape, or its signature with the auditor's key. */
function manifestProblem(m: ExportManifest, publicKeyPem: string): string | null {
  if (!m || typeof m !== 'object') return 'the manifest is not a JSON object';
  if (m.format !== 'steward-audit-ndjson/1') return `the manifest's format is not steward-audit-ndjson/1`;
  if (typeof m.org !== 'string' || !UUID.test(m.org)) return 'the manifest names no org';
  if (!seqOk(m.fromSeq) || !seqOk(m.toSeq) || !seqOk(m.count) || m.fromSeq < 1) return "the manifest's range or count is not a whole number";
  if (!HEX64.test(String(m.prevHash)) || (m.firstHash !== null && !HEX64.test(String(m.firstHash))) || (m.lastHash !== null && !HEX64.test(String(m.lastHash)))) return "the manifest's hashes are not 64 hex digits";
  if (!Array.isArray(m.checkpoints)) return 'the manifest has no list of checkpoints';
  if (m.purged !== undefined && !purgedShapeOk(m.purged, m.fromSeq, m.toSeq)) return "the manifest's purged runs are not months with seq runs inside its range";
  if (typeof m.statement !== 'string' || typeof m.signature !== 'string' || typeof m.kid !== 'string') return 'the manifest is not signed (an export made before manifests were signed: export it again)';
  if (!verifySignature(publicKeyPem, Buffer.from(m.statement, 'utf8'), m.signature)) return "the manifest's signature is not accepted by this public key";
  // The signed statement must be this manifest's, field by field (the unsigned fields around it could have been changed).
  if (m.statement !== manifestStatementOf(m)) return 'the manifest differs from what its signature covers (its range, count, end hashes or org were changed)';
  if (!m.statement.includes(`"v":"${m.purged === undefined ? MANIFEST_STATEMENT_V1 : MANIFEST_STATEMENT}"`)) return 'the signed statement is not an export manifest';
  return null;
}

const MONTH = /^\d{4}-(0[1-9]|1[0-2])-01$/;

/** Months (each once) with ascending, disjoint seq runs inside [from, to], at most MAX_PURGED_RUNS in all. */
function purgedShapeOk(purged: unknown, from: number, to: number): purged is PurgedMonth[] {
  if (!Array.isArray(purged)) return false;
  const months = new Set<string>();
  const runs: [number, number][] = [];
  for (const m of purged as PurgedMonth[]) {
    if (!m || typeof m !== 'object' || typeof m.month !== 'string' || !MONTH.test(m.month) || months.has(m.month)) return false;
    if (m.held !== null && !seqOk(m.held)) return false;
    if (!Array.isArray(m.runs) || !m.runs.length) return false;
    months.add(m.month);
    for (const r of m.runs) {
      if (!Array.isArray(r) || r.length !== 2 || !seqOk(r[0]) || !seqOk(r[1]) || r[0] > r[1] || r[0] < from || r[1] > to) return false;
      runs.push(r);
    }
  }
  if (runs.length > MAX_PURGED_RUNS) return false;
  runs.sort((a, b) => a[0] - b[0]);
  return runs.every((r, i) => i === 0 || r[0] > runs[i - 1]![1]);
}

/** The month of a purged seq, by the manifest's runs (sorted by start), or null: not purged. */
function purgedMonthOf(runs: { from: number; to: number; month: string }[], seq: number): string | null {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid]!;
    if (seq < r.from) hi = mid - 1;
    else if (seq > r.to) lo = mid + 1;
    else return r.month;
  }
  return null;
}

/**
 * Verifies an export with nothing but the file, its manifest and the auditor's copy of the public
 * key. The manifest's own signature comes first: it covers the org, the range, the count, the hash
 * before the range and both end hashes, so that every entry of the export, those after the last
 * checkpoint included, is covered by a signature. Then every line: exactly the bytes the export
 * wrote (one changed byte anywhere fails), every hash link, every checkpoint signature, and the
 * manifest's count and end hashes. An entry written without its event (`null`) passes only where
 * the signed manifest names it purged by retention, and no month more than it held when dropped.
 * Names the first bad sequence number. With `held` (the auditor's
 * own copies of the checkpoints, e.g. the checkpoint file sink's lines), those are checked instead of
 * the manifest's: every one of this org inside the range must match the chain, and one past the
 * export's end fails it (entries were cut, or the export stops short of it).
 */
export async function verifyExport(exportPath: string, manifest: ExportManifest, publicKeyPem: string, held: Checkpoint[] | null = null): Promise<VerifyResult> {
  const problem = manifestProblem(manifest, publicKeyPem);
  if (problem) return { ok: false, checked: 0, lastSeq: 0, lastHash: '', firstBadSeq: null, reason: problem, checkpointsVerified: 0, purged: 0 };
  // The checkpoints the auditor holds (the copies pushed off the box when they were made) are what
  // an insider who rewrote the chain and the server's own checkpoint rows cannot change: with them,
  // the manifest's list (which the server filled from its database) is only a convenience.
  const ofOrg = held ? held.filter((c) => c && typeof c === 'object' && c.org === manifest.org && Number.isSafeInteger(c.seq)) : null;
  const ours = ofOrg ? ofOrg.filter((c) => c.seq >= manifest.fromSeq) : null;
  // Checkpoints given but none that can check this export: the manifest (the audited server's word,
  // its org and range included) would be all that is left. Said, not passed.
  const none = (reason: string): VerifyResult => ({ ok: false, checked: 0, lastSeq: 0, lastHash: '', firstBadSeq: null, reason, checkpointsVerified: 0, purged: 0 });
  if (held && !ofOrg!.length) return none(`none of the ${held.length} checkpoint(s) you hold is of org ${manifest.org}, the org this export is of: they cannot check it`);
  if (ours && !ours.length) {
    const last = Math.max(...ofOrg!.map((c) => c.seq));
    return none(`the checkpoints you hold of this org end at seq ${last}, before this export starts (seq ${manifest.fromSeq}): nothing you hold covers it (export from seq ${last} or earlier)`);
  }
  if (ours) {
    const beyond = ours.filter((c) => c.seq > manifest.toSeq).sort((a, b) => a.seq - b.seq)[0];
    if (beyond) {
      return { ok: false, checked: 0, lastSeq: manifest.toSeq, lastHash: '', firstBadSeq: manifest.toSeq + 1, reason: `you hold a checkpoint at seq ${beyond.seq}, beyond this export's end (seq ${manifest.toSeq}): entries after ${manifest.toSeq} were cut, or the export stops short (export through seq ${beyond.seq} to check it)`, checkpointsVerified: 0, purged: 0 };
    }
  }
  const checkpoints = ours ?? manifest.checkpoints;
  const verifier = new ChainVerifier({ seq: manifest.fromSeq - 1, hash: Buffer.from(manifest.prevHash, 'hex') });
  // Purged entries as the signed manifest names them, held to what each month held at its drop.
  const purgedRuns = (manifest.purged ?? []).flatMap((m) => m.runs.map(([from, to]) => ({ from, to, month: m.month }))).sort((a, b) => a.from - b.from);
  verifier.limitPurged(Object.fromEntries((manifest.purged ?? []).filter((m) => m.held !== null).map((m) => [m.month, m.held as number])));
  const marks = new Set(checkpoints.map((c) => c.seq));
  const input = createReadStream(exportPath);
  const lines = createInterface({ input: exportPath.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
  let firstHash: string | null = null;
  let lastHash: string | null = null;
  let count = 0;
  const refuse = (reason: string): VerifyResult => {
    const r = verifier.finish([], null);
    return { ...r, ok: false, firstBadSeq: r.lastSeq + 1, reason };
  };
  for await (const text of lines) {
    let line: ExportLine;
    try {
      line = JSON.parse(text) as ExportLine;
    } catch {
      return refuse(`line ${count + 1} is not JSON`);
    }
    // Exactly as the export wrote it: no byte added, removed or changed outside what the chain covers.
    if (!line || typeof line !== 'object' || typeof line.hash !== 'string' || !HEX64.test(line.hash) || typeof line.canonical !== 'string' || text !== JSON.stringify({ seq: line.seq, hash: line.hash, canonical: line.canonical })) {
      return refuse(`line ${count + 1} is not as the export wrote it`);
    }
    const eventId = (() => {
      try {
        return String((JSON.parse(line.canonical) as { id?: unknown })?.id ?? '');
      } catch {
        return '';
      }
    })();
    const gone = line.canonical === 'null';
    const month = gone && purgedRuns.length ? purgedMonthOf(purgedRuns, line.seq) : null;
    if (gone && month === null && line.seq === verifier.nextSeq) {
      return refuse(`seq ${line.seq} has no event, and the manifest names no month retention dropped for it: its event was deleted`);
    }
    verifier.add({ seq: line.seq, eventId, hash: Buffer.from(line.hash, 'hex'), canonical: gone ? null : line.canonical, purged: month !== null, month: month ?? undefined }, (s) => marks.has(s));
    if (verifier.failed) break;
    count++;
    firstHash ??= line.hash;
    lastHash = line.hash;
  }
  const result = verifier.finish(checkpoints, publicKeyPem, manifest.org);
  if (!result.ok) return result;
  const problems: string[] = [];
  if (count !== manifest.count) problems.push(`the manifest says ${manifest.count} entries, the export has ${count}`);
  if (count > 0 && (result.lastSeq !== manifest.toSeq || firstHash !== manifest.firstHash || lastHash !== manifest.lastHash)) problems.push('the first or last hash, or the last sequence number, differs from the manifest');
  if (problems.length) return { ...result, ok: false, firstBadSeq: result.lastSeq + 1, reason: problems.join('; ') };
  return result;
}
