import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { toEcs } from './ecs';
import type { ExportLine } from './export';
import { toCef, toCsv } from './formats';
import { toOcsf } from './ocsf';

export type PageFormat = 'ndjson' | 'csv' | 'cef' | 'ocsf' | 'ecs';

/**
 * Text chunks a little under V8's large-object size: a multi-megabyte string per page would be
 * allocated in the large-object space, which only a full collection frees, and an export's memory
 * would grow by hundreds of megabytes before one comes.
 */
export const EXPORT_CHUNK_CHARS = 60_000;

function formatLine(line: ExportLine, format: PageFormat, productVersion: string): string {
  return format === 'csv' ? toCsv(line)
    : format === 'cef' ? toCef(line, productVersion)
    : format === 'ocsf' ? JSON.stringify(toOcsf(line))
    : format === 'ecs' ? JSON.stringify(toEcs(line))
    : JSON.stringify(line);
}

/**
 * An entry whose event retention purged (its month's partition dropped): the chain keeps its hash,
 * the event is gone. NDJSON keeps the entry (its event `null`, for the verifier); the event formats
 * (CSV, CEF, OCSF, ECS) have no event to write, and leave it out.
 */
const purged = (canonical: string, format: PageFormat) => format !== 'ndjson' && canonical === 'null';

/**
 * What `exportTsvPages` writes for an entry whose event is gone and was not purged by retention (no
 * drop of its month on record): not JSON, so no event can read as it. An event format stops there
 * (the export fails, its connection cut) rather than leave a gap in the trail unsaid; the NDJSON
 * export keeps the entry (`null`) for the verifier, which names it.
 */
export const MISSING_EVENT = 'missing';

/** The event of an export's entry is gone without retention having purged it. */
export class MissingEventError extends Error {
  constructor(readonly seq: number) {
    super(`the event of seq ${seq} is missing from the trail (retention did not purge it): the export stops there; verify the trail (POST /v1/audit/verify, or an NDJSON export with audit verify)`);
    this.name = 'MissingEventError';
  }
}

/** One page of an export as text chunks, a line per entry (each line ends with a newline). */
export function formatPage(lines: ExportLine[], format: PageFormat, productVersion: string): string[] {
  const chunks: string[] = [];
  let text = '';
  for (const line of lines) {
    if (purged(line.canonical, format)) continue;
    text += formatLine(line, format, productVersion);
    text += '\n';
    if (text.length >= EXPORT_CHUNK_CHARS) {
      chunks.push(text);
      text = '';
    }
  }
  if (text) chunks.push(text);
  return chunks;
}

/** A page given as tab-separated chunks (`exportTsvPages`: seq, hash, canonical bytes, one entry a line) as text chunks in the format. */
export function formatTsvPage(tsv: string[], format: PageFormat, productVersion: string): string[] {
  const chunks: string[] = [];
  let text = '';
  for (const chunk of tsv) {
    for (let at = 0; at < chunk.length; ) {
      let end = chunk.indexOf('\n', at);
      if (end < 0) end = chunk.length;
      const t1 = chunk.indexOf('\t', at);
      const t2 = chunk.indexOf('\t', t1 + 1);
      if (t1 < 0 || t2 < 0 || t2 > end) throw new Error('malformed export page');
      const canonical = chunk.slice(t2 + 1, end);
      if (canonical === MISSING_EVENT) throw new MissingEventError(Number(chunk.slice(at, t1)));
      if (!purged(canonical, format)) text += formatLine({ seq: Number(chunk.slice(at, t1)), hash: chunk.slice(t1 + 1, t2), canonical }, format, productVersion) + '\n';
      if (text.length >= EXPORT_CHUNK_CHARS) {
        chunks.push(text);
        text = '';
      }
      at = end + 1;
    }
  }
  if (text) chunks.push(text);
  return chunks;
}

