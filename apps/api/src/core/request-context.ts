import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '@steward/common';
import type { Principal, ScimCaller } from '../auth/principal';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
    principal?: Principal;
    scim?: ScimCaller;
    startedAt: bigint;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

/** Request id (taken from X-Request-Id when well-formed), a child logger, and one access-log line. */
export function requestContext(log: Logger, onFinish?: (req: Request, res: Response, seconds: number) => void) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const given = req.header('x-request-id');
    req.id = given && REQUEST_ID.test(given) ? given : randomUUID();
    req.startedAt = process.hrtime.bigint();
    // The request's logger, made when first used (most requests of the MCP gateway log nothing).
    let child: Logger | undefined;
    Object.defineProperty(req, 'log', { configurable: true, enumerable: true, get: () => (child ??= log.child({ requestId: req.id })) });
    res.setHeader('X-Request-Id', req.id);
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - req.startedAt) / 1e9;
      onFinish?.(req, res, seconds);
      if (!log.isLevelEnabled(res.statusCode >= 500 ? 'error' : 'info')) return;
      const line = {
        req: { method: req.method, url: req.originalUrl.split('?')[0], headers: req.headers },
        res: { statusCode: res.statusCode },
        ms: Math.round(seconds * 1000),
        orgId: req.principal?.orgId,
        actor: req.principal?.actorId,
      };
      if (res.statusCode >= 500) req.log.error(line, 'request failed');
      else req.log.info(line, 'request');
    });
    next();
  };
}
