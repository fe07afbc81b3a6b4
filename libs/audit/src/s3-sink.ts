import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { Checkpoint, CheckpointSink } from './checkpoint';

export interface S3SinkOptions {
  bucket: string;
  /** Key prefix, e.g. "steward/checkpoints/" (each checkpoint is `${prefix}${org}/${seq}.json`). */
  prefix?: string;
  region?: string;
  /** An S3-compatible endpoint (MinIO, Ceph, R2, ...); path-style addressing is used with it. */
  endpoint?: string;
  /** Explicit credentials; without them the AWS SDK's default chain (environment, web identity, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Days each checkpoint object stays locked (Object Lock retain-until). */
  retainDays: number;
  /** COMPLIANCE (nobody, not even the root account, can shorten it) or GOVERNANCE. */
  lockMode?: 'COMPLIANCE' | 'GOVERNANCE';
  /** Connect and request time limit, ms (default 10 s); the SDK retries up to 3 times. */
  timeoutMs?: number;
}

/**
 * Pushes checkpoints to an S3-compatible bucket with Object Lock: one object per checkpoint,
 * written only if absent (If-None-Match: *) and locked until `retainDays` from now, so that
 * neither Steward's operators nor an intruder on its servers can rewrite or delete them. The
 * bucket must have Object Lock enabled (it is set when the bucket is created).
 */
export class S3Sink implements CheckpointSink {
  readonly name: string;
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly o: S3SinkOptions) {
    this.prefix = o.prefix ?? '';
    this.name = `s3:${o.bucket}/${this.prefix}`;
    this.client = new S3Client({
      region: o.region ?? 'us-east-1',
      endpoint: o.endpoint,
      forcePathStyle: !!o.endpoint,
      credentials: o.credentials,
      maxAttempts: 3,
      requestHandler: { requestTimeout: o.timeoutMs ?? 10_000, connectionTimeout: o.timeoutMs ?? 10_000 },
    });
  }

  keyOf(c: Checkpoint): string {
    return `${this.prefix}${c.org}/${String(c.seq).padStart(20, '0')}.json`;
  }

  async push(c: Checkpoint): Promise<void> {
    const body = JSON.stringify(c);
    const key = this.keyOf(c);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.o.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
          IfNoneMatch: '*',
          ObjectLockMode: this.o.lockMode ?? 'COMPLIANCE',
          ObjectLockRetainUntilDate: new Date(Date.now() + this.o.retainDays * 86_400_000),
          ChecksumAlgorithm: 'SHA256',
        }),
      );
    } catch (err) {
      // Already there (a push whose acknowledgement was lost): fine if it is the same checkpoint.
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 412) {
        const existing = await this.client.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: key }));
        const text = await existing.Body?.transformToString('utf8');
        if (text === body) return;
        throw new Error(`checkpoint object ${key} already exists with other content`, { cause: err });
      }
      const status = err instanceof S3ServiceException ? ` (HTTP ${err.$metadata.httpStatusCode ?? '?'})` : '';
      throw new Error(`S3 checkpoint push failed: ${(err as Error).name}: ${(err as Error).message}${status}`.slice(0, 500), { cause: err });
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
