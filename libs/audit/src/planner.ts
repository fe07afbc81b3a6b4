/** Index lookups per chain entry whatever the statistics (fresh partitions are often unanalysed). */
export const INDEX_ONLY = { enable_seqscan: 'off', enable_hashjoin: 'off' } as const;

/** Reads in (txid, id) order stay on the index whatever the statistics say. */
export const PINNED_ORDER = { enable_sort: 'off', jit: 'off' } as const;
