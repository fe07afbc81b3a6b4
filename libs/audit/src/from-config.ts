import { join } from 'node:path';
import type { Config } from '@steward/common';
import { type CheckpointSink, FileSink, HttpSink } from './checkpoint';
import { Ed25519Signer } from './signing';

/** The checkpoint signer from configuration (a KMS signer would implement the same interface). */
export function auditSigner(config: Config): Ed25519Signer {
  return new Ed25519Signer(config.STEWARD_AUDIT_SIGNING_KEY);
}

/** Where checkpoints go off the box: an HTTP endpoint if configured, else a JSON-lines file. */
export function auditSink(config: Config): CheckpointSink {
  if (config.AUDIT_CHECKPOINT_URL) return new HttpSink(config.AUDIT_CHECKPOINT_URL);
  return new FileSink(config.AUDIT_CHECKPOINT_FILE ?? join(config.STEWARD_DATA_DIR, 'audit-checkpoints.jsonl'));
}
