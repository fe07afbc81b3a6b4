/**
 * Benchmark of the MCP gateway, `npm run bench:gateway`. Not a test: it prints one JSON object per
 * line on stdout — {"measure": NAME, "value": NUMBER} — and nothing else there. One run, loopback
 * only, bounded: the real API (apps/api, its tsc build) on a fresh database of the test PostgreSQL
 * (durable commits) and Redis, a remote MCP upstream on 127.0.0.1 installed as a connector whose
 * tool is mapped to an Autonomous read and pinned.
 *
 *   commit_p50_ms            a bare single-row INSERT commit on the same PostgreSQL (one client)
 *   direct_p50_ms            an Autonomous call made directly to the upstream with the SDK client
 *   gateway_p50_ms           the same call through the gateway (SDK client → /mcp → gate → upstream)
 *   gateway_added_p50_ms     the difference (goal: ≤ commit_p50_ms + 3)
 *   gateway_serial_cpu_ms_per_call  CPU time (user + system) of the API process per call of the latency run
 *                            (one call at a time, warm-up included): what the gateway spends on a call it cannot batch
 *   gateway_calls_per_sec    200 concurrent sessions × 50 calls each (goal ≥ 1,000)
 *   gateway_errors           calls of that run that failed or came back as errors (must be 0)
 *   gateway_cpu_ms_per_call  CPU time (user + system) of the API process during that run, per call —
 *                            steadier than calls/s on a shared machine
 *   machine_cpu_ms_per_call  CPU time of the whole machine in that run (the API, PostgreSQL, Redis, the
 *                            upstream and the clients), per call; machine_idle_pct the share of all cores left idle
 *
 * The API runs in this process as built; the upstream MCP server (gateway-upstream.ts) and the
 * MCP clients (gateway-load.ts, BENCH_GATEWAY_CLIENT_PROCS processes, default 2) run in processes
 * of their own, as the other machines they stand for: what this process spends is the gateway's.
 * The latency figures are measured by one client process with the official SDK client, direct and
 * through the gateway alike; the throughput sessions are lean MCP clients (the real handshake,
 * session and answers, without the SDK's per-call cost, as a load generator's), and the upstream
 * keeps a session per client, as a typical MCP server does (see the two files).
 *
 * Knobs: BENCH_GATEWAY_SESSIONS (default 200), BENCH_GATEWAY_CALLS (default 50),
 * BENCH_GATEWAY_LATENCY_CALLS (default 300), BENCH_GATEWAY_CLIENT_PROCS (default 2), BENCH_LOG_LEVEL (the
 * API's, default error; `info` adds the access log line of every request, written to a no-op sink).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Redis } from 'ioredis';
import { createLogger, hashToken, newId, parseConfig, tokenHint } from '@steward/common';
import { toolDefinitionHash } from '@steward/connectors';
import { inOrg } from '@steward/db';
import { seedPolicy } from '@steward/policy';
import { createApp } from '../../apps/api/dist/create-app';
import { ApiMetrics } from '../../apps/api/dist/core/metrics';
import { API_REDIS_OPTIONS } from '../../apps/api/dist/core/redis';
import { createBenchDatabase, machineCpu, machineCpuSince, out, percentile } from './bench-db';
import { UPSTREAM_TOOL as TOOL } from './gateway-upstream';

const SESSIONS = Number(process.env.BENCH_GATEWAY_SESSIONS ?? 200);
const CALLS = Number(process.env.BENCH_GATEWAY_CALLS ?? 50);
const LATENCY_CALLS = Number(process.env.BENCH_GATEWAY_LATENCY_CALLS ?? 300);
const CLIENT_PROCS = Math.max(1, Number(process.env.BENCH_GATEWAY_CLIENT_PROCS ?? 2));
const log = (msg: string) => process.stderr.write(`bench:gateway ${new Date().toISOString().slice(11, 19)} ${msg}\n`);

/** A child process of the benchmark (TypeScript loaded as this one is), answering one IPC command at a time. */
function spawnChild(file: string): ChildProcess {
  return fork(path.join(__dirname, file), [], { execArgv: ['-r', path.join(__dirname, 'register.cjs')], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
}
function ask<T>(child: ChildProcess, msg: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`a benchmark process exited (${code})`));
    child.once('exit', onExit);
    child.once('message', (m: { ok: boolean; r: T; error?: string }) => {
      child.off('exit', onExit);
      if (m.ok) resolve(m.r);
      else reject(new Error(m.error));
    });
    child.send(msg as never);
  });
}

