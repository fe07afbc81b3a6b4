import { BatchWriter, type DataSource } from '@steward/db';

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
  /** The workflow the task runs under: the member must still be allowed to run tasks under it (else `changed`). */
  workflow?: string | null;
}

/**
 * Writes claims in batches (libs/db BatchWriter over `steward_gate_claim_batch`): one statement and
 * one durable commit for all the claims that arrived while the previous batch was being written.
 * Each claim is still committed before its action runs, and gets its own answer (`claimed`,
 * `duplicate:…`, `paused`, `suspended`, `changed`, `fenced`).
 */
export class ClaimWriter {
  private readonly writer: BatchWriter<ClaimRow>;

  constructor(ds: DataSource) {
    this.writer = new BatchWriter<ClaimRow>(ds, 'steward_gate_claim_batch');
  }

  claim(row: ClaimRow): Promise<string> {
    return this.writer.write(row);
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
