/**
 * Pages of rows in sequence order, the next page fetched while the caller works on the current
 * one (the database and the formatting overlap; at most two pages are in memory).
 */
export async function* prefetchPages<T extends { seq: string | number }>(fetchAfter: (after: number) => Promise<T[]>, after: number, pageSize: number, until = Infinity): AsyncGenerator<T[]> {
  let next: Promise<T[]> | null = fetchAfter(after);
  while (next) {
    const rows: T[] = await next;
    next = null;
    if (!rows.length) return;
    const last = Number(rows[rows.length - 1].seq);
    if (rows.length === pageSize && last < until) {
      next = fetchAfter(last);
      next.catch(() => undefined); // surfaced when awaited; never an unhandled rejection if the consumer stops early
    }
    yield rows;
  }
}
