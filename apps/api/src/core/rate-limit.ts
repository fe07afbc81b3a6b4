import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { ErrorCode } from '@steward/common';
import { problem, sendProblem } from './problem';

export interface RateLimitOptions {
  prefix: string;
  /** Requests per window for one client address. */
  limit: number;
  windowSeconds: number;
  /** Requests this limiter leaves to another that counts them itself (the MCP gateway counts in one round trip with its own limit). */
  skip?: (req: Request) => boolean;
}

/**
 * Counts in fixed windows, several counters in one round trip (one script): each key is
 * incremented by its amount and given its time to live when the window's first count creates it.
 */
const COUNT_SCRIPT = `local out = {}
for i, key in ipairs(KEYS) do
  local by = tonumber(ARGV[2 * i - 1])
  local c = redis.call('INCRBY', key, by)
  if c == by then redis.call('EXPIRE', key, ARGV[2 * i]) end
  out[i] = c
end
return out`;

const COUNT_SHA = createHash('sha1').update(COUNT_SCRIPT).digest('hex');

export async function countInWindows(redis: Redis, counters: { key: string; by: number; ttlSeconds: number }[]): Promise<number[]> {
  const args: (string | number)[] = [...counters.map((c) => c.key), ...counters.flatMap((c) => [String(c.by), String(c.ttlSeconds)])];
  // By its digest (the script's text is sent only to a Redis that does not have it yet).
  const r = (await redis.evalsha(COUNT_SHA, counters.length, ...args).catch((err: Error) => (/NOSCRIPT/.test(err.message) ? redis.eval(COUNT_SCRIPT, counters.length, ...args) : Promise.reject(err)))) as number[];
  return r.map(Number);
}

/**
 * The same fixed-window counters in this process alone, for when Redis does not answer: each API
 * process then enforces the limits on its own (N processes let N times the limit through) instead
 * of not at all. Bounded: expired windows are dropped as the map fills.
 */
const local = new Map<string, { n: number; until: number }>();
const LOCAL_MAX = 50_000;

export function countLocally(counters: { key: string; by: number; ttlSeconds: number }[]): number[] {
  const now = Date.now();
  if (local.size >= LOCAL_MAX) {
    for (const [k, v] of local) if (v.until <= now) local.delete(k);
    if (local.size >= LOCAL_MAX) local.clear();
  }
  return counters.map((c) => {
    let e = local.get(c.key);
    if (!e || e.until <= now) {
      e = { n: 0, until: now + c.ttlSeconds * 1000 };
      local.set(c.key, e);
    }
    e.n += c.by;
    return e.n;
  });
}

let warned = 0;

/**
 * Counts in Redis, or in this process when Redis does not answer. `report`: the error to log,
 * given at most once every ten seconds (an outage does not log a line per request).
 */
export async function countWindows(redis: Redis, counters: { key: string; by: number; ttlSeconds: number }[]): Promise<{ counts: number[]; report: Error | null }> {
  try {
    return { counts: await countInWindows(redis, counters), report: null };
  } catch (err) {
    const now = Date.now();
    const report = now - warned >= 10_000 ? (err instanceof Error ? err : new Error('redis did not answer')) : null;
    if (report) warned = now;
    return { counts: countLocally(counters), report };
  }
}

/** The per-address window counter of a request: its key, and when the window resets (seconds from now). */
export function addressWindow(req: Request, options: Pick<RateLimitOptions, 'prefix' | 'windowSeconds'>): { key: string; reset: number; ttlSeconds: number } {
  const window = Math.floor(Date.now() / 1000 / options.windowSeconds);
  const reset = (window + 1) * options.windowSeconds - Math.floor(Date.now() / 1000);
  return { key: `${options.prefix}:rl:${req.ip ?? 'unknown'}:${window}`, reset, ttlSeconds: options.windowSeconds + 1 };
}

/** Announces the limit in RateLimit-* headers; answers 429 (and returns false) past it. */
export function admitByAddress(req: Request, res: Response, options: Pick<RateLimitOptions, 'limit' | 'windowSeconds'>, count: number, reset: number): boolean {
  res.setHeader('RateLimit-Limit', String(options.limit));
  res.setHeader('RateLimit-Remaining', String(Math.max(0, options.limit - count)));
  res.setHeader('RateLimit-Reset', String(reset));
  if (count <= options.limit) return true;
  res.setHeader('Retry-After', String(reset));
  sendProblem(
    res,
    problem(429, ErrorCode.RateLimited, 'Too many requests', `Limit of ${options.limit} requests per ${options.windowSeconds} s reached; retry after ${reset} s.`, {
      instance: req.originalUrl.split('?')[0],
      requestId: req.id,
    }),
  );
  return false;
}

/** The general per-address limit of the API (every route; the MCP gateway counts it itself). */
export function apiRateLimit(config: { REDIS_PREFIX: string; RATE_LIMIT_PER_MINUTE: number }): RateLimitOptions {
  return { prefix: `${config.REDIS_PREFIX}:api`, limit: config.RATE_LIMIT_PER_MINUTE, windowSeconds: 60 };
}

/**
 * Fixed-window limit per client address in Redis, announced in RateLimit-* headers.
 * If Redis does not answer, this process counts alone (countLocally) and it is logged.
 */
export function rateLimit(redis: Redis, options: RateLimitOptions) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (options.skip?.(req)) return next();
    const { key, reset, ttlSeconds } = addressWindow(req, options);
    const { counts, report } = await countWindows(redis, [{ key, by: 1, ttlSeconds }]);
    if (report) req.log?.warn({ err: report.message }, 'rate limiter: redis unavailable, requests counted in this process');
    if (admitByAddress(req, res, options, counts[0]!, reset)) next();
  };
}
