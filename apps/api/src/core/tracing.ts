import { type Context, context, propagation, trace } from '@opentelemetry/api';
import type { NextFunction, Request, Response } from 'express';
import { SpanAttr, SpanKind, SpanStatusCode, tracer } from '@steward/common';

/**
 * A server span per API request (a no-op unless tracing is configured: see libs/jobs startTracing).
 * It continues the caller's W3C `traceparent`, is named after the route template (never the path
 * with its ids, nor the query), and carries the org of the authenticated caller. Everything the
 * request does (the gate's steps of an MCP `tools/call`) nests under it.
 */
const httpTracer = tracer('steward.api');
const TRACE_CONTEXT = Symbol('steward.trace-context');

type Traced = Request & { [TRACE_CONTEXT]?: Context };

/** The route template of a request: Nest's route, the MCP gateway's two paths, or "unmatched". */
export function routeOf(req: Request): string {
  const route = (req.route as { path?: string } | undefined)?.path;
  if (route) return route;
  const path = req.originalUrl.split('?')[0]!;
  if (/^\/mcp\/?$/.test(path)) return '/mcp';
  if (/^\/mcp\/[a-z0-9_-]{1,40}\/?$/.test(path)) return '/mcp/:connector';
  return 'unmatched';
}

export function traceRequests() {
  return (req: Request, res: Response, next: NextFunction): void => {
    const parent = propagation.extract(context.active(), req.headers);
    const span = httpTracer.startSpan(req.method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, [SpanAttr.RequestId]: req.id } }, parent);
    const ctx = trace.setSpan(parent, span);
    (req as Traced)[TRACE_CONTEXT] = ctx;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      if (span.isRecording()) {
        const route = routeOf(req);
        span.updateName(`${req.method} ${route}`);
        span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode, ...(req.principal ? { [SpanAttr.OrgId]: req.principal.orgId } : {}) });
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        if (!res.writableFinished) span.setAttribute('steward.aborted', true);
      }
      span.end();
    };
    res.on('finish', end);
    res.on('close', end);
    context.with(ctx, next);
  };
}

/**
 * Re-enters the request's trace context: streams (the body parser) call back in the context of
 * the socket, not of the middleware that started the span. Mounted right after the body parser.
 */
export function resumeTrace() {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const ctx = (req as Traced)[TRACE_CONTEXT];
    if (ctx) context.with(ctx, next);
    else next();
  };
}
