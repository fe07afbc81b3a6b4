/**
 * Chain walks (verify, export, SIEM push) look every chain entry's event up by key, in sequence
 * order, whatever the statistics say: fresh month partitions are often unanalysed, and with stale
 * estimates PostgreSQL chose merge joins that sorted the org's whole trail for every page
 * (found by `npm run bench:audit`), or materialised the org's whole partition and filtered it
 * for every entry (an unanalysed partition looks empty). With these off, and the per-entry lookup
 * kept a real LATERAL subquery (`OFFSET 0` stops PostgreSQL from flattening it into a join), the
 * only plan left is the chain's primary key in order with one index lookup per entry, stopping at
 * the page's LIMIT.
 */
export const INDEX_ONLY = { enable_seqscan: 'off', enable_hashjoin: 'off', enable_mergejoin: 'off', enable_sort: 'off', enable_bitmapscan: 'off' } as const;

/** Reads in (txid, id) order stay on the index whatever the statistics say. */
export const PINNED_ORDER = { enable_sort: 'off', jit: 'off' } as const;
