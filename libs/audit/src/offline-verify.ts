import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { ExportLine, ExportManifest } from './export';
import { ChainVerifier, type VerifyResult } from './verify';

/**
 * Verifies an export with nothing but the file, its manifest and the auditor's copy of
 * the public key: every hash link, every checkpoint signature, and the manifest's range,
 * count and end hashes. Names the first bad sequence number.
 */
export async function verifyExport(exportPath: string, manifest: ExportManifest, publicKeyPem: string): Promise<VerifyResult> {
  const verifier = new ChainVerifier({ seq: manifest.fromSeq - 1, hash: Buffer.from(manifest.prevHash, 'hex') });
  const marks = new Set(manifest.checkpoints.map((c) => c.seq));
  const input = createReadStream(exportPath);
  const lines = createInterface({ input: exportPath.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
  let firstHash: string | null = null;
  let lastHash: string | null = null;
  let count = 0;
  for await (const text of lines) {
    if (!text.trim()) continue;
    let line: ExportLine;
    try {
      line = JSON.parse(text) as ExportLine;
    } catch {
      const r = verifier.finish([], null);
      return { ...r, ok: false, firstBadSeq: r.lastSeq + 1, reason: `line ${count + 1} is not JSON` };
    }
    const eventId = (() => {
      try {
        return String((JSON.parse(line.canonical) as { id?: unknown })?.id ?? '');
      } catch {
        return '';
      }
    })();
    verifier.add({ seq: line.seq, eventId, hash: Buffer.from(line.hash, 'hex'), canonical: line.canonical === 'null' ? null : line.canonical }, (s) => marks.has(s));
    if (verifier.failed) break;
    count++;
    firstHash ??= line.hash;
    lastHash = line.hash;
  }
  const result = verifier.finish(manifest.checkpoints, publicKeyPem, manifest.org);
  if (!result.ok) return result;
  const problems: string[] = [];
  if (count !== manifest.count) problems.push(`the manifest says ${manifest.count} entries, the export has ${count}`);
  if (manifest.count > 0 && (firstHash !== manifest.firstHash || lastHash !== manifest.lastHash)) problems.push('the first or last hash differs from the manifest');
  if (problems.length) return { ...result, ok: false, firstBadSeq: result.lastSeq + 1, reason: problems.join('; ') };
  return result;
}
