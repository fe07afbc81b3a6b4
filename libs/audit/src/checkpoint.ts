import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DataSource } from 'typeorm';
import { inOrg } from '@steward/db';
import { canonical } from './event';
import type { CheckpointSigner } from './signing';

export interface Checkpoint {
  org: string;
  seq: number;
  /** hex */
  hash: string;
  at: string;
  kid: string;
  /** The exact bytes that were signed (canonical JSON of org, seq, hash, at, kid). */
  statement: string;
  /** base64 Ed25519 signature over the statement. */
  signature: string;
}

/** Where checkpoints go off the box. */
export interface CheckpointSink {
  name: string;
  push(checkpoint: Checkpoint): Promise<void>;
}

/** Appends JSON lines to a file the operator ships elsewhere (or a WORM mount). */
export class FileSink implements CheckpointSink {
  readonly name: string;
  constructor(private readonly path: string) {
    this.name = `file:${path}`;
  }
  async push(c: Checkpoint): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await appendFile(this.path, `${JSON.stringify(c)}\n`, { mode: 0o600 });
  }
}

/** POSTs each checkpoint as JSON (a webhook, or a collector in front of an object store with retention lock). */
export class HttpSink implements CheckpointSink {
  readonly name: string;
  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string> = {},
    private readonly attempts = 3,
  ) {
    this.name = `http:${new URL(url).host}`;
  }
  async push(c: Checkpoint): Promise<void> {
    let last: unknown;
    for (let i = 0; i < this.attempts; i++) {
      try {
        const res = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json', ...this.headers }, body: JSON.stringify(c), signal: AbortSignal.timeout(10_000) });
        if (res.ok) return;
        last = new Error(`checkpoint sink answered ${res.status}`);
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 200 * 2 ** i));
    }
    throw last;
  }
}

export function statementOf(org: string, seq: number, hashHex: string, at: string, kid: string): string {
  return canonical({ org, seq, hash: hashHex, at, kid });
}

/**
 * Signs the org's current head (if it moved since the last checkpoint) and pushes it off
 * the box. The row is kept with its push status; a failed push is retried next time.
 */
export async function checkpointOrg(ds: DataSource, orgId: string, signer: CheckpointSigner, sink: CheckpointSink): Promise<Checkpoint | null> {
  const made = await inOrg(ds, { orgId }, async (em) => {
    const [head] = await em.query('SELECT seq, hash FROM audit_heads WHERE org_id = $1', [orgId]);
    if (!head || Number(head.seq) === 0) return null;
    const [last] = await em.query('SELECT seq FROM audit_checkpoints WHERE org_id = $1 ORDER BY seq DESC LIMIT 1', [orgId]);
    if (last && Number(last.seq) >= Number(head.seq)) return null;
    const at = new Date().toISOString();
    const hashHex = (head.hash as Buffer).toString('hex');
    const statement = statementOf(orgId, Number(head.seq), hashHex, at, signer.keyId);
    const signature = await signer.sign(Buffer.from(statement, 'utf8'));
    await em.query(
      'INSERT INTO audit_checkpoints (org_id, seq, hash, signed_at, key_id, signature, statement) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [orgId, head.seq, head.hash, at, signer.keyId, signature, statement],
    );
    return { org: orgId, seq: Number(head.seq), hash: hashHex, at, kid: signer.keyId, statement, signature } satisfies Checkpoint;
  });
  await pushPending(ds, orgId, sink);
  return made;
}

/** Pushes every checkpoint of the org not yet pushed, oldest first. */
export async function pushPending(ds: DataSource, orgId: string, sink: CheckpointSink): Promise<number> {
  const pending: { seq: string; hash: Buffer; signed_at: Date; key_id: string; signature: string; statement: string }[] = await inOrg(ds, { orgId }, (em) =>
    em.query('SELECT seq, hash, signed_at, key_id, signature, statement FROM audit_checkpoints WHERE org_id = $1 AND pushed_at IS NULL ORDER BY seq', [orgId]),
  );
  let pushed = 0;
  for (const p of pending) {
    const c: Checkpoint = { org: orgId, seq: Number(p.seq), hash: p.hash.toString('hex'), at: JSON.parse(p.statement).at, kid: p.key_id, statement: p.statement, signature: p.signature };
    let error: string | null = null;
    try {
      await sink.push(c);
      pushed++;
    } catch (err) {
      error = String((err as Error).message ?? err).slice(0, 500);
    }
    await inOrg(ds, { orgId }, async (em) => {
      await em.query(`UPDATE audit_checkpoints SET pushed_at = CASE WHEN $3::text IS NULL THEN now() ELSE NULL END, push_error = $3 WHERE org_id = $1 AND seq = $2`, [orgId, p.seq, error]);
    });
    if (error) break;
  }
  return pushed;
}
