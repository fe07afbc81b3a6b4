import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake OpenTelemetry collector for tests: OTLP/HTTP with JSON bodies (POST /v1/traces), as the
 * real exporter sends them; it keeps each export request's raw body and headers and decodes the spans.
 */
interface OtlpValue { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number }
export interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; startTimeUnixNano: string; attributes?: { key: string; value: OtlpValue }[]; status?: { code?: number } }
interface OtlpExport { resourceSpans: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[] }

export interface Received { span: OtlpSpan; service: string; scope: string; attrs: Record<string, unknown> }

const flat = (attributes: { key: string; value: OtlpValue }[] = []) =>
  Object.fromEntries(attributes.map(({ key, value }) => [key, value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.boolValue ?? value.doubleValue]));

/** A collector that speaks OTLP/HTTP with JSON bodies (POST /v1/traces). */
export async function fakeCollector(): Promise<{ url: string; bodies: string[]; headers: IncomingHttpHeaders[]; spans(): Received[]; close(): Promise<void> }> {
  const bodies: string[] = [];
  const headers: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(404).end();
        return;
      }
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      headers.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    headers,
    spans: () =>
      bodies.flatMap((b) =>
        (JSON.parse(b) as OtlpExport).resourceSpans.flatMap((rs) => {
          const service = String(flat(rs.resource.attributes)['service.name']);
          return rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ span, service, scope: ss.scope.name, attrs: flat(span.attributes) })));
        }),
      ),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
