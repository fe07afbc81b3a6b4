import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import type { Config, Logger } from '@steward/common';
import { ConfigKeyProvider } from '@steward/vault';
import { AuditKeyring } from './keyring';
import { type AuditMaintenance, startAuditMaintenance } from './maintenance';
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

/** The worker's audit maintenance, configured from the environment (the worker and the API in-process mode share this). */
export function startAuditMaintenanceFromConfig(config: Config, dataSource: DataSource, log: Logger, ownerDataSource?: DataSource): AuditMaintenance {
  const keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  return startAuditMaintenance({
    dataSource,
    signer: auditSigner(config),
    sink: auditSink(config),
    log: log.child({ component: 'audit' }),
    sealEveryMs: config.AUDIT_SEAL_INTERVAL_MS,
    checkpointEverySeconds: config.AUDIT_CHECKPOINT_SECONDS,
    keyring: new AuditKeyring(keys),
    siemKeys: keys,
    ownerDataSource,
  });
}
