import type { DataSource } from 'typeorm';

/** One action's write-ahead: the arguments of `steward_gate_claim`, by name. */
export interface ClaimRow {
  org: string;
  user: string;
  id: string;
  task: string | null;
  step: number | null;
  gateway: string | null;
  connector: string;
  tool: string;
  type: string;
  level: string;
  rule_ids: string[];
  reason: string;
  policy: string | null;
  policy_version: number | null;
  args_digest: string;
  tainted: boolean;
  labels: string[];
  reversible: boolean;
  state: string;
  refusal: string | null;
  event_id: string;
  event_at: Date;
  event: string;
  groups: string[];
  approval: Record<string, unknown> | null;
  violation: boolean;
  /** More audit events committed with the claim when it is made (e.g. the credential decrypt the action will make). */
  extra?: { id: string; at: Date; canonical: string }[] | null;
  /** A credential read ahead of the claim: its id and wrapped key must still be the live ones. */
  cred_id?: string | null;
  cred_wrapped?: string | null;
  /** A task's lease: the claim is made only while the task runs under this epoch and holder (else `fenced`). */
  fence_epoch?: number | null;
  fence_holder?: string | null;
}

interface Pending {
  row: ClaimRow;
  resolve: (r: string) => void;
  reject: (err: unknown) => void;
}

/**
 * Writes claims in batches, one statement and one durable commit for all the claims that arrived
 * while the previous batch was being written (nothing waits when the gate is idle: a lone claim
 * goes at once). Each claim is still committed before its action runs, and gets its own answer
 * (`claimed`, `duplicate:…`, `paused`, `suspended`, `changed`, `fenced`). A batch that fails as a whole is
 * retried claim by claim, so one bad claim cannot fail its neighbours; nothing of a failed
 * statement was committed, so the retry is safe.
 */
export class ClaimWriter {
  private queue: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly ds: DataSource,
    /** Batches written at once (more parallelism for many orgs; each is one transaction). */
    private readonly parallel = 2,
    private readonly maxBatch = 200,
  ) {}

  claim(row: ClaimRow): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (this.inFlight < this.parallel) void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.inFlight++;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const results = await this.write(batch.map((p) => p.row));
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch (err) {
          if (batch.length === 1) batch[0]!.reject(err);
          else for (const p of batch) this.write([p.row]).then((r) => p.resolve(r[0]!), p.reject);
        }
      }
    } finally {
      this.inFlight--;
    }
  }

  private async write(rows: ClaimRow[]): Promise<string[]> {
    const [{ r }]: { r: string[] }[] = await this.ds.query('SELECT steward_gate_claim_batch($1::jsonb) AS r', [JSON.stringify(rows)]);
    if (!Array.isArray(r) || r.length !== rows.length) throw new Error('the claim batch answered for a different number of claims');
    return r;
  }
}

const writers = new WeakMap<DataSource, ClaimWriter>();

/** The claim writer of a data source (one per process and database, so that all gate callers batch together). */
export function claimWriterFor(ds: DataSource): ClaimWriter {
  let w = writers.get(ds);
  if (!w) {
    w = new ClaimWriter(ds);
    writers.set(ds, w);
  }
  return w;
}
