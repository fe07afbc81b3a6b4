/**
 * Benchmark of the action gate (libs/gate), `npm run bench:gate`. Not a test: it prints one JSON
 * object per line on stdout — {"measure": NAME, "value": NUMBER} — and nothing else there. One run,
 * against the test PostgreSQL (a fresh database, durable commits: no synchronous_commit=off, no
 * unlogged tables) and Redis.
 *
 *   commit_p99_ms                a bare single-row INSERT commit, 16 concurrent clients
 *   gate_overhead_p99_ms         what the gate adds to an Autonomous call (its whole time minus the
 *                                connector call's own time), one org, 16 concurrent actions
 *   gate_overhead_vs_commit      the ratio of the two (goal ≤ 2)
 *   gated_actions_per_sec        Autonomous actions through the gate over 50 orgs (goal ≥ 2,000)
 *   gated_actions_per_sec_one_org  the same for one org (goal ≥ 1,000)
 *   machine_cpu_ms_per_action[_one_org]  CPU time of the whole machine (PostgreSQL, Redis, this process)
 *                                per action in those runs, and machine_idle_pct[_one_org] the share of all
 *                                cores left idle: what an action costs here, steadier than actions/s
 *   task_accept_per_sec          tasks accepted as the API accepts them once checked (task, outbox row
 *                                with its NOTIFY, first event, audit event: committed together, with the
 *                                other tasks accepted meanwhile), 16 concurrent (goal ≥ 1,000)
 *   machine_cpu_ms_per_task_accept, machine_idle_pct_task_accept  the same for task acceptance
 *   accept_to_start_p99_ms       from a task's commit to its worker starting it (lease taken), one task
 *                                at a time on an idle worker runtime (goal ≤ 100)
 *
 * The connector is a built-in one in process (an MCP server over the SDK's in-memory transport)
 * answering at once, so what is measured is the gate; it uses each org's stored API key, which the
 * gate's credential broker decrypts for every action (the decrypt audited in the action's claim).
 * Knobs: BENCH_GATE_SECONDS (default 10) per throughput run; BENCH_GATE_CONCURRENCY (default 16,
 * the concurrency the goals are stated at) for every run, to see how the figures move with the
 * offered load (a larger batch per commit amortises more: at 64, ~1,500 actions/s here).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { AuditKeyring, prepareEvent } from '@steward/audit';
import { createLogger, newId } from '@steward/common';
import { ConnectorHub, type ConnectorManifest } from '@steward/connectors';
import { type DataSource, type EntityManager, inOrg } from '@steward/db';
import { type ActionRequest, actionScope, ContextCache, CredentialBroker, type CredentialTarget, gateAction, type GateDeps, OutcomeWriter, PolicySource } from '@steward/gate';
import { startScriptedModelServer, startWorkerRuntime, TaskAccepter } from '@steward/jobs';
import { seedPolicy } from '@steward/policy';
import { ConfigKeyProvider, credentialAad, sealSecret } from '@steward/vault';
import { createBenchDatabase, machineCpu, machineCpuSince, out, percentile } from './bench-db';

const SECONDS = Number(process.env.BENCH_GATE_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_GATE_CONCURRENCY ?? 16);
const log = (msg: string) => process.stderr.write(`bench:gate ${new Date().toISOString().slice(11, 19)} ${msg}\n`);

const manifest: ConnectorManifest = {
  id: 'crm',
  name: 'CRM',
  vendor: 'bench',
  runtime: { kind: 'builtin' },
  auth: { kind: 'api_key' },
  credentialScope: 'org',
  tools: [{ name: 'crm.lookup', description: 'Look up an account.', inputSchema: { type: 'object', properties: { account: { type: 'string' } } }, action: 'saas.read', extract: { resources: ['/account'] }, readOnly: true }],
};

const keys = new ConfigKeyProvider(`v1:${Buffer.alloc(32, 7).toString('base64')}`);
const apiKeyOf = (orgId: string) => `crm-key-${orgId.slice(-12)}`;

async function newOrg(ds: DataSource, i: number): Promise<{ orgId: string; userId: string; target: CredentialTarget }> {
  const orgId = newId();
  const userId = newId();
  const target: CredentialTarget = { id: newId(), name: 'CRM', credentialScope: 'org', auth: { kind: 'api_key', header: 'authorization', scheme: 'Bearer' } };
  await inOrg(ds, { orgId, userId }, async (em) => {
    await em.query(`INSERT INTO orgs (id, name, slug, domains) VALUES ($1, $2, $3, $4)`, [orgId, `Org ${i}`, `org-${i}-${orgId.slice(-6)}`, [`org${i}.example`]]);
    await em.query(`INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'Analyst', 'x')`, [userId, `analyst-${orgId.slice(-8)}@org${i}.example`]);
    await em.query(`INSERT INTO memberships (id, org_id, user_id, status) VALUES ($1, $2, $3, 'active')`, [newId(), orgId, userId]);
    await em.query(`INSERT INTO policies (id, org_id, version, status, document, note, author_id, activated_at, activated_by) VALUES ($1, $2, 1, 'active', $3, 'seed', $4, now(), $4)`, [
      newId(),
      orgId,
      JSON.stringify(seedPolicy()),
      userId,
    ]);
    // The org's CRM connector and its stored API key (sealed as the vault seals it).
    await em.query(`INSERT INTO connectors (org_id, id, kind, name, auth, credential_scope, status) VALUES ($1, $2, 'builtin', 'CRM', $3, 'org', 'active')`, [orgId, target.id, JSON.stringify(target.auth)]);
    const credentialId = newId();
    const s = await sealSecret(keys, apiKeyOf(orgId), credentialAad(orgId, target.id, credentialId, null));
    await em.query(`INSERT INTO credentials (org_id, id, connector_id, user_id, kind, status, sealed, wrapped_key) VALUES ($1, $2, $3, NULL, 'secret', 'active', $4, $5)`, [orgId, credentialId, target.id, s.sealed, s.wrappedKey]);
  });
  return { orgId, userId, target };
}

async function main(): Promise<void> {
  const bench = await createBenchDatabase('gate', CONCURRENCY + 4);
  const redis = new Redis(process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379');
  const hub = new ConnectorHub({ timeoutMs: 10_000 });
  let failed = false;
  try {
    const { ds, owner } = bench;
    // A bare single-row INSERT commit, the yardstick.
    await owner.query(`CREATE TABLE bench_commit (id uuid PRIMARY KEY, org_id uuid NOT NULL, at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)`);
    await owner.query(`GRANT INSERT ON bench_commit TO steward_app`);
    const commitTimes: number[] = [];
    const commitUntil = Date.now() + SECONDS * 500;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (Date.now() < commitUntil) {
          const t = process.hrtime.bigint();
          await ds.query('INSERT INTO bench_commit (id, org_id, payload) VALUES ($1, $2, $3)', [newId(), newId(), 'x'.repeat(200)]);
          commitTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
      }),
    );
    const commitP99 = percentile(commitTimes, 0.99);
    out('commit_p99_ms', commitP99);
    log(`bare commits: ${commitTimes.length} at ${CONCURRENCY} clients, p50 ${percentile(commitTimes, 0.5).toFixed(2)} ms`);

    const keyring = new AuditKeyring(keys);
    const broker = new CredentialBroker(ds, keys, keyring);
    const orgs: { orgId: string; userId: string; target: CredentialTarget }[] = [];
    for (let i = 0; i < 50; i++) orgs.push(await newOrg(ds, i));
    const targets = new Map(orgs.map((o) => [o.orgId, o.target]));

    // The connector: takes the org's API key from the broker, checks it, answers at once; its own time is measured per call.
    const server = new McpServer({ name: 'crm', version: '1.0.0' });
    server.registerTool('crm.lookup', { description: 'Look up an account.', inputSchema: { account: z.string().optional() } }, async (a) => {
      const scope = actionScope.getStore()!;
      const c = await broker.forCall(targets.get(scope.orgId)!);
      if (!('apiKey' in c) || c.apiKey !== apiKeyOf(scope.orgId)) throw new Error('the connector got the wrong credential');
      return { content: [{ type: 'text' as const, text: `account ${a.account}` }], structuredContent: { tier: 'gold' } };
    });
    await hub.addBuiltin('crm', server);
    const callTimes = new Map<string, number>();
    const timedHub = {
      callTool: async (id: string, tool: string, args: Record<string, unknown>, opts?: { idempotencyKey?: string }) => {
        const t = process.hrtime.bigint();
        try {
          return await hub.callTool(id, tool, args, opts);
        } finally {
          if (opts?.idempotencyKey) callTimes.set(opts.idempotencyKey, Number(process.hrtime.bigint() - t) / 1e6);
        }
      },
    } as unknown as ConnectorHub;
    const outcomes = new OutcomeWriter(ds, keyring, (err) => log(`outcome write failed: ${(err as Error).message}`));
    const deps: GateDeps = {
      ds,
      redis,
      keyring,
      policies: new PolicySource(),
      hub: timedHub,
      manifest: () => manifest,
      outcomes,
      contexts: new ContextCache(),
      credentials: { broker, target: (_connector, orgId) => targets.get(orgId) },
    };
    const request = (o: { orgId: string; userId: string }, n: number): ActionRequest => ({
      orgId: o.orgId,
      userId: o.userId,
      claim: { gatewayKey: newId() },
      connector: 'crm',
      tool: 'crm.lookup',
      args: { account: `ACME-${n % 1000}` },
      tainted: false,
      client: 'mcp',
    });

    const run = async (pick: (n: number) => { orgId: string; userId: string }, seconds: number, overheads?: number[], suffix?: string) => {
      let n = 0;
      let executed = 0;
      const until = Date.now() + seconds * 1000;
      const t0 = process.hrtime.bigint();
      const cpu0 = machineCpu();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (Date.now() < until) {
            const t = process.hrtime.bigint();
            const r = await gateAction(deps, request(pick(n), n++));
            const total = Number(process.hrtime.bigint() - t) / 1e6;
            if (r.status !== 'executed') throw new Error(`expected an executed action, got ${r.status}`);
            executed++;
            overheads?.push(total - (callTimes.get(r.actionId) ?? 0));
            callTimes.delete(r.actionId);
          }
        }),
      );
      await outcomes.flush();
      const rate = executed / (Number(process.hrtime.bigint() - t0) / 1e9);
      const cpu = machineCpuSince(cpu0);
      if (suffix !== undefined && cpu) {
        out(`machine_cpu_ms_per_action${suffix}`, cpu.busyMs / executed);
        out(`machine_idle_pct${suffix}`, cpu.idleShare * 100);
      }
      return rate;
    };

    log('warming up');
    await run((n) => orgs[n % orgs.length], 2);
    // Statistics as a running deployment has them (autovacuum analyzes a table within its first
    // minute of traffic): without them the plans that the database functions cache were made on
    // empty tables and scan a whole org's rows where an index finds one.
    await owner.query('ANALYZE');
    log(`one org, ${CONCURRENCY} concurrent actions, ${SECONDS} s`);
    const overheads: number[] = [];
    const oneOrg = await run(() => orgs[0], SECONDS, overheads, '_one_org');
    const overheadP99 = percentile(overheads, 0.99);
    out('gate_overhead_p99_ms', overheadP99);
    out('gate_overhead_p50_ms', percentile(overheads, 0.5));
    out('gate_overhead_vs_commit', overheadP99 / commitP99);
    out('gated_actions_per_sec_one_org', oneOrg);
    log(`50 orgs, ${CONCURRENCY} concurrent actions, ${SECONDS} s`);
    out('gated_actions_per_sec', await run((n) => orgs[n % orgs.length], SECONDS, undefined, ''));

    // Every action committed its claim before running, and its outcome after; every decrypt is audited.
    const [{ open, actions, decrypts }] = await inOrg(ds, { orgId: orgs[0].orgId }, (em) =>
      em.query(
        `SELECT (SELECT count(*)::int FROM task_actions WHERE org_id = $1 AND state <> 'succeeded') AS open,
                (SELECT count(*)::int FROM task_actions WHERE org_id = $1) AS actions,
                (SELECT count(*)::int FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'credential.decrypt') AS decrypts`,
        [orgs[0].orgId],
      ),
    );
    if (open !== 0) throw new Error(`${open} actions of org 0 did not end as succeeded`);
    if (decrypts !== actions) throw new Error(`org 0: ${actions} actions but ${decrypts} audited decrypts`);

    // Tasks accepted as the API accepts them (after its checks): task + outbox (+ NOTIFY) + first event + audit event,
    // committed together with the other tasks accepted meanwhile (TaskAccepter: one statement, one commit per batch).
    const accepter = new TaskAccepter(ds);
    const accept = async (o: { orgId: string; userId: string }) =>
      (
        await accepter.accept(keys, { orgId: o.orgId, userId: o.userId, prompt: '[script:read-only] Summarise last week', workflow: null, connectors: ['workspace-files'], modelPreference: null, maxSteps: 10, budgetMicros: 1_000_000 }, (taskId) =>
          // No sensitive field: no key is looked up, so no transaction is needed (as the API prepares it).
          prepareEvent(null as unknown as EntityManager, keyring, { id: newId(), orgId: o.orgId, occurredAt: new Date(), actor: { type: 'user', id: o.userId }, action: 'task.create', target: { type: 'Task', id: taskId }, outcome: 'success', client: 'rest', payload: { connectors: ['workspace-files'] } }),
        )
      ).id;
    let accepted = 0;
    const acceptUntil = Date.now() + SECONDS * 500;
    const ta = process.hrtime.bigint();
    const acceptCpu0 = machineCpu();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, k) => {
        while (Date.now() < acceptUntil) {
          await accept(orgs[(accepted + k) % orgs.length]);
          accepted++;
        }
      }),
    );
    out('task_accept_per_sec', accepted / (Number(process.hrtime.bigint() - ta) / 1e9));
    const acceptCpu = machineCpuSince(acceptCpu0);
    if (acceptCpu) {
      out('machine_cpu_ms_per_task_accept', acceptCpu.busyMs / accepted);
      out('machine_idle_pct_task_accept', acceptCpu.idleShare * 100);
    }
    // Those tasks are not run: the next measure starts from an empty outbox.
    // (Org by org: row-level security is forced on both tables, for their owner too.)
    for (const o of orgs) {
      await inOrg(ds, { orgId: o.orgId }, async (em) => {
        await em.query(`DELETE FROM outbox WHERE org_id = $1`, [o.orgId]);
        await em.query(`UPDATE tasks SET state = 'cancelled', finished_at = now() WHERE org_id = $1 AND state = 'queued'`, [o.orgId]);
      });
    }

    // From commit to start, on an idle worker runtime (the relay is woken by the outbox's NOTIFY).
    const model = await startScriptedModelServer();
    const dataDir = mkdtempSync(join(tmpdir(), 'steward-bench-gate-'));
    const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
    const runtimePrefix = `steward-bench-${newId().slice(-8)}`;
    const runtime = await startWorkerRuntime({
      redisUrl: process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379',
      prefix: runtimePrefix,
      concurrency: 4,
      log: quiet,
      agentTasks: { ds, redis, keys, keyring, dataDir, model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: false, maxTokens: 1024, offline: true }, leaseSeconds: 30, relayIntervalMs: 60_000, log: quiet },
    });
    try {
      const starts: number[] = [];
      for (let i = 0; i < 100; i++) {
        const o = orgs[i % orgs.length];
        const id = await accept(o);
        const committed = Date.now();
        for (;;) {
          const [row] = await inOrg(ds, { orgId: o.orgId }, (em) => em.query(`SELECT started_at, state FROM tasks WHERE org_id = $1 AND id = $2`, [o.orgId, id]));
          if (row.started_at && ['completed', 'failed', 'in_review'].includes(row.state)) {
            starts.push(new Date(row.started_at).getTime() - committed);
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      out('accept_to_start_p50_ms', percentile(starts, 0.5));
      out('accept_to_start_p99_ms', percentile(starts, 0.99));
    } finally {
      await runtime.close();
      await model.close();
      const keys = await redis.keys(`${runtimePrefix}:*`);
      if (keys.length) await redis.del(...keys);
    }
  } catch (err) {
    failed = true;
    log(`failed: ${(err as Error).stack ?? err}`);
  } finally {
    await hub.close();
    redis.disconnect();
    await bench.drop();
  }
  process.exit(failed ? 1 : 0);
}

void main();
