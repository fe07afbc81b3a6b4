import 'reflect-metadata';
import { isIP } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { ErrorCode, guardRegExpBacktracking } from '@steward/common';
import { AppModule, type AppDeps } from './app.module';
import { jsonBody } from './core/body';
import { OpenApiService } from './core/openapi';
import { GatewayService, gatewayScope } from './gateway/gateway.service';
import { problem, sendProblem } from './core/problem';
import { apiRateLimit, rateLimit } from './core/rate-limit';
import { requestContext } from './core/request-context';
import { resumeTrace, traceRequests } from './core/tracing';

/**
 * The caller's address as a believed proxy names it (TRUST_PROXY), kept only when it is an address:
 * a proxy that passes on text the client wrote names no one, and that text must not be recorded as
 * where a sign-in came from, nor key a rate limit (it counts as unknown).
 */
function addressOnly(req: Request, _res: Response, next: NextFunction): void {
  const ip = req.ip;
  if (ip !== undefined && !isIP(ip)) Object.defineProperty(req, 'ip', { value: withoutPort(ip), configurable: true, enumerable: true });
  next();
}

/** An address some proxies write with its port ("203.0.113.5:4711", "[2001:db8::7]:443"), without it; undefined if it is no address. */
function withoutPort(value: string): string | undefined {
  const m = /^\[([^\]]+)\]:\d{1,5}$/.exec(value) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(value);
  return m && isIP(m[1]!) ? m[1] : undefined;
}

function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
  next();
}

/** Builds the HTTP app around given dependencies (main.ts and the tests both use this). */
export async function createApp(deps: AppDeps): Promise<INestApplication> {
  // A tenant's policy glob cannot hold this process (every org's) in a regular expression.
  guardRegExpBacktracking();
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(deps), {
    bodyParser: false,
    logger: false,
    abortOnError: false,
  });
  app.set('trust proxy', deps.config.TRUST_PROXY);
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(addressOnly);
  app.use(
    requestContext(deps.log, (req, res, seconds) => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      deps.metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      deps.metrics.duration.observe({ method: req.method, route }, seconds);
    }),
  );
  // A span per request (OpenTelemetry; a no-op unless an OTLP endpoint is configured).
  app.use(traceRequests());
  app.use(securityHeaders);
  // Strict limit on the surfaces where credentials are guessed, a general one everywhere.
  const openapi = app.get(OpenApiService);
  for (const route of openapi.routes().filter((r) => r.spec.sensitive)) {
    // (The OpenAPI form "{userId}" as Express reads a parameter, ":userId": in Express 5 braces mark an optional part.)
    app.use(route.path.replace(/\{(\w+)\}/g, ':$1'), rateLimit(deps.redis, { prefix: `${deps.config.REDIS_PREFIX}:auth`, limit: deps.config.AUTH_RATE_LIMIT_PER_MINUTE, windowSeconds: 60 }));
  }
  // The gateway's own paths are counted by the gateway (the same per-address limit and its per-token one, in one round trip).
  app.use(rateLimit(deps.redis, { ...apiRateLimit(deps.config), skip: (req) => gatewayScope(req.path) !== undefined }));
  app.use(jsonBody(deps.config.BODY_LIMIT_BYTES));
  app.use(resumeTrace());
  // Methods Express does not route get a problem document too.
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].includes(req.method)) {
      sendProblem(res, problem(405, ErrorCode.MethodNotAllowed, 'Method not allowed', undefined, { requestId: req.id }));
      return;
    }
    next();
  });
  // The MCP gateway (Streamable HTTP; its own Bearer authentication, limits and problem documents).
  const gateway = app.get(GatewayService);
  app.use('/mcp', (req: Request, res: Response, next: NextFunction) => {
    // `/mcp`: every connector, tools namespaced; `/mcp/<connector>`: that connector alone, under its own names.
    const scope = gatewayScope(req.baseUrl + req.path);
    if (scope === undefined) return next();
    gateway.handle(req, res, scope).catch((err: unknown) => {
      deps.log.error({ err: (err as Error).message, requestId: req.id }, 'gateway: request failed');
      if (!res.headersSent) sendProblem(res, problem(500, ErrorCode.Internal, 'Internal error', undefined, { instance: '/mcp', requestId: req.id }));
      else res.end();
    });
  });
  await app.init();
  return app;
}
