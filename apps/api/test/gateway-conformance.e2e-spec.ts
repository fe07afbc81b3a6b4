import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EgressResolver } from '@steward/common';
import { inOrg } from '@steward/db';
import { type Loopback, listen, readBody } from '../../../libs/connectors/src/test-support/loopback';
import { CONFORMANCE_TOOLS, conformanceUpstreamHandler } from './support/conformance-upstream';
import { newApiKey } from './support/fixtures';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Acceptance 1: the official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16,
 * server mode, on Node 22 through npx) against the gateway. Behind it: an upstream written for
 * this run (support/conformance-upstream.ts) installed as the remote connector "conformance",
 * its tools mapped to an Autonomous read and approved, reached through `/mcp/conformance` (that
 * connector alone, under its own tool names, as the scenarios call them). The suite cannot send
 * an Authorization header, so a loopback proxy adds the member's API key (and passes every other
 * header on as it came, Host and Origin included: dns-rebinding-protection checks the gateway's).
 *
 * Every server scenario of 0.1.16 runs. The org allows the connector's sampling and elicitation
 * requests to be relayed to the client (tools-call-sampling and the elicitation scenarios reach
 * the suite's client through the gateway); server-sse-polling has the upstream close the call's
 * stream, which the gateway mirrors on its client's stream.
 */
const SCENARIOS = [
  'server-initialize',
  'ping',
  'logging-set-level',
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-with-logging',
  'tools-call-error',
  'tools-call-with-progress',
  'tools-call-sampling',
  'tools-call-elicitation',
  'elicitation-sep1034-defaults',
  'elicitation-sep1330-enums',
  'json-schema-2020-12',
  'server-sse-polling',
  'server-sse-multiple-streams',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
  'dns-rebinding-protection',
];

/** Checks that must be SUCCESS (not merely present): the gateway really did what the scenario is about. */
const MUST_SUCCEED: Record<string, string[]> = {
  'tools-call-sampling': ['tools-call-sampling'],
  'tools-call-elicitation': ['tools-call-elicitation'],
  'server-sse-polling': ['server-sse-priming-event', 'server-sse-retry-field', 'server-sse-disconnect-resume'],
  'dns-rebinding-protection': ['localhost-host-rebinding-rejected', 'localhost-host-valid-accepted'],
};

const resolver: EgressResolver = async (host) => {
  if (host === 'conformance.upstream.test') return [{ address: '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

function runScenario(url: string, scenario: string, outDir: string): Promise<{ code: number; stdout: string; checks: Check[] }> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['-y', '-p', 'node@22', '-p', '@modelcontextprotocol/conformance@0.1.16', 'conformance', 'server', '--url', url, '--scenario', scenario, '-o', outDir],
      { timeout: 50_000, env: { ...process.env, npm_config_update_notifier: 'false' } },
      (err, stdout, stderr) => {
        const checks: Check[] = [];
        const walk = (dir: string) => {
          for (const e of readdirSync(dir, { withFileTypes: true })) {
            const p = join(dir, e.name);
            if (e.isDirectory()) walk(p);
            else if (e.name === 'checks.json') checks.push(...(JSON.parse(readFileSync(p, 'utf8')) as Check[]));
          }
        };
        try {
          walk(outDir);
        } catch {
          // no results written: the run itself failed (stdout/stderr say why)
        }
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: `${stdout}\n${stderr}`, checks });
      },
    );
  });
}

