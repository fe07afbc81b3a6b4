import { PassThrough, Writable } from 'node:stream';
import { writeAll } from './trail.service';

/** The export's writer: a client that goes away ends it, and the source (a database cursor) is let go. */
describe('writeAll (audit export streaming)', () => {
  /** A source like the export's cursor: its `finally` is where the transaction ends and the connection goes back. */
  function source(n: number) {
    const state = { released: false, yielded: 0 };
    async function* gen() {
      try {
        for (let i = 0; i < n; i++) {
          state.yielded++;
          yield `${'x'.repeat(1000)}\n`;
        }
      } finally {
        state.released = true;
      }
    }
    return { state, chunks: gen() };
  }
  /** A client that stops reading (nothing is ever acknowledged). */
  const stalled = () => new Writable({ highWaterMark: 1024, write: () => undefined });

  it('writes everything and ends the output when the client reads', async () => {
    const out = new PassThrough();
    const got: Buffer[] = [];
    out.on('data', (c: Buffer) => got.push(c));
    const { state, chunks } = source(100);
    await writeAll(out, out, chunks);
    expect(Buffer.concat(got).length).toBe(100 * 1001);
    expect(state.released).toBe(true);
  });

  it('a client that stops reading and goes away: the export ends at once and its source is released', async () => {
    const res = stalled();
    const { state, chunks } = source(100_000);
    const done = writeAll(res, res, chunks);
    await new Promise((r) => setTimeout(r, 50));
    expect(state.released).toBe(false); // waiting for the client to drain
    res.destroy();
    const outcome = await Promise.race([done.then(() => 'ended'), new Promise((r) => setTimeout(() => r('hung'), 2000))]);
    expect(outcome).toBe('ended');
    expect(state.released).toBe(true);
    expect(state.yielded).toBeLessThan(100);
  });

  it('through gzip: the gzip stream is destroyed too', async () => {
    const res = stalled();
    const gz = new PassThrough({ highWaterMark: 1024 });
    gz.pipe(res);
    const { state, chunks } = source(100_000);
    const done = writeAll(res, gz, chunks);
    await new Promise((r) => setTimeout(r, 50));
    res.destroy();
    expect(await Promise.race([done.then(() => 'ended'), new Promise((r) => setTimeout(() => r('hung'), 2000))])).toBe('ended');
    expect(state.released).toBe(true);
    expect(gz.destroyed).toBe(true);
  });

  it('a source that fails mid-way cuts the connection (the client sees a broken download, never a file that just stops) and the error goes on', async () => {
    const res = new PassThrough();
    const gz = new PassThrough();
    gz.pipe(res);
    async function* failing() {
      yield 'first line\n';
      throw new Error('the database went away');
    }
    await expect(writeAll(res, gz, failing())).rejects.toThrow('the database went away');
    expect(res.destroyed).toBe(true);
    expect(gz.destroyed).toBe(true);
    expect(res.writableEnded).toBe(false);
  });
});
