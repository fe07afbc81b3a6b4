import type { DataSource } from 'typeorm';

interface Pending<Row> {
  row: Row;
  resolve: (r: string) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit in the application: rows handed in while a batch is being written go together as the
 * next batch — one call of a database function (`fn(jsonb) RETURNS text[]`, one answer per row, in
 * order), one round trip and one durable commit for all of them. Nothing waits when the writer is
 * idle: a lone row goes at once. Each caller gets its own row's answer once the batch committed. A
 * batch that fails as a whole is retried row by row, so one bad row cannot fail its neighbours
 * (nothing of a failed statement was committed, so the retry is safe).
 */
export class BatchWriter<Row> {
  private queue: Pending<Row>[] = [];
  private inFlight = 0;

  constructor(
    private readonly ds: DataSource,
    /** The function: `steward_..._batch`, taking a jsonb array of rows and answering text[]. */
    private readonly fn: string,
    /** Batches written at once (more parallelism for many orgs; each is one transaction). */
    private readonly parallel = 2,
    private readonly maxBatch = 200,
  ) {
    if (!/^steward_[a-z_]+$/.test(fn)) throw new Error(`not a batch function name: ${fn}`);
  }

  write(row: Row): Promise<string> {
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
          const results = await this.call(batch.map((p) => p.row));
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch (err) {
          if (batch.length === 1) batch[0]!.reject(err);
          else for (const p of batch) this.call([p.row]).then((r) => p.resolve(r[0]!), p.reject);
        }
      }
    } finally {
      this.inFlight--;
    }
  }

  private async call(rows: Row[]): Promise<string[]> {
    const [{ r }]: { r: string[] }[] = await this.ds.query(`SELECT ${this.fn}($1::jsonb) AS r`, [JSON.stringify(rows)]);
    if (!Array.isArray(r) || r.length !== rows.length) throw new Error(`${this.fn} answered for a different number of rows`);
    return r;
  }
}
