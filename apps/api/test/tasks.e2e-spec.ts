import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { AuditKeyring } from '@steward/audit';
import { createLogger, QueueName } from '@steward/common';
import { inOrg } from '@steward/db';
import { type AgentDeps, relayOutbox, runTask, type ScriptedModelServer, startScriptedModelServer, startWorkerRuntime, type WorkerRuntime } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { newApiKey } from './support/fixtures';
import { addUser, type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Agent tasks end to end: the API creates tasks (task + outbox in one transaction), the worker
 * runtime (in this process, its own Redis prefix) relays, leases and runs them against the
 * scripted model server on loopback, every action through the gate into the workspace-files
 * connector, on real PostgreSQL and Redis.
 */
describe('agent tasks through the API and the worker', () => {
  let h: Harness;
  let org: SeededOrg;
  let member: string;
  let auditor: string;
  let model: ScriptedModelServer;
  let dataDir: string;
  let runtime: WorkerRuntime | undefined;
  let su: Client;
  const quiet = createLogger({ level: process.env.TASKS_DEBUG ? 'debug' : 'silent', destination: process.env.TASKS_DEBUG ? process.stderr : new Writable({ write: (_c, _e, d) => d() }) });

  const agentDeps = (over: Partial<AgentDeps['model']> = {}): AgentDeps & { relayIntervalMs: number } => {
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    return {
      ds: h.ds,
      redis: h.redis,
      redisPrefix: h.config.REDIS_PREFIX,
      keys,
      keyring: new AuditKeyring(keys),
      dataDir,
      model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: true, maxTokens: 1024, offline: true, retry: { attempts: 4, baseDelayMs: 10 }, requeue: { baseDelayMs: 400 }, ...over },
      leaseSeconds: 5,
      relayIntervalMs: 100,
      log: quiet,
    };
  };
  const startWorker = async (over: Partial<AgentDeps['model']> = {}) => {
    runtime = await startWorkerRuntime({ redisUrl: h.config.REDIS_URL, prefix: h.config.REDIS_PREFIX, concurrency: 2, log: quiet, agentTasks: agentDeps(over) });
  };
  const stopWorker = async () => {
    await runtime?.close();
    runtime = undefined;
  };

  const workspace = (userId: string) => join(dataDir, 'workspaces', org.id, userId);
  const create = async (cookie: string, prompt: string, extra: Record<string, unknown> = {}) => {
    const res = await h.http.post('/v1/tasks').set('Cookie', cookie).send({ prompt, ...extra });
    expect(res.status).toBe(201);
    return res.body as { id: string; state: string };
  };
  const waitFor = async (id: string, states: string[], cookie = member) => {
    for (let i = 0; i < 300; i++) {
      const res = await h.http.get(`/v1/tasks/${id}`).set('Cookie', cookie);
      if (states.includes(res.body.state)) return res.body;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`task ${id} never reached ${states.join('/')}`);
  };
  const actions = (taskId: string) =>
    inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT * FROM task_actions WHERE org_id = $1 AND task_id = $2 ORDER BY step`, [org.id, taskId])) as Promise<Record<string, unknown>[]>;
  const events = async (id: string) => {
    const res = await h.http.get(`/v1/tasks/${id}/events?follow=false`).set('Cookie', member);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/event-stream/);
    return res.text
      .split('\n\n')
      .filter((b) => b.includes('data: '))
      .map((b) => JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6)));
  };

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'tasks');
    member = await login(h, org.users.member.email);
    auditor = await login(h, org.users.auditor.email);
    model = await startScriptedModelServer();
    dataDir = mkdtempSync(join(tmpdir(), 'steward-tasks-'));
    mkdirSync(join(workspace(org.users.member.id), 'numbers'), { recursive: true });
    mkdirSync(join(workspace(org.users.member.id), 'notes'), { recursive: true });
    writeFileSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'), 'week,revenue\n46,1200000\n');
    writeFileSync(join(workspace(org.users.member.id), 'notes/competitors.md'), 'Globex cut prices by 5%.\n');
    for (const f of ['a', 'b', 'c']) writeFileSync(join(workspace(org.users.member.id), `${f}.txt`), `${f.toUpperCase()}\n`);
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    await startWorker();
  });
  afterAll(async () => {
    await stopWorker();
    await model?.close();
    await su?.end();
    await h?.close();
  });

  it('Autonomous: a read executes and the task completes; the prompt and transcript are sealed; SSE shows the steps', async () => {
    const t = await create(member, '[script:read-only] Summarise last week (secret-prompt-marker)');
    expect(t.state).toBe('queued');
    const done = await waitFor(t.id, ['completed', 'failed']);
    expect(done).toMatchObject({ state: 'completed', offlineModel: true, error: null });
    expect(done.usage.inputTokens).toBeGreaterThan(0);
    const acts = await actions(t.id);
    expect(acts.map((a) => [a.action_type, a.level, a.state])).toEqual([
      ['model.invoke', 'autonomous', 'succeeded'],
      ['file.read', 'autonomous', 'succeeded'],
      ['model.invoke', 'autonomous', 'succeeded'],
    ]);
    const [row] = (await su.query(`SELECT t.*, (SELECT string_agg(coalesce(data::text, ''), '') FROM task_events e WHERE e.task_id = t.id) AS ev FROM tasks t WHERE id = $1`, [t.id])).rows;
    expect(row.prompt_sealed.toString('latin1')).not.toContain('secret-prompt-marker');
    expect(row.transcript_sealed.toString('latin1')).not.toContain('secret-prompt-marker');
    expect(row.ev).not.toContain('secret-prompt-marker');
    expect(h.logs()).not.toContain('secret-prompt-marker');
    const ev = await events(t.id);
    expect(ev.filter((e) => e.kind === 'action').map((e) => [e.tool, e.level, e.status])).toEqual([['files.read', 'autonomous', 'executed']]);
    expect(ev.find((e) => e.kind === 'output')?.text).toMatch(/^Summary: .*week,revenue/);
    expect(ev.at(-1)).toMatchObject({ kind: 'state', state: 'completed' });
    // Resuming after the last event sends nothing more; a Last-Event-ID past what a sequence number can be is
    // not taken for one (the stream starts over and ends, it does not hang).
    const resumed = await h.http.get(`/v1/tasks/${t.id}/events?follow=true`).set('Cookie', member).set('Last-Event-ID', String(ev.at(-1).seq));
    expect(resumed.text).not.toContain('data: ');
    const huge = await h.http.get(`/v1/tasks/${t.id}/events?follow=true`).set('Cookie', member).set('Last-Event-ID', '9999999999').timeout(10_000);
    expect(huge.status).toBe(200);
    expect(huge.text.split('\n\n').filter((b) => b.includes('data: '))).toHaveLength(ev.length);
    // An auditor reads the org's tasks; another member cannot see this one.
    expect((await h.http.get(`/v1/tasks/${t.id}`).set('Cookie', auditor)).status).toBe(200);
  });

  it('Batched: parallel reads, then a write runs in its reversible form and the task ends in_review', async () => {
    const t = await create(member, 'Weekly exec brief for the leadership team');
    const done = await waitFor(t.id, ['in_review', 'completed', 'failed']);
    expect(done.state).toBe('in_review');
    const acts = await actions(t.id);
    const tools = acts.filter((a) => a.action_type !== 'model.invoke');
    expect(tools.map((a) => [a.tool, a.level, a.state])).toEqual([
      ['files.read', 'autonomous', 'succeeded'],
      ['files.read', 'autonomous', 'succeeded'],
      ['files.write', 'batched', 'succeeded'],
    ]);
    expect(tools[2]).toMatchObject({ reversible: true, undo: { tool: 'files.delete' } });
    expect(readdirSync(join(workspace(org.users.member.id), 'briefs')).length).toBe(1);
  });

  it('Watched: a delete waits for approval and nothing is executed; the worker is not held', async () => {
    const t = await create(member, '[script:cleanup] remove the old numbers');
    const done = await waitFor(t.id, ['awaiting_approval', 'failed', 'completed']);
    expect(done.state).toBe('awaiting_approval');
    const acts = await actions(t.id);
    expect(acts.filter((a) => a.action_type === 'file.delete').map((a) => [a.level, a.state])).toEqual([['watched', 'awaiting_approval']]);
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(true);
    const [row] = (await su.query(`SELECT lease_holder, lease_until FROM tasks WHERE id = $1`, [t.id])).rows;
    expect(row).toEqual({ lease_holder: null, lease_until: null });
  });

  it('Forbidden: the refused write stops the task (failed), nothing written', async () => {
    await su.query(
      `UPDATE policies SET document = jsonb_set(document, '{rules}', document->'rules' || $2::jsonb), updated_at = now() WHERE org_id = $1 AND status = 'active'`,
      [org.id, JSON.stringify([{ id: 'org.no-payroll', scope: { type: 'org' }, actions: ['file.create', 'file.update'], level: 'forbidden', when: { resources: ['payroll/**'] }, reason: 'payroll data stays off agents' }])],
    );
    const t = await create(member, '[script:payroll] raise the bonus');
    const done = await waitFor(t.id, ['failed', 'completed', 'in_review']);
    expect(done).toMatchObject({ state: 'failed', error: { code: 'forbidden' } });
    expect(existsSync(join(workspace(org.users.member.id), 'payroll'))).toBe(false);
    const acts = await actions(t.id);
    expect(acts.filter((a) => a.action_type === 'file.create').map((a) => [a.level, a.state])).toEqual([['forbidden', 'refused']]);
  });

  it("model.invoke is decided as any action: Watched by the policy, it is not made (a model call cannot wait for a person) and the task fails saying so; past the policy's rate limit it takes the limit's level", async () => {
    const person = await addUser(h.ds, org, 'member', `invoke-${Date.now()}`);
    const cookie = await login(h, person.email);
    const invokes = async (taskId: string) => (await actions(taskId)).filter((a) => a.action_type === 'model.invoke').map((a) => [a.level, a.state, a.refusal]);
    const document = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows[0].document;
    const set = (doc: unknown) => su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(doc)]);
    try {
      await set({ ...document, rules: [...document.rules, { id: 'user.model-watched', scope: { type: 'user', id: person.id }, actions: ['model.invoke'], level: 'watched', reason: 'this person needs sign-off for model calls' }] });
      const watched = await create(cookie, '[script:read-only] summarise last week');
      expect(await waitFor(watched.id, ['failed', 'completed'], cookie)).toMatchObject({ state: 'failed', error: { code: 'watched', message: expect.stringMatching(/cannot wait for a person/) } });
      expect(await invokes(watched.id)).toEqual([['watched', 'refused', 'watched']]);

      // One model call an hour for this person, then Forbidden: the task's second call is refused, naming the limit.
      await set({ ...document, rateLimits: [...document.rateLimits, { id: 'model-calls', actions: ['model.invoke'], max: 1, per: 'hour', by: 'user', then: 'forbidden', reason: 'one model call an hour in this test' }] });
      const limited = await create(cookie, '[script:read-only] summarise last week');
      expect(await waitFor(limited.id, ['failed', 'completed'], cookie)).toMatchObject({ state: 'failed', error: { code: 'forbidden' } });
      expect(await invokes(limited.id)).toEqual([
        ['autonomous', 'succeeded', null],
        ['forbidden', 'refused', 'forbidden'],
      ]);
      const [event] = (await su.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND action = 'model.invoke' AND task_id = $2 AND decision = 'denied'`, [org.id, limited.id])).rows;
      expect(event.p).toMatchObject({ rateLimited: ['model-calls'], rateLimitsUnavailable: false });
    } finally {
      await set(document);
    }
  });

  it('a Forbidden call stops the task even after a call of the same turn that waits for a person: nothing after it runs, and that wait is voided', async () => {
    // The payroll rule of the test above (added here when this test runs alone).
    await su.query(
      `UPDATE policies SET document = jsonb_set(document, '{rules}', document->'rules' || $2::jsonb), updated_at = now()
        WHERE org_id = $1 AND status = 'active' AND NOT document->'rules' @> '[{"id": "org.no-payroll"}]'`,
      [org.id, JSON.stringify([{ id: 'org.no-payroll', scope: { type: 'org' }, actions: ['file.create', 'file.update'], level: 'forbidden', when: { resources: ['payroll/**'] }, reason: 'payroll data stays off agents' }])],
    );
    const t = await create(member, '[script:mixed-turn] tidy up and pay the bonus');
    const done = await waitFor(t.id, ['failed', 'completed', 'in_review', 'awaiting_approval']);
    expect(done).toMatchObject({ state: 'failed', error: { code: 'forbidden' } });
    const acts = await actions(t.id);
    expect(acts.filter((a) => a.action_type !== 'model.invoke').map((a) => [a.action_type, a.level, a.state])).toEqual([
      ['file.delete', 'watched', 'awaiting_approval'],
      ['file.create', 'forbidden', 'refused'],
    ]);
    expect(existsSync(join(workspace(org.users.member.id), 'notes/after-payroll.md'))).toBe(false);
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(true);
    // Nobody is asked to approve what will never run: the delete's approval is void, and on record as such.
    const approvals = (await su.query(`SELECT id, state FROM approvals WHERE org_id = $1 AND task_id = $2`, [org.id, t.id])).rows;
    expect(approvals.map((a) => a.state)).toEqual(['void']);
    const voided = (await su.query(`SELECT canonical::jsonb->'payload'->>'why' AS why FROM audit_events WHERE org_id = $1 AND action = 'approval.void' AND canonical::jsonb->>'approval' = $2`, [org.id, approvals[0].id])).rows;
    expect(voided).toEqual([{ why: 'the task ended (failed)' }]);
    const res = await h.http.post(`/v1/approvals/${approvals[0].id}/approve`).set('Cookie', await login(h, org.users.approver.email)).send({});
    expect(res.status).toBe(409);
  });

  it('every executed action had its claim and audit event committed before it ran', async () => {
    const executed = (await su.query(`SELECT a.id, a.created_at, a.finished_at FROM task_actions a WHERE a.org_id = $1 AND a.state = 'succeeded'`, [org.id])).rows;
    expect(executed.length).toBeGreaterThan(5);
    for (const a of executed) {
      const ev = (await su.query(`SELECT occurred_at, canonical::jsonb->>'decision' AS decision FROM audit_events WHERE canonical::jsonb->'payload'->>'actionId' = $1 ORDER BY occurred_at`, [a.id])).rows;
      expect(ev.length).toBeGreaterThanOrEqual(1);
      expect(['allowed', 'allowed_reversible']).toContain(ev[0].decision);
      expect(new Date(ev[0].occurred_at).getTime()).toBeLessThanOrEqual(new Date(a.finished_at).getTime());
    }
  });

  it('429 and 529 are retried with backoff (streamed and whole responses); parallel tool_use results go back together', async () => {
    const before = model.requests.length;
    const t = await create(member, '[script:parallel] [fail-first:429] read three files');
    const done = await waitFor(t.id, ['completed', 'failed']);
    expect(done.state).toBe('completed');
    const reqs = model.requests.slice(before);
    expect(reqs.filter((r) => r.status === 429).length).toBe(2);
    expect(reqs.every((r) => r.stream)).toBe(true);
    const ev = await events(t.id);
    // The three results came back together, in the order of the tool_use blocks.
    expect(ev.find((e) => e.kind === 'output')?.text).toMatch(/^Read 3 files: .*a\.txt.*b\.txt.*c\.txt/);

    await stopWorker();
    await startWorker({ stream: false });
    const before2 = model.requests.length;
    const t2 = await create(member, '[script:read-only] [fail-first:529] again');
    expect((await waitFor(t2.id, ['completed', 'failed'])).state).toBe('completed');
    const reqs2 = model.requests.slice(before2);
    expect(reqs2.filter((r) => r.status === 529).length).toBe(2);
    expect(reqs2.some((r) => r.stream)).toBe(false);
  });

  it('a model outage longer than the retries: the task waits in the queue (a delayed job, no worker held) and then completes', async () => {
    const t = await create(member, '[script:read-only] [fail-times:529:5] summarise through an outage');
    expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
    const waits = (await su.query(`SELECT data FROM task_events WHERE task_id = $1 AND kind = 'requeued' ORDER BY seq`, [t.id])).rows.map((r) => r.data);
    expect(waits.map((d) => [d.reason, d.wait])).toEqual([
      ['model_unavailable', 1],
      ['model_unavailable', 1],
    ]);
    // Each next try began only once its delay had passed.
    const invokes = (await su.query(`SELECT state, created_at FROM task_actions WHERE task_id = $1 AND action_type = 'model.invoke' ORDER BY step`, [t.id])).rows;
    expect(invokes.map((a) => a.state)).toEqual(['failed', 'succeeded', 'failed', 'succeeded']);
    expect(new Date(invokes[1].created_at).getTime()).toBeGreaterThanOrEqual(Date.parse(waits[0].retryAt));
    expect(new Date(invokes[3].created_at).getTime()).toBeGreaterThanOrEqual(Date.parse(waits[1].retryAt));
  });

  it('an org runs at most its limit of tasks at once: the next ones are parked, holding no worker (their event says so once), and start in turn as places free; a task waiting for a person holds no place', async () => {
    const owner = await login(h, org.users.owner.email);
    const cap = (n: number | null) => h.http.patch('/v1/org').set('Cookie', owner).send({ maxRunningTasks: n });
    const zero = await cap(0);
    expect(zero.status).toBe(400);
    expect(zero.headers['content-type']).toMatch(/application\/problem\+json/);
    // The deployment's limit (TASKS_MAX_RUNNING_PER_ORG) is for fairness between orgs: an org may only go lower.
    const above = await cap(h.config.TASKS_MAX_RUNNING_PER_ORG + 1);
    expect(above.status).toBe(400);
    expect(above.body.errors).toEqual([{ path: 'maxRunningTasks', message: expect.stringMatching(/^at most \d+, the limit of this deployment/) }]);
    const one = await cap(1);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ maxRunningTasks: 1, maxRunningTasksCeiling: h.config.TASKS_MAX_RUNNING_PER_ORG });
    try {
      // A task waiting for an approval runs nowhere: it takes no place.
      const waiting = await create(member, '[script:cleanup] remove the old numbers (capped org)');
      expect((await waitFor(waiting.id, ['awaiting_approval', 'failed', 'completed'])).state).toBe('awaiting_approval');
      // Three slow tasks at once on a worker with room for two: one runs, the others are parked (no job, no
      // worker held) and start one after the other, in the order they were parked.
      const ids = [];
      for (const n of ['first', 'second', 'third']) ids.push((await create(member, `[script:read-only] [slow:300] ${n} of three`)).id);
      const done = await Promise.all(ids.map((id) => waitFor(id, ['completed', 'failed'])));
      expect(done.map((d) => d.state)).toEqual(['completed', 'completed', 'completed']);
      const runs = (await su.query(`SELECT id, started_at, finished_at, parked, parked_since FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY started_at`, [ids])).rows;
      for (let i = 1; i < runs.length; i++) expect(runs[i].started_at.getTime()).toBeGreaterThanOrEqual(runs[i - 1].finished_at.getTime());
      expect(runs.map((r) => [r.parked, r.parked_since])).toEqual(runs.map(() => [false, null]));
      const requeued = async (id: string) => (await su.query(`SELECT data FROM task_events WHERE task_id = $1 AND kind = 'requeued' ORDER BY seq`, [id])).rows.map((r) => r.data.reason);
      expect(await Promise.all(runs.map((r) => requeued(r.id)))).toEqual([[], ['org_busy'], ['org_busy']]);
    } finally {
      const back = await cap(null);
      expect({ status: back.status, limit: back.body.maxRunningTasks }).toEqual({ status: 200, limit: null });
    }
  });

  it('max_tokens: cut text is continued; the step limit stops a task that never ends', async () => {
    const t = await create(member, '[script:hello] [max-tokens] say hello');
    const done = await waitFor(t.id, ['completed', 'failed']);
    expect(done.state).toBe('completed');
    expect(done.turns).toBe(2);
    const loop = await create(member, '[script:loop] keep going', { maxSteps: 6 });
    expect(await waitFor(loop.id, ['failed', 'completed'])).toMatchObject({ state: 'failed', error: { code: 'step_limit' } });
    // Within a turn too: with three steps, the model's turn is one and two reads run; the third is not run, and the task stops.
    const wide = await create(member, '[script:parallel] read three files', { maxSteps: 3 });
    expect(await waitFor(wide.id, ['failed', 'completed'])).toMatchObject({ state: 'failed', error: { code: 'step_limit' } });
    expect((await actions(wide.id)).filter((a) => a.action_type === 'file.read').map((a) => [a.step, a.state])).toEqual([
      [2, 'succeeded'],
      [3, 'succeeded'],
    ]);
  });

  it('a followed event stream ends once its API key is revoked; followed streams per member are capped', async () => {
    const key = await newApiKey(h, member, ['*']);
    // A task that keeps running (a slow model reading again and again) until it is cancelled.
    const t = await create(member, '[script:loop] [slow:1500] keep reading', { maxSteps: 40 });
    await waitFor(t.id, ['running']);
    const server = h.app.getHttpServer();
    if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const res = await fetch(`${base}/v1/tasks/${t.id}/events?follow=true`, { headers: { authorization: `Bearer ${key.secret}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    expect((await h.http.delete(`/v1/api-keys/${key.id}`).set('Cookie', member)).status).toBe(204);
    // The stream ends on its own (the API re-checks the key every few seconds), well before its 30 minutes.
    const ended = (async () => {
      for (;;) if ((await reader.read()).done) return true;
    })();
    expect(await Promise.race([ended, new Promise((r) => setTimeout(() => r(false), 20_000))])).toBe(true);
    // Twenty followed streams at once per member; the next is refused (429) until one closes.
    const key2 = await newApiKey(h, member, ['*']);
    const streams = await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}/v1/tasks/${t.id}/events?follow=true`, { headers: { authorization: `Bearer ${key2.secret}` } })));
    expect(streams.map((r) => r.status)).toEqual(Array(20).fill(200));
    const refused = await fetch(`${base}/v1/tasks/${t.id}/events?follow=true`, { headers: { authorization: `Bearer ${key2.secret}` } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    // A stream that does not follow counts too (one whose client does not read stays open as long).
    expect((await fetch(`${base}/v1/tasks/${t.id}/events?follow=false`, { headers: { authorization: `Bearer ${key2.secret}` } })).status).toBe(429);
    await Promise.all(streams.map((r) => r.body!.cancel()));
    expect((await h.http.post(`/v1/tasks/${t.id}/cancel`).set('Cookie', member)).status).toBe(200);
    await waitFor(t.id, ['cancelled']);
  });

  it("a member following another member's task is cut off once a role change means they may no longer read it", async () => {
    const reader = await addUser(h.ds, org, 'auditor', 'follower');
    const readerCookie = await login(h, reader.email);
    const t = await create(member, '[script:loop] [slow:1500] keep reading (watched by an auditor)', { maxSteps: 40 });
    await waitFor(t.id, ['running']);
    const server = h.app.getHttpServer();
    if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const res = await fetch(`${base}/v1/tasks/${t.id}/events?follow=true`, { headers: { cookie: readerCookie } });
    expect(res.status).toBe(200);
    const stream = res.body!.getReader();
    await stream.read();
    // The auditor role goes (a member now): the stream ends within seconds, well before its 30 minutes.
    expect((await h.http.put(`/v1/members/${reader.id}/roles`).set('Cookie', await login(h, org.users.owner.email)).send({ roles: ['member'] })).status).toBe(200);
    const ended = (async () => {
      for (;;) if ((await stream.read()).done) return true;
    })();
    expect(await Promise.race([ended, new Promise((r) => setTimeout(() => r(false), 20_000))])).toBe(true);
    expect((await h.http.get(`/v1/tasks/${t.id}`).set('Cookie', readerCookie)).status).toBe(404);
    expect((await h.http.post(`/v1/tasks/${t.id}/cancel`).set('Cookie', member)).status).toBe(200);
    await waitFor(t.id, ['cancelled']);
  });

  it('a worker that stops (a deploy) hands its running tasks back at their next turn, and another worker goes on with them', async () => {
    const t = await create(member, '[script:loop] [slow:300] keep reading', { maxSteps: 8 });
    // Running, a turn or two in.
    for (let i = 0; i < 100 && (await actions(t.id)).filter((a) => a.action_type === 'file.read').length < 1; i++) await new Promise((r) => setTimeout(r, 50));
    await stopWorker();
    const [row] = (await su.query(`SELECT state, lease_holder FROM tasks WHERE id = $1`, [t.id])).rows;
    expect(row).toEqual({ state: 'queued', lease_holder: null });
    expect((await events(t.id)).filter((e) => e.kind === 'requeued').map((e) => e.reason)).toEqual(['worker_stopping']);
    // No action was cut: each one the first worker claimed has its outcome.
    expect((await actions(t.id)).filter((a) => a.state === 'executing' || a.state === 'outcome_unknown')).toEqual([]);
    await startWorker();
    expect(await waitFor(t.id, ['failed', 'completed'])).toMatchObject({ state: 'failed', error: { code: 'step_limit' } });
  });

  it("cancelled in the middle of a turn: the actions the turn already ran stay on the task's record, and nothing after them runs", async () => {
    await stopWorker();
    const t = await create(member, '[script:parallel] read three files, cancelled after the first');
    // Someone cancels just as the turn's first read is claimed (a trigger stands in for them, to land between two calls).
    await su.query(`CREATE FUNCTION test_cancel_at_first_read() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN UPDATE tasks SET cancel_requested_at = now() WHERE org_id = NEW.org_id AND id = NEW.task_id; RETURN NEW; END $$`);
    await su.query(`CREATE TRIGGER test_cancel_at_first_read AFTER INSERT ON task_actions FOR EACH ROW WHEN (NEW.task_id = '${t.id}'::uuid AND NEW.action_type = 'file.read') EXECUTE FUNCTION test_cancel_at_first_read()`);
    try {
      await startWorker();
      expect((await waitFor(t.id, ['cancelled', 'completed', 'failed'])).state).toBe('cancelled');
    } finally {
      await su.query(`DROP TRIGGER test_cancel_at_first_read ON task_actions`);
      await su.query(`DROP FUNCTION test_cancel_at_first_read()`);
    }
    const reads = (await actions(t.id)).filter((a) => a.action_type === 'file.read');
    expect(reads.map((a) => a.state)).toEqual(['succeeded']);
    const ev = await events(t.id);
    expect(ev.filter((e) => e.kind === 'action').map((e) => [e.tool, e.status])).toEqual([['files.read', 'executed']]);
    expect(ev.at(-1)).toMatchObject({ kind: 'state', state: 'cancelled' });
    expect((await su.query(`SELECT step FROM tasks WHERE id = $1`, [t.id])).rows[0].step).toBeGreaterThanOrEqual(reads[0]!.step as number);
  });

  it('cancel: a queued task is cancelled at once, a waiting one too (its approval voided); a finished one answers 409', async () => {
    await stopWorker();
    const t = await create(member, '[script:hello] hi');
    const res = await h.http.post(`/v1/tasks/${t.id}/cancel`).set('Cookie', member);
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('cancelled');
    expect((await h.http.post(`/v1/tasks/${t.id}/cancel`).set('Cookie', member)).status).toBe(409);
    await startWorker();
    // A task waiting for a person: cancelled at once, and its approval can no longer be given.
    const waiting = await create(member, '[script:cleanup] remove the old numbers, then cancel');
    expect((await waitFor(waiting.id, ['awaiting_approval', 'failed', 'completed'])).state).toBe('awaiting_approval');
    expect((await h.http.post(`/v1/tasks/${waiting.id}/cancel`).set('Cookie', member)).body.state).toBe('cancelled');
    const [approval] = (await su.query(`SELECT id, state FROM approvals WHERE org_id = $1 AND task_id = $2`, [org.id, waiting.id])).rows;
    expect(approval.state).toBe('void');
    expect((await h.http.post(`/v1/approvals/${approval.id}/approve`).set('Cookie', await login(h, org.users.approver.email)).send({})).status).toBe(409);
  });

  it('the relay does not mark enqueued a task a worker parked meanwhile (its job ran at once and found the org busy)', async () => {
    await stopWorker();
    const t = await create(member, '[script:read-only] parked before the relay finished');
    // The worker took the job and parked the task before the relay's own write came.
    await su.query(`UPDATE tasks SET parked = true, parked_since = now(), enqueued_at = NULL WHERE id = $1`, [t.id]);
    const connection = h.redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false });
    const queue = new Queue(QueueName.AgentTasks, { connection, prefix: `${h.config.REDIS_PREFIX}:bull` });
    try {
      expect(await relayOutbox(h.ds, queue)).toBeGreaterThanOrEqual(1);
      expect((await su.query(`SELECT enqueued_at, parked FROM tasks WHERE id = $1`, [t.id])).rows[0]).toEqual({ enqueued_at: null, parked: true });
      await queue.remove(`${t.id}-1`);
    } finally {
      await queue.close();
      await connection.quit();
    }
    await su.query(`UPDATE tasks SET state = 'cancelled', parked = false, parked_since = NULL, finished_at = now() WHERE id = $1`, [t.id]);
    await startWorker();
  });

  it('a task survives a Redis flush: re-enqueued from Postgres at boot, runs once', async () => {
    await stopWorker();
    const t = await create(member, '[script:read-only] after the flush');
    // The relay moves it to BullMQ, then Redis loses everything under this prefix.
    const connection = h.redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false });
    const queue = new Queue(QueueName.AgentTasks, { connection, prefix: `${h.config.REDIS_PREFIX}:bull` });
    expect(await relayOutbox(h.ds, queue)).toBeGreaterThanOrEqual(1);
    expect(await queue.getJobState(`${t.id}-1`)).toBe('waiting');
    const keys = await h.redis.keys(`${h.config.REDIS_PREFIX}:*`);
    if (keys.length) await h.redis.del(...keys);
    expect(await queue.getJobState(`${t.id}-1`)).toBe('unknown');
    await queue.close();
    await connection.quit(); // a connection passed in is not closed by the queue
    await su.query(`UPDATE tasks SET enqueued_at = now() - interval '1 minute' WHERE id = $1`, [t.id]);
    await startWorker();
    const done = await waitFor(t.id, ['completed', 'failed']);
    expect(done.state).toBe('completed');
    const acts = await actions(t.id);
    expect(acts.filter((a) => a.action_type === 'file.read')).toHaveLength(1);
    const [row] = (await su.query(`SELECT epoch FROM tasks WHERE id = $1`, [t.id])).rows;
    expect(row.epoch).toBe(2);
  });

  it('a worker whose lease was taken over writes nothing more (epoch check)', async () => {
    await stopWorker();
    const t = await create(member, 'Weekly exec brief (lease test)');
    mkdirSync(join(workspace(org.users.member.id), 'briefs'), { recursive: true });
    const before = readdirSync(join(workspace(org.users.member.id), 'briefs')).length;
    // Worker A takes epoch 1; before its second turn the lease is taken over (epoch 2), as the sweeper does after expiry.
    const deps: AgentDeps = {
      ...agentDeps(),
      holder: 'worker-a',
      beforeTurn: async (lease, turn) => {
        if (turn === 1) await su.query(`UPDATE tasks SET epoch = epoch + 1, state = 'queued', lease_holder = NULL, lease_until = NULL WHERE id = $1`, [lease.taskId]);
      },
    };
    const outcome = await runTask(deps, { orgId: org.id, taskId: t.id, epoch: 1 });
    expect(outcome).toBe('lease_lost');
    const acts = await actions(t.id);
    // Turn 0 (model call, two reads) ran; nothing of turn 1 (no second model call, no write).
    expect(acts.map((a) => a.tool)).toEqual(['messages.create', 'files.read', 'files.read']);
    expect(readdirSync(join(workspace(org.users.member.id), 'briefs')).length).toBe(before);
    const [row] = (await su.query(`SELECT state, epoch, turns FROM tasks WHERE id = $1`, [t.id])).rows;
    expect(row).toEqual({ state: 'queued', epoch: 2, turns: 1 });
    // An old job (epoch 1) does nothing at all.
    expect(await runTask({ ...agentDeps(), holder: 'worker-a' }, { orgId: org.id, taskId: t.id, epoch: 1 })).toBe('skipped');
    // Epoch 2 resumes from the persisted transcript: the reads already claimed are not run again.
    expect(await runTask({ ...agentDeps(), holder: 'worker-b' }, { orgId: org.id, taskId: t.id, epoch: 2 })).toBe('in_review');
    const after = await actions(t.id);
    expect(after.filter((a) => a.tool === 'files.read')).toHaveLength(2);
    expect(after.filter((a) => a.tool === 'files.write')).toHaveLength(1);
    await startWorker();
  });
});
