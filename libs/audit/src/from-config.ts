import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import type { Config, Logger } from '@steward/common';
import { ConfigKeyProvider } from '@steward/vault';
import { AuditKeyring } from './keyring';
import { type AuditMaintenance, startAuditMaintenance } from './maintenance';
import { type CheckpointSink, FileSink, HttpSink } from './checkpoint';
import { Ed25519Signer } from './signing';
import { S3Sink } from './s3-sink';

/** The checkpoint signer from configuration (a KMS signer would implement the same interface). */
export function auditSigner(config: Config): Ed25519Signer {
  return new Ed25519Signer(config.STEWARD_AUDIT_SIGNING_KEY);
}

/** Where checkpoints go off the box: an S3 bucket with Object Lock, else an HTTP endpoint, else a JSON-lines file. */
export function auditSink(config: Config): CheckpointSink {
  if (config.AUDIT_CHECKPOINT_S3_BUCKET) {
    const id = config.AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID;
    const secret = config.AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY;
    return new S3Sink({
      bucket: config.AUDIT_CHECKPOINT_S3_BUCKET,
      prefix: config.AUDIT_CHECKPOINT_S3_PREFIX,
      region: config.AUDIT_CHECKPOINT_S3_REGION,
      endpoint: config.AUDIT_CHECKPOINT_S3_ENDPOINT,
      credentials: id && secret ? { accessKeyId: id, secretAccessKey: secret } : undefined,
      retainDays: config.AUDIT_CHECKPOINT_S3_RETAIN_DAYS,
      lockMode: config.AUDIT_CHECKPOINT_S3_LOCK_MODE,
    });
  }
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
    egressAllowHosts: config.STEWARD_EGRESS_ALLOW_HOSTS,
    ownerDataSource,
  });
}