describe('MCP conformance suite against the gateway (official @modelcontextprotocol/conformance 0.1.16)', () => {
  let h: Harness;
  let org: SeededOrg;
  let upstream: Loopback;
  let upstreamMcp: ReturnType<typeof conformanceUpstreamHandler>;
  let proxy: http.Server;
  let proxyUrl: string;
  const outRoot = mkdtempSync(join(tmpdir(), 'steward-conformance-'));

  beforeAll(async () => {
    h = await startHarness({ resolver, env: { GATEWAY_CALLS_PER_SECOND: '1000', GATEWAY_MAX_SESSIONS_PER_USER: '50' } });
    await new Promise<void>((r) => h.app.getHttpServer().listen(0, '127.0.0.1', r));
    const api = h.app.getHttpServer().address() as AddressInfo;
    org = await seedOrg(h.ds, 'conf');
    const admin = await login(h, org.users.admin.email);
    const key = (await newApiKey(h, await login(h, org.users.member.email), ['*'])).secret;

    // The upstream: Streamable HTTP with sessions (a client's answers to sampling and elicitation come back on new requests of the session).
    upstreamMcp = conformanceUpstreamHandler();
    upstream = await listen(async (req, res) => {
      const body = req.method === 'POST' ? JSON.parse((await readBody(req)).toString() || 'null') : undefined;
      await upstreamMcp.handle(req, res, body);
    });
    expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', admin).send({ hosts: ['conformance.upstream.test'] })).status).toBe(200);
    const created = await h.http.post('/v1/connectors').set('Cookie', admin).send({ name: 'conformance', url: `http://conformance.upstream.test:${upstream.port}/mcp` });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    // The org lets this connector's upstream ask the client's model (sampling) and the user (elicitation).
    const relay = await h.http.patch(`/v1/connectors/${id}`).set('Cookie', admin).send({ relaySampling: true, relayElicitation: true });
    expect(relay.status).toBe(200);
    expect(relay.body).toMatchObject({ relaySampling: true, relayElicitation: true });
    const tools = (await h.http.get(`/v1/connectors/${id}/tools`).set('Cookie', admin)).body.items as { name: string; hash: string }[];
    expect(tools.map((t) => t.name).sort()).toEqual(CONFORMANCE_TOOLS.map((t) => t.name).sort());
    for (const t of tools) {
      expect((await h.http.patch(`/v1/connectors/${id}/tools/${t.name}`).set('Cookie', admin).send({ action: 'saas.read' })).status).toBe(200);
      expect((await h.http.post(`/v1/connectors/${id}/tools/${t.name}/approve`).set('Cookie', admin).send({ hash: t.hash })).status).toBe(200);
    }

    // The loopback proxy that adds the Bearer header the suite cannot send.
    proxy = http.createServer((req, res) => {
      const up = http.request(
        { host: '127.0.0.1', port: api.port, method: req.method, path: req.url === '/mcp' ? '/mcp/conformance' : req.url, headers: { ...req.headers, authorization: `Bearer ${key}` } },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/mcp`;
  });

  afterAll(async () => {
    proxy?.closeAllConnections();
    await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
    await upstreamMcp?.close();
    await upstream?.close();
    await h?.close();
    rmSync(outRoot, { recursive: true, force: true });
  });

  it.each(SCENARIOS)('%s passes through the gateway', async (scenario) => {
    const out = join(outRoot, scenario);
    const r = await runScenario(proxyUrl, scenario, out);
    const failed = r.checks.filter((c) => c.status !== 'SUCCESS' && c.status !== 'INFO' && c.status !== 'SKIPPED');
    // Checks the suite reports as INFO when the behaviour was not exercised (e.g. a stream never closed mid-call): these must have succeeded.
    const missing = (MUST_SUCCEED[scenario] ?? []).filter((id) => !r.checks.some((c) => c.id === id && c.status === 'SUCCESS'));
    expect({ scenario, ran: r.checks.length > 0, failed, missing, output: failed.length || missing.length || !r.checks.length ? r.stdout.slice(-3000) : '' }).toEqual({ scenario, ran: true, failed: [], missing: [], output: '' });
    if (scenario === 'completion-complete') {
      // What the client typed went upstream: recorded first, as a read is (sealed, with its digest and size).
      const events: { action: string; outcome: string }[] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT action, outcome FROM audit_events WHERE org_id = $1 AND action = 'mcp.completion.complete'`, [org.id]));
      expect(events.length).toBeGreaterThanOrEqual(1);
      expect(events.every((e) => e.outcome === 'success')).toBe(true);
    }
  });
});
