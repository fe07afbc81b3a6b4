import { type Attributes, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';

/**
 * Spans through the OpenTelemetry API alone (no SDK here): until a process registers a tracer
 * provider (libs/jobs `startTracing`, only when an OTLP endpoint is configured) every tracer is the
 * API's no-op and a span costs next to nothing.
 *
 * Attributes name ids and kinds (org, task, action, tool, level), never arguments, results,
 * credentials or tokens.
 */
export const SpanAttr = {
  OrgId: 'steward.org_id',
  TaskId: 'steward.task_id',
  ActionId: 'steward.action_id',
  RequestId: 'steward.request_id',
} as const;

export { SpanKind, SpanStatusCode, type Span, type Tracer };

export function tracer(name: string): Tracer {
  return trace.getTracer(name);
}

/**
 * Runs `fn` inside a new active span (its children nest under it); the span ends when `fn`
 * settles, marked as an error when it throws.
 */
export function inSpan<T>(t: Tracer, name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  return t.startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
      throw err;
    } finally {
      span.end();
    }
  });
}
