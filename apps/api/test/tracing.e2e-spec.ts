import type { AddressInfo } from 'node:net';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTracing, type Tracing } from '@steward/jobs';
import { fakeCollector, type Received } from '../../../test/support/otlp-collector';
import { newApiKey } from './support/fixtures';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * OpenTelemetry traces, as a collector receives them: a fake OTLP/HTTP collector on loopback decodes
 * the JSON export requests of the real exporter. One REST request continues the caller's
 * traceparent; one MCP `tools/call` shows the gate's steps (decide, write-ahead, connector call)
 * under the gate's action span, under the request's server span — with the org id, and never the
 * arguments, the API key or the session.
 */

const SERVER = 2; // OTLP SpanKind
const STATUS_ERROR = 2;

describe('OpenTelemetry traces (a fake OTLP/HTTP collector on loopback)', () => {
  let h: Harness;
  let org: SeededOrg;
  let base: string;
  let member: string;
  let collector: Awaited<ReturnType<typeof fakeCollector>>;
  let tracing: Tracing;

  beforeAll(async () => {
    collector = await fakeCollector();
    h = await startHarness({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-token', GATEWAY_APPROVAL_WAIT_SECONDS: '0' } });
    tracing = startTracing(h.config, 'steward-api');
    await new Promise<void>((r) => h.app.getHttpServer().listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(h.app.getHttpServer().address() as AddressInfo).port}`;
    org = await seedOrg(h.ds, 'tracing');
    member = await login(h, org.users.member.email);
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await h?.close();
    await collector?.close();
  });

  /** Flushes the exporter until `want` finds what it looks for (a server span ends on the response's `finish`). */
  async function waitFor<T>(want: (spans: Received[]) => T | undefined): Promise<T> {
    for (let i = 0; i < 50; i++) {
      await tracing.flush();
      const found = want(collector.spans());
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`not exported: ${collector.spans().map((s) => s.span.name).join(', ')}`);
  }

  it('exports a server span per API request that continues the caller trace and names the route and the org', async () => {
    expect(tracing.enabled).toBe(true);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    const res = await h.http.get('/v1/tasks').set('Cookie', member).set('traceparent', `00-${traceId}-${parentId}-01`);
    expect(res.status).toBe(200);

    const s = await waitFor((spans) => spans.find((x) => x.span.traceId === traceId && x.span.kind === SERVER));
    expect(s.span.name).toBe('GET /v1/tasks');
    expect(s.span.parentSpanId).toBe(parentId);
    expect(s.service).toBe('steward-api');
    expect(s.attrs).toMatchObject({ 'http.request.method': 'GET', 'http.route': '/v1/tasks', 'http.response.status_code': 200, 'steward.org_id': org.id, 'steward.request_id': res.headers['x-request-id'] });
    // The collector got the configured header on every export.
    expect(collector.headers.every((x) => x.authorization === 'Bearer collector-token')).toBe(true);
  });

  it('exports the gate steps of an MCP tools/call under the action span, under the request span; no arguments, keys or sessions', async () => {
    const key = (await newApiKey(h, member, ['*'])).secret;
    const client = new McpClient({ name: 'tracing-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
    try {
      // Autonomous (file.read): runs through the connector.
      expect((await client.callTool({ name: 'workspace-files__files_list', arguments: {} })).isError).toBeFalsy();
      // A read of a file that is not there: the connector call fails.
      expect((await client.callTool({ name: 'workspace-files__files_read', arguments: { path: 'zebra-argument-marker.txt' } })).isError).toBe(true);
    } finally {
      await (client.transport as StreamableHTTPClientTransport).terminateSession().catch(() => undefined);
      await client.close();
    }

    const [list, read] = await waitFor((spans) => {
      const byTool = (tool: string) => spans.find((x) => x.span.name === 'gate.action' && x.attrs['steward.tool'] === tool);
      const a = byTool('files.list');
      const b = byTool('files.read');
      const complete = (g: Received | undefined) =>
        g && spans.some((x) => x.span.spanId === g.span.parentSpanId) && ['gate.decide', 'gate.write_ahead', 'gate.execute'].every((n) => spans.some((x) => x.span.name === n && x.span.parentSpanId === g.span.spanId));
      return complete(a) && complete(b) ? [a!, b!] : undefined;
    });
    const spans = collector.spans();
    const children = (parent: Received) => Object.fromEntries(spans.filter((x) => x.span.parentSpanId === parent.span.spanId).map((x) => [x.span.name, x]));

    // The executed action: its request span, its steps, all in one trace.
    const request = spans.find((x) => x.span.spanId === list.span.parentSpanId)!;
    expect(request.span.name).toBe('POST /mcp');
    expect(request.span.kind).toBe(SERVER);
    expect(request.attrs).toMatchObject({ 'http.route': '/mcp', 'steward.org_id': org.id });
    expect(list.span.traceId).toBe(request.span.traceId);
    expect(list.scope).toBe('steward.gate');
    expect(list.attrs).toMatchObject({ 'steward.org_id': org.id, 'steward.client': 'mcp', 'steward.connector': 'workspace-files', 'steward.tool': 'files.list', 'steward.status': 'executed', 'steward.level': 'autonomous' });
    expect(list.attrs['steward.action_id']).toMatch(/^[0-9a-f-]{36}$/);
    const steps = children(list);
    expect(Object.keys(steps).sort()).toEqual(['gate.decide', 'gate.execute', 'gate.write_ahead']);
    expect(steps['gate.decide']!.attrs).toMatchObject({ 'steward.org_id': org.id, 'steward.action_type': 'file.read', 'steward.level': 'autonomous' });
    expect(steps['gate.write_ahead']!.attrs).toMatchObject({ 'steward.org_id': org.id, 'steward.action_id': list.attrs['steward.action_id'], 'steward.state': 'executing', 'steward.claim': 'claimed' });
    expect(steps['gate.execute']!.attrs).toMatchObject({ 'steward.connector': 'workspace-files', 'steward.tool': 'files.list', 'steward.action_id': list.attrs['steward.action_id'] });
    // In the lifecycle's order: decided, then written ahead, then executed.
    const start = (n: string) => BigInt(steps[n]!.span.startTimeUnixNano);
    expect(start('gate.decide') <= start('gate.write_ahead') && start('gate.write_ahead') <= start('gate.execute')).toBe(true);
    for (const s of Object.values(steps)) expect(s.span.traceId).toBe(request.span.traceId);

    // The failed connector call: an error on the execute step, the code on the action.
    expect(read.attrs).toMatchObject({ 'steward.status': 'failed', 'steward.error_code': 'not_found', 'steward.org_id': org.id });
    expect(children(read)['gate.execute']!.span.status?.code).toBe(STATUS_ERROR);

    // Nothing a collector should not see: the arguments, the API key, the session cookie.
    const exported = collector.bodies.join('\n');
    expect(exported).not.toContain('zebra-argument-marker');
    expect(exported).not.toContain(key);
    expect(exported).not.toContain(member.split(';')[0]!.split('=')[1]!);
  });
});