async function main(): Promise<void> {
  const bench = await createBenchDatabase('gateway', 20);
  // The API's Redis client as main.ts makes it.
  const redis = new Redis(process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379', API_REDIS_OPTIONS);
  await redis.connect();
  const prefix = `steward-bench-gw-${randomBytes(4).toString('hex')}`;
  const upstreamProc = spawnChild('gateway-upstream.ts');
  const upstream = await new Promise<{ url: string }>((resolve, reject) => {
    upstreamProc.once('message', resolve);
    upstreamProc.once('exit', (code) => reject(new Error(`the upstream exited (${code})`)));
  });
  const loaders: ChildProcess[] = [];
  let app: Awaited<ReturnType<typeof createApp>> | undefined;
  let failed = false;
  try {
    const { ds, owner } = bench;
    const config = parseConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error',
      DATABASE_URL: bench.appUrl,
      STEWARD_TOKEN_PEPPER: 'bench-pepper-0123456789abcdef0123456789abcdef',
      STEWARD_MASTER_KEY: `v1:${Buffer.alloc(32, 7).toString('base64')}`,
      STEWARD_AUDIT_SIGNING_KEY: Buffer.alloc(32, 9).toString('base64'),
      REDIS_URL: process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379',
      REDIS_PREFIX: prefix,
      STEWARD_DATA_DIR: `/tmp/${prefix}`,
      STEWARD_EGRESS_ALLOW_HOSTS: '127.0.0.1',
      RATE_LIMIT_PER_MINUTE: '1000000',
      GATEWAY_CALLS_PER_SECOND: '100000',
      GATEWAY_MAX_SESSIONS_PER_USER: String(SESSIONS + 10),
    });
    const sink = new Writable({ write: (_c, _e, d) => d() });
    app = await createApp({ config, log: createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'error', name: 'bench-api', destination: sink }), dataSource: ds, redis, metrics: new ApiMetrics() });
    await new Promise<void>((r) => app!.getHttpServer().listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;

    // An org, a member with an API key, the upstream installed with its tool mapped and pinned.
    const orgId = newId();
    const userId = newId();
    const key = `stw_${randomBytes(24).toString('base64url')}`;
    await inOrg(ds, { orgId, userId }, async (em) => {
      await em.query(`INSERT INTO orgs (id, name, slug, domains) VALUES ($1, 'Bench Inc', $2, $3)`, [orgId, `bench-${orgId.slice(-6)}`, ['bench.example']]);
      await em.query(`INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'analyst@bench.example', 'Analyst', 'x')`, [userId]);
      await em.query(`INSERT INTO memberships (id, org_id, user_id, status) VALUES ($1, $2, $3, 'active')`, [newId(), orgId, userId]);
      await em.query(`INSERT INTO role_assignments (id, org_id, user_id, role) VALUES ($1, $2, $3, 'member')`, [newId(), orgId, userId]);
      await em.query(`INSERT INTO policies (id, org_id, version, status, document, note, author_id, activated_at, activated_by) VALUES ($1, $2, 1, 'active', $3, 'seed', $4, now(), $4)`, [newId(), orgId, JSON.stringify(seedPolicy()), userId]);
      await em.query(`INSERT INTO api_keys (id, org_id, user_id, name, hint, key_hash, scopes, expires_at) VALUES ($1, $2, $3, 'bench', $4, $5, '{*}', now() + interval '1 day')`, [newId(), orgId, userId, tokenHint(key), hashToken(config.STEWARD_TOKEN_PEPPER, key)]);
      const connectorId = newId();
      await em.query(`INSERT INTO connectors (org_id, id, kind, name, url, auth, credential_scope, status) VALUES ($1, $2, 'remote', 'crm', $3, '{"kind":"none"}', 'org', 'active')`, [orgId, connectorId, `${upstream.url}/mcp`]);
      // The definition as the upstream lists it (pinned by hash, as an admin's approval pins it).
      const probe = new Client({ name: 'bench-probe', version: '1' });
      await probe.connect(new StreamableHTTPClientTransport(new URL(`${upstream.url}/mcp`)));
      const listed = (await probe.listTools()).tools.find((t) => t.name === TOOL.name)!;
      await probe.close();
      const def = { name: listed.name, description: listed.description ?? '', inputSchema: listed.inputSchema };
      await em.query(
        `INSERT INTO connector_tools (org_id, connector_id, name, definition, definition_hash, action, status, approved_hash, approved_definition, approved_at) VALUES ($1, $2, $3, $4, $5, 'saas.read', 'approved', $5, $4, now())`,
        [orgId, connectorId, def.name, JSON.stringify(def), toolDefinitionHash(def)],
      );
    });

    // The yardstick: a bare single-row INSERT commit.
    await owner.query(`CREATE TABLE bench_commit (id uuid PRIMARY KEY, payload text NOT NULL)`);
    await owner.query(`GRANT INSERT ON bench_commit TO steward_app`);
    const commits: number[] = [];
    for (let i = 0; i < LATENCY_CALLS; i++) {
      const t = process.hrtime.bigint();
      await ds.query('INSERT INTO bench_commit (id, payload) VALUES ($1, $2)', [newId(), 'x'.repeat(200)]);
      commits.push(Number(process.hrtime.bigint() - t) / 1e6);
    }

    const auth = { Authorization: `Bearer ${key}` };
    for (let i = 0; i < CLIENT_PROCS; i++) loaders.push(spawnChild('gateway-load.ts'));
    // Every client process loaded and idle before anything is timed (a process starting up beside the latency run slowed it).
    await Promise.all(loaders.map((l) => ask(l, { op: 'ping' })));
    log('latency: direct and through the gateway');
    const latencyCpu = process.cpuUsage();
    const latency = await ask<{ direct: number[]; gateway: number[] }>(loaders[0]!, {
      op: 'latency', direct: `${upstream.url}/mcp`, gateway: `${base}/mcp`, headers: auth, directTool: TOOL.name, gatewayTool: `crm__${TOOL.name}`, warm: 30, n: LATENCY_CALLS,
    });

    const serialCpu = process.cpuUsage(latencyCpu);
    log(`throughput: ${SESSIONS} sessions × ${CALLS} calls (${CLIENT_PROCS} client processes)`);
    await Promise.all(loaders.map((l, i) => ask(l, { op: 'connect', url: `${base}/mcp`, headers: auth, count: Math.floor(SESSIONS / CLIENT_PROCS) + (i < SESSIONS % CLIENT_PROCS ? 1 : 0) })));
    const started = process.hrtime.bigint();
    const cpuBefore = process.cpuUsage();
    const machineBefore = machineCpu();
    const runs = await Promise.all(loaders.map((l, i) => ask<{ calls: number; errors: number; firstError: string | null }>(l, { op: 'run', tool: `crm__${TOOL.name}`, calls: CALLS, tag: String.fromCharCode(65 + (i % 26)) })));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpuBefore);
    const machine = machineCpuSince(machineBefore);
    const commitP50 = percentile(commits, 0.5);
    const directP50 = percentile(latency.direct, 0.5);
    const gatewayP50 = percentile(latency.gateway, 0.5);
    const errors = runs.reduce((n, r) => n + r.errors, 0);
    const calls = runs.reduce((n, r) => n + r.calls, 0);
    const firstError = runs.find((r) => r.firstError)?.firstError;
    if (firstError) log(`first error: ${firstError}`);
    out('commit_p50_ms', commitP50);
    out('direct_p50_ms', directP50);
    out('gateway_p50_ms', gatewayP50);
    out('gateway_added_p50_ms', gatewayP50 - directP50);
    out('gateway_serial_cpu_ms_per_call', (serialCpu.user + serialCpu.system) / 1000 / latency.gateway.length);
    out('gateway_calls_per_sec', calls / seconds);
    out('gateway_errors', errors);
    out('gateway_cpu_ms_per_call', (cpu.user + cpu.system) / 1000 / calls);
    if (machine) {
      out('machine_cpu_ms_per_call', machine.busyMs / calls);
      out('machine_idle_pct', machine.idleShare * 100);
    }
    if (errors) failed = true;
  } catch (err) {
    log(`failed: ${(err as Error).stack ?? err}`);
    failed = true;
  } finally {
    await Promise.all(loaders.map((l) => new Promise((r) => (l.once('exit', r), l.send({ op: 'close' }, (err) => err && l.kill())))));
    await app?.close().catch(() => undefined);
    upstreamProc.send({ op: 'close' });
    const keys = await redis.keys(`${prefix}:*`).catch(() => [] as string[]);
    if (keys.length) await redis.del(...keys).catch(() => undefined);
    redis.disconnect();
    await bench.drop();
  }
  process.exit(failed ? 1 : 0);
}

void main();
