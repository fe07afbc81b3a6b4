import type { DataSource } from 'typeorm';
import { INDEX_ONLY } from './planner';

/**
 * A chain walk (verify, export) as pages of rows from ONE cursor: one plan for the whole walk
 * (planning a query over the partitioned trail costs milliseconds, which a walk of a million
 * entries in pages of a few thousand paid hundreds of times), one consistent snapshot (a
 * repeatable-read, read-only transaction), and the next page fetched while the caller works on
 * the current one (at most two pages in memory). The cursor's connection is held for the walk
 * and given back when the consumer finishes or stops early.
 */
export async function* cursorPages<T>(ds: DataSource, orgId: string, sql: string, params: unknown[], pageSize: number, settings: Record<string, 'on' | 'off'> = INDEX_ONLY): AsyncGenerator<T[]> {
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100_000) throw new Error(`page size ${pageSize} is out of range`);
  const qr = ds.createQueryRunner();
  await qr.connect();
  let next: Promise<T[]> | null = null;
  let began = false;
  let ok = false;
  try {
    await qr.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    began = true;
    const names = Object.keys(settings);
    await qr.query(`SELECT set_config('app.org_id', $1, true), set_config('app.user_id', '', true)${names.map((_, i) => `, set_config($${2 + 2 * i}, $${3 + 2 * i}, true)`).join('')}`, [
      orgId,
      ...names.flatMap((n) => [n, settings[n]]),
    ]);
    await qr.query(`DECLARE steward_chain_walk NO SCROLL CURSOR FOR ${sql}`, params);
    const fetchPage = () => qr.query(`FETCH FORWARD ${pageSize} FROM steward_chain_walk`) as Promise<T[]>;
    next = fetchPage();
    while (next) {
      const rows: T[] = await next;
      next = null;
      if (!rows.length) break;
      if (rows.length === pageSize) {
        next = fetchPage();
        next.catch(() => undefined); // surfaced when awaited; never unhandled if the consumer stops early
      }
      yield rows;
    }
    ok = true;
  } finally {
    if (next) await (next as Promise<T[]>).catch(() => undefined);
    if (began) await qr.query(ok ? 'COMMIT' : 'ROLLBACK').catch(() => undefined);
    await qr.release();
  }
}
