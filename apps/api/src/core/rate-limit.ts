import type { NextFunction, Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { ErrorCode } from '@steward/common';
import { problem, sendProblem } from './problem';

export interface RateLimitOptions {
  prefix: string;
  /** Requests per window for one client address. */
  limit: number;
  windowSeconds: number;
}

/**
 * Fixed-window limit per client address in Redis, announced in RateLimit-* headers.
 * If Redis does not answer, requests pass (availability over limiting) and it is logged.
 */
export function rateLimit(redis: Redis, options: RateLimitOptions) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const window = Math.floor(Date.now() / 1000 / options.windowSeconds);
    const reset = (window + 1) * options.windowSeconds - Math.floor(Date.now() / 1000);
    const key = `${options.prefix}:rl:${req.ip ?? 'unknown'}:${window}`;
    let count: number;
    try {
      const results = await redis.multi().incr(key).expire(key, options.windowSeconds + 1).exec();
      count = Number(results?.[0]?.[1] ?? 0);
    } catch (err) {
      req.log?.warn({ err }, 'rate limiter unavailable');
      return next();
    }
    res.setHeader('RateLimit-Limit', String(options.limit));
    res.setHeader('RateLimit-Remaining', String(Math.max(0, options.limit - count)));
    res.setHeader('RateLimit-Reset', String(reset));
    if (count > options.limit) {
      res.setHeader('Retry-After', String(reset));
      sendProblem(
        res,
        problem(429, ErrorCode.RateLimited, 'Too many requests', `Limit of ${options.limit} requests per ${options.windowSeconds} s reached; retry after ${reset} s.`, {
          instance: req.originalUrl.split('?')[0],
          requestId: req.id,
        }),
      );
      return;
    }
    next();
  };
}
