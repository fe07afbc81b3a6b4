import type { RedisOptions } from 'ioredis';

/**
 * How the API connects to Redis (main.ts, and the tests' and benchmarks' API alike): commands
 * fail at once while Redis is away (the rate limits and the gate's reservations fail safe), and
 * commands issued in the same turn of the event loop share one write (automatic pipelining: under
 * load, the gateway's per-request counters of many requests travel together).
 */
export const API_REDIS_OPTIONS: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, enableAutoPipelining: true };
