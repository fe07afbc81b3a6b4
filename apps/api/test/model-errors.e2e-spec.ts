import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { AuditKeyring } from '@steward/audit';
import { createLogger } from '@steward/common';
import { inOrg } from '@steward/db';
import { type AgentDeps, MAX_RUN_ERRORS, runTask, type ScriptedModelServer, startScriptedModelServer, sweepTasks } from '@steward/jobs';
import { QueueName } from '@steward/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ConfigKeyProvider } from '@steward/vault';
import { Client } from 'pg';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Model faults the worker meets, played by the scripted model server through the real SDK: an
 * overloaded error in the middle of a stream (booked as possibly billed, tried again after a wait), 529 and 429 that never stop (the task
 * fails as model_unavailable, nothing executed), a tool_use cut by max_tokens (never run), and
 * parallel tool_use blocks in whole (non-streamed) responses.
 */
describe('model errors in the agent loop', () => {
  let h: Harness;
  let org: SeededOrg;
  let member: string;
  let model: ScriptedModelServer;
  let dataDir: string;
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
  const deps = (stream: boolean, routes: Record<string, string> = {}): AgentDeps => {
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    return {
      ds: h.ds,
      redis: h.redis,
      redisPrefix: h.config.REDIS_PREFIX,
      keys,
      keyring: new AuditKeyring(keys),
      dataDir,
      model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes, tiers: { quick: 'claude-haiku-5-5', standard: 'claude-sonnet-5-5', complex: 'claude-opus-5-5' }, stream, maxTokens: 1024, offline: true, retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 }, requeue: { times: 2, baseDelayMs: 10 } },
      leaseSeconds: 5,
      log: quiet,
    };
  };
  const workspace = () => join(dataDir, 'workspaces', org.id, org.users.member.id);
  const eventsOf = (taskId: string): Promise<{ kind: string; data: Record<string, unknown> & { reason?: string; wait?: number; status?: number; retryAt: string } }[]> =>
    inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT kind, data FROM task_events WHERE org_id = $1 AND task_id = $2 ORDER BY seq`, [org.id, taskId]));
  const run = async (prompt: string, stream: boolean, extra: { workflow?: string; model?: string; routes?: Record<string, string> } = {}) => {
    const { routes, ...body } = extra;
    const res = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt, ...body });
    expect(res.status).toBe(201);
    const before = model.requests.length;
    // A task whose model stays unavailable goes back to the queue (a new epoch): run again, as the relay would once its delay passed.
    const outcomes: string[] = [];
    for (let epoch = 1; ; ) {
      outcomes.push(await runTask(deps(stream, routes), { orgId: org.id, taskId: res.body.id, epoch }));
      if (outcomes[outcomes.length - 1] !== 'requeued') break;
      const [t]: { epoch: number; state: string }[] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT epoch, state FROM tasks WHERE org_id = $1 AND id = $2`, [org.id, res.body.id]));
      expect(t!.state).toBe('queued');
      epoch = t!.epoch;
    }
    const outcome = outcomes[outcomes.length - 1];
    const task = (await h.http.get(`/v1/tasks/${res.body.id}`).set('Cookie', member)).body;
    const actions: { tool: string; action_type: string; state: string }[] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT tool, action_type, state FROM task_actions WHERE org_id = $1 AND task_id = $2 ORDER BY step`, [org.id, res.body.id]));
    return { outcome, outcomes, task, actions, requests: model.requests.slice(before), id: res.body.id as string };
  };

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'modelerr');
    member = await login(h, org.users.member.email);
    model = await startScriptedModelServer({ recordBodies: true });
    dataDir = mkdtempSync(join(tmpdir(), 'steward-model-'));
    mkdirSync(join(workspace(), 'numbers'), { recursive: true });
    writeFileSync(join(workspace(), 'numbers/last-week.csv'), 'week,revenue\n46,1200000\n');
    for (const f of ['a', 'b', 'c']) writeFileSync(join(workspace(), `${f}.txt`), `${f.toUpperCase()}\n`);
  });
  afterAll(async () => {
    await model?.close();
    await h?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("routes the model: the deployment's route for a workflow, else the workflow's tier, else the task's preference, else the org's tier", async () => {
    const owner = await login(h, org.users.owner.email);
    const models = async (extra: Parameters<typeof run>[2]) => [...new Set((await run('[script:hello]', false, extra)).requests.map((q) => q.model))];
    // The org's tier (standard by default) until it changes; a bad tier is refused and changes nothing.
    expect(await models({})).toEqual(['claude-sonnet-5-5']);
    const bad = await h.http.patch('/v1/org').set('Cookie', owner).send({ modelTier: 'huge' });
    expect(bad.status).toBe(400);
    expect((await h.http.get('/v1/org').set('Cookie', owner)).body.modelTier).toBe('standard');
    expect((await h.http.patch('/v1/org').set('Cookie', member).send({ modelTier: 'complex' })).status).toBe(403);
    expect((await h.http.patch('/v1/org').set('Cookie', owner).send({ modelTier: 'complex' })).body.modelTier).toBe('complex');
    expect(await models({})).toEqual(['claude-opus-5-5']);
    // The task's own preference wins over the org's tier, not over a workflow's.
    expect(await models({ model: 'claude-sonnet-5-5' })).toEqual(['claude-sonnet-5-5']);
    const wf = await h.http.post('/v1/workflows').set('Cookie', owner).send({ key: 'receipts-csv', name: 'Receipts into a CSV', actionTypes: ['file.read'], modelTier: 'quick' });
    expect(wf.status).toBe(201);
    expect(wf.body.modelTier).toBe('quick');
    expect(await models({ workflow: 'receipts-csv', model: 'claude-opus-5-5' })).toEqual(['claude-haiku-5-5']);
    // A workflow without a tier of its own follows the org; the deployment's route wins over everything.
    expect((await h.http.patch(`/v1/workflows/${wf.body.id}`).set('Cookie', owner).send({ modelTier: null })).body.modelTier).toBeNull();
    expect(await models({ workflow: 'receipts-csv' })).toEqual(['claude-opus-5-5']);
    expect(await models({ workflow: 'receipts-csv', routes: { 'receipts-csv': 'claude-regional-eu' } })).toEqual(['claude-regional-eu']);
    const audit = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT canonical::jsonb->>'action' AS action FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' IN ('org.update', 'workflow.create', 'workflow.update') AND canonical::jsonb->>'outcome' = 'success'`, [org.id]));
    expect(audit.map((a: { action: string }) => a.action).sort()).toEqual(['org.update', 'workflow.create', 'workflow.update']);
    await h.http.patch('/v1/org').set('Cookie', owner).send({ modelTier: 'standard' });
  });

  it('an overloaded error inside a 200 stream: the answer had begun (billed up to there), so the attempt is booked at the most its turn could cost and the task waits in the queue before it tries again; it completes', async () => {
    const r = await run('[script:read-only] [stream-error] summarise', true);
    expect(r.outcomes).toEqual(['requeued', 'requeued', 'completed']);
    expect((await eventsOf(r.id)).filter((e) => e.kind === 'requeued').map((e) => [e.data.reason, e.data.wait])).toEqual([
      ['model_unavailable', 1],
      ['model_unavailable', 1],
    ]);
    expect(r.requests.map((q) => q.status)).toEqual([529, 200, 529, 200]);
    expect(r.requests.every((q) => q.stream)).toBe(true);
    expect(r.actions.map((a) => [a.action_type, a.state])).toEqual([
      ['model.invoke', 'failed'],
      ['model.invoke', 'succeeded'],
      ['file.read', 'succeeded'],
      ['model.invoke', 'failed'],
      ['model.invoke', 'succeeded'],
    ]);
  });

  it.each([
    ['529 (overloaded), streamed', '[fail-always:529]', true, 529],
    ['429 (rate limited), whole responses', '[fail-always:429]', false, 429],
  ])('%s without end: the task waits for the model twice (no worker held), then fails as model_unavailable, nothing executed', async (_name, knob, stream, status) => {
    const r = await run(`[script:read-only] ${knob} summarise`, stream);
    expect(r.outcomes).toEqual(['requeued', 'requeued', 'failed']);
    expect(r.task.error).toMatchObject({ code: 'model_unavailable', message: expect.stringContaining(`last status ${status}`) });
    expect(r.requests.map((q) => q.status)).toEqual(Array(9).fill(status));
    expect(r.actions).toEqual(Array(3).fill({ tool: 'messages.create', action_type: 'model.invoke', state: 'failed' }));
    const waits = (await eventsOf(r.id)).filter((e) => e.kind === 'requeued').map((e) => [e.data.reason, e.data.wait, e.data.status]);
    expect(waits).toEqual([
      ['model_unavailable', 1, status],
      ['model_unavailable', 2, status],
    ]);
  });

  it('an outage that ends: the task waits in the queue for its delay (the relay hands BullMQ a delayed job), then goes on where it stopped; each answered turn starts the count of waits again', async () => {
    // The first four attempts of every turn fail: each turn outlasts the worker's three attempts once.
    const r = await run('[script:read-only] [fail-times:529:4] summarise', true);
    expect(r.outcomes).toEqual(['requeued', 'requeued', 'completed']);
    expect(r.requests.map((q) => [q.turn, q.status])).toEqual([
      [0, 529], [0, 529], [0, 529], // first run: gives up, the task waits
      [0, 529], [0, 200], [1, 529], [1, 529], [1, 529], // second run: turn 0 answered, turn 1 waits
      [1, 529], [1, 200], // third run
    ]);
    expect(r.task.state).toBe('completed');
    expect(r.actions.map((a) => [a.action_type, a.state])).toEqual([
      ['model.invoke', 'failed'],
      ['model.invoke', 'succeeded'],
      ['file.read', 'succeeded'],
      ['model.invoke', 'failed'],
      ['model.invoke', 'succeeded'],
    ]);
    const waits = (await eventsOf(r.id)).filter((e) => e.kind === 'requeued');
    expect(waits.map((e) => [e.data.reason, e.data.wait, e.data.epoch])).toEqual([
      ['model_unavailable', 1, 2],
      ['model_unavailable', 1, 3],
    ]);
    // The outbox row of the last wait says when the job may run (the relay delays it until then).
    const [row]: { payload: { epoch: number; notBefore: string } }[] = await inOrg(h.ds, { orgId: org.id }, (em) =>
      em.query(`SELECT payload FROM outbox WHERE org_id = $1 AND payload->>'taskId' = $2 AND (payload->>'epoch')::int = 3`, [org.id, r.id]),
    );
    expect(Date.parse(row!.payload.notBefore)).toBe(Date.parse(waits[1]!.data.retryAt));
  });

  it('a task waiting for the model whose delayed job Redis lost is enqueued again by the sweep still delayed as it was, not at once', async () => {
    const res = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:read-only] [fail-always:529] summarise' });
    // Ten minutes to wait before it tries again.
    const waiting = deps(false);
    expect(await runTask({ ...waiting, model: { ...waiting.model, requeue: { times: 2, baseDelayMs: 600_000 } } }, { orgId: org.id, taskId: res.body.id, epoch: 1 })).toBe('requeued');
    const [wait] = (await eventsOf(res.body.id)).filter((e) => e.kind === 'requeued');
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    // The relay moved its delayed job to BullMQ (its outbox row gone), then Redis lost it.
    await su.query(`DELETE FROM outbox WHERE org_id = $1 AND payload->>'taskId' = $2`, [org.id, res.body.id]);
    await su.query(`UPDATE tasks SET enqueued_at = now() - interval '10 minutes' WHERE id = $1`, [res.body.id]);
    const connection = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue(QueueName.AgentTasks, { connection, prefix: `${h.config.REDIS_PREFIX}:bull` });
    try {
      expect(await sweepTasks(h.ds, queue, new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY), quiet, 60)).toBeGreaterThanOrEqual(1);
    } finally {
      await queue.close();
      connection.disconnect();
    }
    const [row]: { payload: { epoch: number; notBefore?: string } }[] = await inOrg(h.ds, { orgId: org.id }, (em) =>
      em.query(`SELECT payload FROM outbox WHERE org_id = $1 AND payload->>'taskId' = $2`, [org.id, res.body.id]),
    );
    expect(row!.payload.epoch).toBe(3);
    expect(Date.parse(row!.payload.notBefore!)).toBe(Date.parse(wait!.data.retryAt));
    await su.query(`UPDATE tasks SET state = 'cancelled', finished_at = now() WHERE id = $1`, [res.body.id]);
    await su.query(`DELETE FROM outbox WHERE org_id = $1 AND payload->>'taskId' = $2`, [org.id, res.body.id]);
    await su.end();
  });

  it('a tool_use cut by max_tokens never runs: the turn is asked again once with twice the room; cut again, the task fails clearly', async () => {
    // A model that needs more room for its tool call: the second try has it, and the task goes on.
    const r = await run('[script:hello] [max-tokens-tool] write something', true);
    expect(r.outcome).toBe('completed');
    expect(r.requests.map((q) => [q.turn, q.maxTokens])).toEqual([
      [0, 1024],
      [0, 2048],
    ]);
    expect(r.actions.map((a) => a.action_type)).toEqual(['model.invoke', 'model.invoke']);
    expect(existsSync(join(workspace(), 'cut.txt'))).toBe(false);
    // The doubled room is for that turn alone: the next turn asks for the configured room again.
    const next = await run('[script:read-only] [max-tokens-tool] read something', true);
    expect(next.outcome).toBe('completed');
    expect(next.requests.map((q) => [q.turn, q.maxTokens])).toEqual([
      [0, 1024],
      [0, 2048],
      [1, 1024],
    ]);
    // One that is cut whatever the room: nothing of it runs, and the task fails as max_tokens.
    const cut = await run('[script:hello] [max-tokens-tool-always] write something', true);
    expect(cut.outcome).toBe('failed');
    expect(cut.task.error).toMatchObject({ code: 'max_tokens' });
    expect(cut.actions.map((a) => a.action_type)).toEqual(['model.invoke', 'model.invoke']);
    expect(existsSync(join(workspace(), 'cut.txt'))).toBe(false);
  });

  it("a conversation grown past the model's context window fails the task as such (context_exceeded), not as the model being unavailable, and is not retried", async () => {
    const r = await run('[script:loop] [context-full-at:2] keep reading', false);
    expect(r.outcome).toBe('failed');
    expect(r.task.error).toMatchObject({ code: 'context_exceeded', message: expect.stringMatching(/no longer fits the model's context window .*prompt is too long/) });
    expect(r.requests.map((q) => [q.turn, q.status])).toEqual([
      [0, 200],
      [1, 200],
      [2, 400],
    ]);
  });

  it('a task whose every run ends in the same error (its sealed prompt damaged) is failed after a bounded number of runs, not taken up again for ever', async () => {
    const res = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] a task whose prompt will not open' });
    expect(res.status).toBe(201);
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    await su.query(`UPDATE tasks SET prompt_sealed = $2 WHERE id = $1`, [res.body.id, Buffer.alloc(64, 1)]).finally(() => su.end());
    const before = model.requests.length;
    const results: string[] = [];
    // As BullMQ (3 attempts a job) and the sweep (a new epoch once the lease has expired) would run it.
    for (let run = 0; run < MAX_RUN_ERRORS + 2 && results.at(-1) !== 'failed'; run++) {
      const [t]: { epoch: number }[] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT epoch FROM tasks WHERE org_id = $1 AND id = $2`, [org.id, res.body.id]));
      results.push(await runTask(deps(false), { orgId: org.id, taskId: res.body.id, epoch: t!.epoch }).catch(() => 'threw'));
    }
    expect(results).toEqual([...Array(MAX_RUN_ERRORS - 1).fill('threw'), 'failed']);
    const task = (await h.http.get(`/v1/tasks/${res.body.id}`).set('Cookie', member)).body;
    expect(task).toMatchObject({ state: 'failed', error: { code: 'internal_error', message: expect.stringContaining(`${MAX_RUN_ERRORS} times`) } });
    expect(model.requests.length).toBe(before);
    // Failed, it is no longer taken up: a later delivery of its job does nothing.
    expect(await runTask(deps(false), { orgId: org.id, taskId: res.body.id, epoch: 1 })).toBe('skipped');
  });

  it('a run that stopped after writing the final answer and before finishing the task: the next run finishes it with that answer, without asking the model again', async () => {
    const r = await run('[script:hello] say hello', false);
    expect(r.outcome).toBe('completed');
    // As a worker that died between the two leaves it: the answer in the transcript, the task still running under a lapsed lease.
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    try {
      await su.query(`DELETE FROM task_events WHERE task_id = $1 AND kind IN ('output', 'state') AND seq > (SELECT max(seq) FROM task_events WHERE task_id = $1 AND kind = 'model')`, [r.id]);
      await su.query(`UPDATE tasks SET state = 'running', finished_at = NULL, lease_holder = 'a-worker-that-died', lease_until = now() - interval '1 second' WHERE id = $1`, [r.id]);
    } finally {
      await su.end();
    }
    const before = model.requests.length;
    const [t]: { epoch: number }[] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT epoch FROM tasks WHERE org_id = $1 AND id = $2`, [org.id, r.id]));
    expect(await runTask(deps(false), { orgId: org.id, taskId: r.id, epoch: t!.epoch })).toBe('completed');
    expect(model.requests.length).toBe(before);
    const kinds = (await eventsOf(r.id)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'model')).toHaveLength(1);
    expect(kinds.slice(-2)).toEqual(['output', 'state']);
    expect((await h.http.get(`/v1/tasks/${r.id}`).set('Cookie', member)).body.state).toBe('completed');
  });

  it('parallel tool_use blocks in a whole (non-streamed) response: each gated, all results back together', async () => {
    const r = await run('[script:parallel] read three files', false);
    expect(r.outcome).toBe('completed');
    expect(r.requests.every((q) => !q.stream && q.status === 200)).toBe(true);
    expect(r.requests).toHaveLength(2);
    expect(r.actions.map((a) => a.action_type)).toEqual(['model.invoke', 'file.read', 'file.read', 'file.read', 'model.invoke']);
    const out = (await h.http.get(`/v1/tasks/${r.task.id}/events?follow=false`).set('Cookie', member)).text;
    expect(out).toMatch(/Read 3 files: .*a\.txt.*b\.txt.*c\.txt/);
  });

  it('model.invoke is labelled, decided and audited by digest and size; where the policy says so, personal data is redacted from what is sent', async () => {
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    try {
      const prompt = '[script:hello] Draft a reply to bob@gmail.com (card 4111 1111 1111 1111) and copy alice@modelerr.example';
      const invokes = (taskId: string) =>
        su.query(
          `SELECT a.labels, e.canonical::jsonb->'payload' AS p FROM task_actions a JOIN audit_events e ON e.canonical::jsonb->'payload'->>'actionId' = a.id::text WHERE a.task_id = $1 AND a.action_type = 'model.invoke' ORDER BY a.step`,
          [taskId],
        );
      // A policy without the seed's redaction rule: the conversation goes as it is, labelled "pii"
      // and audited by digest and size only.
      const [{ document }] = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows;
      expect(document.rules.map((r: { id: string }) => r.id)).toContain('org.model-personal-data');
      const without = { ...document, rules: document.rules.filter((r: { id: string }) => r.id !== 'org.model-personal-data') };
      await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(without)]);
      const before = model.bodies.length;
      const plain = await run(prompt, true);
      expect(plain.outcome).toBe('completed');
      expect(model.bodies.slice(before).join('')).toContain('bob@gmail.com');
      const [p0] = (await invokes(plain.task.id)).rows;
      expect(p0.labels).toContain('pii');
      expect(p0.p).toMatchObject({ digest: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: expect.any(Number), redacted: [] });
      expect(JSON.stringify(p0.p)).not.toContain('bob@gmail.com');

      // The seed policy's rule back ("personal data is redacted before it reaches the model").
      await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(document)]);
      const from = model.bodies.length;
      const redacted = await run(prompt, true);
      expect(redacted.outcome).toBe('completed');
      const sent = model.bodies.slice(from).join('');
      expect(sent).not.toContain('bob@gmail.com');
      expect(sent).not.toContain('4111 1111 1111 1111');
      expect(sent).toContain('[redacted email]');
      expect(sent).toContain('[redacted card_number]');
      // The org's own addresses are not personal data sent outside.
      expect(sent).toContain('alice@modelerr.example');
      const [p1] = (await invokes(redacted.task.id)).rows;
      expect(p1.p).toMatchObject({ obligations: ['redact_personal_data'], redacted: [{ kind: 'card_number', count: 1 }, { kind: 'email_external', count: 1 }] });
      expect(p1.p.digest).not.toBe(p0.p.digest);
      expect(p1.p.bytes).not.toBe(p0.p.bytes);
    } finally {
      await su.end();
    }
  });
});