/**
 * Formats export pages on worker threads (two by default), so that a large export neither blocks
 * the process's event loop (an API stays responsive while it streams a million events) nor waits
 * for it: the next pages are fetched while earlier ones are formatted, pages go to the workers in
 * turn, and their text comes back in the order the pages were given. NDJSON is written by the
 * database (`exportNdjsonChunks`); here it stays on the calling thread.
 */
export class PageFormatter {
  private workers: { worker: Worker; queue: { resolve: (chunks: string[]) => void; reject: (err: Error) => void }[] }[] = [];
  private turn = 0;

  constructor(
    private readonly format: PageFormat,
    private readonly productVersion: string,
    private readonly threads = Math.max(1, Math.min(2, availableParallelism())),
  ) {}

  private start(): { worker: Worker; queue: { resolve: (chunks: string[]) => void; reject: (err: Error) => void }[] } {
    const file = join(__dirname, `export-format${__filename.endsWith('.ts') ? '.ts' : '.js'}`);
    const w = new Worker(BOOT, { eval: true, workerData: { file } });
    const slot = { worker: w, queue: [] as { resolve: (chunks: string[]) => void; reject: (err: Error) => void }[] };
    w.on('message', (m: { chunks?: string[]; error?: string }) => {
      const next = slot.queue.shift();
      if (!next) return;
      if (m.error !== undefined) next.reject(new Error(`export formatting failed: ${m.error}`));
      else next.resolve(m.chunks!);
    });
    w.on('error', (err) => {
      for (const q of slot.queue.splice(0)) q.reject(err);
    });
    w.unref();
    return slot;
  }

  /** Formats a page: entries, or tab-separated chunks from `exportTsvPages`. */
  async page(page: ExportLine[] | string[]): Promise<string[]> {
    const tsv = typeof page[0] === 'string';
    const small = tsv ? (page as string[]).reduce((n, c) => n + c.length, 0) < 100_000 : page.length < 200;
    if (this.format === 'ndjson' || small) return tsv ? formatTsvPage(page as string[], this.format, this.productVersion) : formatPage(page as ExportLine[], this.format, this.productVersion);
    const i = this.turn++ % this.threads;
    const slot = (this.workers[i] ??= this.start());
    const done = new Promise<string[]>((resolve, reject) => slot.queue.push({ resolve, reject }));
    slot.worker.postMessage({ [tsv ? 'tsv' : 'lines']: page, format: this.format, version: this.productVersion });
    return done;
  }

  /**
   * Formats pages as they come and yields their text chunks in order, with up to `depth` pages in
   * formatting at once (default: one per worker and one more; memory stays bounded).
   */
  async *texts(pages: AsyncIterable<ExportLine[] | string[]>, depth = this.threads + 1): AsyncGenerator<string> {
    const inFlight: Promise<string[]>[] = [];
    for await (const page of pages) {
      inFlight.push(this.page(page));
      // Keep the rejections handled until they are awaited in order.
      inFlight[inFlight.length - 1].catch(() => undefined);
      if (inFlight.length > depth) yield* await inFlight.shift()!;
    }
    while (inFlight.length) yield* await inFlight.shift()!;
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

/**
 * The worker's code. Built output (dist) is plain JavaScript; when the library runs from its
 * TypeScript sources (tests, `ts` tooling) the worker transpiles them on load with @swc/core,
 * as the test runner does.
 */
const BOOT = `
const { parentPort, workerData } = require('node:worker_threads');
if (workerData.file.endsWith('.ts')) {
  const fs = require('node:fs');
  const { transformSync } = require('@swc/core');
  require.extensions['.ts'] = (m, f) => m._compile(transformSync(fs.readFileSync(f, 'utf8'), { filename: f, jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }).code, f);
}
const { formatPage, formatTsvPage } = require(workerData.file);
parentPort.on('message', (m) => {
  try {
    parentPort.postMessage({ chunks: m.tsv ? formatTsvPage(m.tsv, m.format, m.version) : formatPage(m.lines, m.format, m.version) });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
});
`;
