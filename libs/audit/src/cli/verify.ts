#!/usr/bin/env node
// steward-audit-verify: checks an exported trail offline, with the auditor's copy of the
// public key. Usage: node libs/audit/dist/cli/verify.js EXPORT.ndjson[.gz] MANIFEST.json PUBLIC_KEY.pem [CHECKPOINTS.jsonl]
// CHECKPOINTS.jsonl: the checkpoints as they were pushed off the box (the file sink's lines, or the
// S3 objects one per line): checked instead of the manifest's list, which the server filled.
import { readFileSync } from 'node:fs';
import { readCheckpointLog } from '../checkpoint-log';
import type { ExportManifest } from '../export';
import { verifyExport } from '../offline-verify';

async function main(): Promise<void> {
  const [exportPath, manifestPath, keyPath, checkpointsPath] = process.argv.slice(2);
  if (!exportPath || !manifestPath || !keyPath) {
    process.stderr.write('usage: steward-audit-verify EXPORT.ndjson[.gz] MANIFEST.json PUBLIC_KEY.pem [CHECKPOINTS.jsonl]\n');
    process.exit(2);
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ExportManifest;
  const held = checkpointsPath ? readCheckpointLog(readFileSync(checkpointsPath, 'utf8')) : null;
  const result = await verifyExport(exportPath, manifest, readFileSync(keyPath, 'utf8'), held);
  if (result.ok) {
    process.stdout.write(`OK: ${result.checked} entries (seq ${manifest.fromSeq}–${result.lastSeq}), ${result.checkpointsVerified} signed checkpoint(s) ${held ? 'you hold' : 'of the manifest'} verified\n`);
  } else {
    process.stdout.write(`FAIL at seq ${result.firstBadSeq}: ${result.reason}\n`);
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`steward-audit-verify: ${(err as Error).message}\n`);
  process.exit(2);
});
