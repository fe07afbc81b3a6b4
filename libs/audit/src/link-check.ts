import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * Hashes a verify walk's links on worker threads. Every link can be checked on its own — entry i
 * holds iff sha256(stored hash of entry i-1 || canonical i) equals its stored hash — so pages of
 * a chain are checked side by side while the database sends the next ones; if every link of the
 * chain holds, the chain is the one its hashes say. The caller walks a failing page again link by
 * link (ChainVerifier) to name what is wrong.
 */
export class LinkChecker {
  private workers: { worker: Worker; queue: { resolve: (bad: number) => void; reject: (err: Error) => void }[] }[] = [];
  private turn = 0;

  constructor(private readonly threads = Math.max(1, Math.min(2, availableParallelism()))) {}

  /** The index of the first link of the page that does not hold (-1: all hold). `prev` is the stored hash before the page. */
  check(prev: Buffer, hashes: Buffer[], canonicals: (string | null)[]): Promise<number> {
    const i = this.turn++ % this.threads;
    const slot = (this.workers[i] ??= this.start());
    const done = new Promise<number>((resolve, reject) => slot.queue.push({ resolve, reject }));
    slot.worker.postMessage({ prev, hashes, canonicals });
    return done;
  }

  private start() {
    const w = new Worker(WORKER, { eval: true });
    const slot = { worker: w, queue: [] as { resolve: (bad: number) => void; reject: (err: Error) => void }[] };
    w.on('message', (m: { bad: number }) => slot.queue.shift()?.resolve(m.bad));
    w.on('error', (err) => {
      for (const q of slot.queue.splice(0)) q.reject(err);
    });
    w.unref();
    return slot;
  }

  async close(): Promise<void> {
    const slots = this.workers;
    this.workers = [];
    await Promise.all(
      slots.map(async ({ worker }) => {
        const exited = once(worker, 'exit');
        await worker.terminate();
        await exited.catch(() => undefined);
      }),
    );
  }
}

/** The worker: sha256(prev || canonical) per link, prev and canonical side by side in a reused buffer. */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
let scratch = Buffer.allocUnsafe(64 * 1024);
const sha256 = (b) => (crypto.hash ? crypto.hash('sha256', b, 'buffer') : crypto.createHash('sha256').update(b).digest());
parentPort.on('message', ({ prev, hashes, canonicals }) => {
  let p = Buffer.from(prev.buffer, prev.byteOffset, prev.byteLength);
  let bad = -1;
  for (let i = 0; i < hashes.length; i++) {
    const h = Buffer.from(hashes[i].buffer, hashes[i].byteOffset, hashes[i].byteLength);
    const c = canonicals[i];
    if (c !== null) {
      if (32 + c.length * 3 > scratch.length) scratch = Buffer.allocUnsafe(32 + c.length * 3);
      p.copy(scratch, 0);
      const n = scratch.write(c, 32, 'utf8');
      if (!sha256(scratch.subarray(0, 32 + n)).equals(h)) { bad = i; break; }
    }
    p = h;
  }
  parentPort.postMessage({ bad });
});
`;
