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
 * If Redis does not answer, requests pass (availability over limiting) and it is logged.
 */
export function rateLimit(redis: Redis, options: RateLimitOptions) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (options.skip?.(req)) return next();
    const { key, reset, ttlSeconds } = addressWindow(req, options);
    let count: number;
    try {
      [count] = (await countInWindows(redis, [{ key, by: 1, ttlSeconds }])) as [number];
    } catch (err) {
      req.log?.warn({ err }, 'rate limiter unavailable');
      return next();
    }
    if (admitByAddress(req, res, options, count, reset)) next();
  };
}
