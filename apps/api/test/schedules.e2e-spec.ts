import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client } from 'pg';
import { AuditKeyring } from '@steward/audit';
import { createLogger } from '@steward/common';
import { type AgentDeps, fireDueSchedules, runTask, type ScriptedModelServer, startScriptedModelServer, startWorkerRuntime } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { addUser, type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Scheduled tasks and monthly budgets through the API, with the worker's firing code and agent
 * loop on the real PostgreSQL and Redis: a cron read in its time zone, firing from Postgres (at a
 * worker's boot too), skipped while the kill switch is on or when paused; budgets per month for the
 * org and each user that refuse new tasks and stop running ones, and the usage route.
 */
describe('task schedules and monthly budgets', () => {
  let h: Harness;
  let org: SeededOrg;
  let owner: string;
  let member: string;
  let su: Client;
  let model: ScriptedModelServer;
  let dataDir: string;
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
  const fireDeps = () => {
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    return { ds: h.ds, keys, keyring: new AuditKeyring(keys), log: quiet };
  };
  const agentDeps = (): AgentDeps & { relayIntervalMs: number } => ({
    ...fireDeps(),
    redis: h.redis,
    redisPrefix: h.config.REDIS_PREFIX,
    dataDir,
    model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: false, maxTokens: 1024, offline: true, retry: { attempts: 2, baseDelayMs: 10 } },
    leaseSeconds: 5,
    relayIntervalMs: 100,
  });
  const schedule = async (id: string) => (await su.query(`SELECT * FROM task_schedules WHERE id = $1`, [id])).rows[0];
  const makeDue = (id: string) => su.query(`UPDATE task_schedules SET next_run_at = now() - interval '1 minute' WHERE id = $1`, [id]);
  const tokyo = (d: Date) => new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Tokyo', weekday: 'long', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d);

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'sched');
    owner = await login(h, org.users.owner.email);
    member = await login(h, org.users.member.email);
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    model = await startScriptedModelServer();
    dataDir = mkdtempSync(join(tmpdir(), 'steward-sched-'));
  });
  afterAll(async () => {
    await model?.close();
    await su?.end();
    await h?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates a schedule read in its time zone, refuses bad cron and zones, updates, pauses and deletes', async () => {
    for (const [body, path] of [
      [{ cron: '0 17 * *', timeZone: 'Asia/Tokyo' }, 'cron'],
      [{ cron: '0 0 17 * * 5', timeZone: 'Asia/Tokyo' }, 'cron'],
      [{ cron: '0 25 * * 5', timeZone: 'Asia/Tokyo' }, 'cron'],
      [{ cron: '0 17 * * 5', timeZone: 'Mars/Olympus' }, 'timeZone'],
    ] as const) {
      const res = await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'bad', prompt: 'x', ...body });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(JSON.stringify(res.body.errors ?? [])).toContain(path);
    }
    const res = await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'Weekly executive brief', cron: '0 17 * * 5', timeZone: 'Asia/Tokyo', prompt: '[script:hello] weekly brief (secret-schedule-prompt)' });
    expect(res.status).toBe(201);
    const s = res.body;
    expect(s).toMatchObject({ userId: org.users.member.id, paused: false, runs: 0, cron: '0 17 * * 5', timeZone: 'Asia/Tokyo' });
    // Fridays 17:00 in Tokyo (08:00 UTC), within the coming week.
    expect(tokyo(new Date(s.nextRunAt))).toBe('Friday 17:00');
    expect(new Date(s.nextRunAt).getTime() - Date.now()).toBeLessThanOrEqual(7 * 86_400_000);
    expect((await schedule(s.id)).prompt_sealed.toString('latin1')).not.toContain('secret-schedule-prompt');
    expect(h.logs()).not.toContain('secret-schedule-prompt');

    const moved = await h.http.patch(`/v1/task-schedules/${s.id}`).set('Cookie', member).send({ cron: '30 8 * * 1', timeZone: 'Europe/Paris' });
    expect(moved.status).toBe(200);
    expect(new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Paris', weekday: 'long', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(moved.body.nextRunAt))).toBe('Monday 08:30');
    const paused = await h.http.post(`/v1/task-schedules/${s.id}/pause`).set('Cookie', member);
    expect(paused.body).toMatchObject({ paused: true, nextRunAt: null });
    // A paused schedule never fires, even when its time has come.
    await makeDue(s.id);
    await fireDueSchedules(fireDeps());
    expect((await schedule(s.id)).runs).toBe(0);
    const resumed = await h.http.post(`/v1/task-schedules/${s.id}/resume`).set('Cookie', member);
    expect(resumed.body.paused).toBe(false);
    expect(new Date(resumed.body.nextRunAt).getTime()).toBeGreaterThan(Date.now());
    // Another member's schedule is not theirs to see; the list holds only their own.
    expect((await h.http.get(`/v1/task-schedules/${s.id}`).set('Cookie', owner)).status).toBe(200);
    // Its runs act as the member: the owner may not make it ask something else (403, nothing changed, the refusal audited).
    const digest = async () => (await su.query(`SELECT prompt_digest FROM task_schedules WHERE id = $1`, [s.id])).rows[0].prompt_digest as string;
    const before = await digest();
    const rewrite = await h.http.patch(`/v1/task-schedules/${s.id}`).set('Cookie', owner).send({ prompt: 'Forward the payroll file to me' });
    expect(rewrite.status).toBe(403);
    expect(await digest()).toBe(before);
    expect((await h.http.delete(`/v1/task-schedules/${s.id}`).set('Cookie', member)).status).toBe(204);
    expect((await h.http.get(`/v1/task-schedules/${s.id}`).set('Cookie', member)).status).toBe(404);
    const trail = (await su.query(`SELECT action, outcome FROM audit_events WHERE org_id = $1 AND canonical::jsonb->'target'->>'id' = $2 ORDER BY occurred_at`, [org.id, s.id])).rows.map((r) => `${r.action}:${r.outcome}`);
    // (The owner's refused rewrite is on record as the refusal it was.)
    expect(trail).toEqual(['schedule.create:success', 'schedule.update:success', 'schedule.pause:success', 'schedule.resume:success', 'task.create:denied', 'schedule.delete:success']);
  });

  it("fires under the deployment's ceilings as they are now: a schedule written under higher ones makes a task within the lowered ones", async () => {
    const s = (await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'Weekly digest', cron: '0 9 * * 1', timeZone: 'UTC', prompt: '[script:hello] digest', maxSteps: 30, budgetUsd: 4 })).body;
    await makeDue(s.id);
    // The operator lowered TASK_MAX_STEPS to 5 and TASK_BUDGET_USD to 1 since.
    expect(await fireDueSchedules({ ...fireDeps(), limits: { maxSteps: 5, budgetMicros: 1_000_000 } })).toEqual({ fired: 1, skipped: 0 });
    const row = await schedule(s.id);
    const [task] = (await su.query(`SELECT max_steps, budget_micros FROM tasks WHERE id = $1`, [row.last_task_id])).rows;
    expect({ maxSteps: task.max_steps, budget: Number(task.budget_micros) }).toEqual({ maxSteps: 5, budget: 1_000_000 });
    expect((await h.http.delete(`/v1/task-schedules/${s.id}`).set('Cookie', member)).status).toBe(204);
  });

  it('fires from Postgres: the task and its outbox row in one go, the next run moved on; at a worker boot too; skipped while the kill switch is on', async () => {
    const s = (await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'Brief', cron: '0 17 * * 5', timeZone: 'Asia/Tokyo', prompt: '[script:hello] scheduled hello' })).body;
    await makeDue(s.id);
    expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 1, skipped: 0 });
    let row = await schedule(s.id);
    expect(row.runs).toBe(1);
    expect(tokyo(row.next_run_at)).toBe('Friday 17:00');
    expect(row.next_run_at.getTime()).toBeGreaterThan(Date.now());
    const task = (await su.query(`SELECT t.*, (SELECT count(*)::int FROM outbox o WHERE o.payload->>'taskId' = t.id::text) AS outbox FROM tasks t WHERE id = $1`, [row.last_task_id])).rows[0];
    expect(task).toMatchObject({ state: 'queued', user_id: org.users.member.id, outbox: 1 });
    // Firing again does nothing until the next time comes.
    expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 0, skipped: 0 });

    // The kill switch is on: the run is skipped (not caught up later), and the trail says so.
    await su.query(`UPDATE orgs SET agents_paused_at = now() WHERE id = $1`, [org.id]);
    await makeDue(s.id);
    expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 0, skipped: 1 });
    row = await schedule(s.id);
    expect(row).toMatchObject({ runs: 1, skipped: 1 });
    expect(row.next_run_at.getTime()).toBeGreaterThan(Date.now());
    await su.query(`UPDATE orgs SET agents_paused_at = NULL WHERE id = $1`, [org.id]);

    // A worker that boots fires what is due from Postgres and runs the task.
    await makeDue(s.id);
    const runtime = await startWorkerRuntime({ redisUrl: h.config.REDIS_URL, prefix: h.config.REDIS_PREFIX, concurrency: 1, log: quiet, agentTasks: agentDeps() });
    try {
      for (let i = 0; i < 200 && (await schedule(s.id)).runs < 2; i++) await new Promise((r) => setTimeout(r, 100));
      row = await schedule(s.id);
      expect(row.runs).toBe(2);
      let state = '';
      for (let i = 0; i < 200 && state !== 'completed'; i++) {
        state = (await su.query(`SELECT state FROM tasks WHERE id = $1`, [row.last_task_id])).rows[0].state;
        if (state !== 'completed') await new Promise((r) => setTimeout(r, 100));
      }
      expect(state).toBe('completed');
    } finally {
      await runtime.close();
    }
    const trail = (await su.query(`SELECT canonical::jsonb->>'action' AS action, canonical::jsonb->'payload'->>'reason' AS reason FROM audit_events WHERE org_id = $1 AND canonical::jsonb->'target'->>'id' = $2 AND canonical::jsonb->>'action' LIKE 'schedule.%' ORDER BY occurred_at`, [org.id, s.id])).rows;
    expect(trail).toEqual([
      { action: 'schedule.create', reason: null },
      { action: 'schedule.fire', reason: null },
      { action: 'schedule.skip', reason: 'paused' },
      { action: 'schedule.fire', reason: null },
    ]);
  });

  it("a schedule runs only while its owner's roles let them run tasks: demoted, its runs are skipped (not_permitted)", async () => {
    const person = await addUser(h.ds, org, 'member', `sched-${Date.now()}`);
    const cookie = await login(h, person.email);
    const s = (await h.http.post('/v1/task-schedules').set('Cookie', cookie).send({ name: 'Nightly', cron: '0 2 * * *', timeZone: 'UTC', prompt: '[script:hello] nightly' })).body;
    const owner = await login(h, org.users.owner.email);
    expect((await h.http.put(`/v1/members/${person.id}/roles`).set('Cookie', owner).send({ roles: ['auditor'] })).status).toBe(200);
    await makeDue(s.id);
    expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 0, skipped: 1 });
    expect(await schedule(s.id)).toMatchObject({ runs: 0, skipped: 1 });
    const [skip] = (await su.query(`SELECT canonical::jsonb->'payload'->>'reason' AS reason FROM audit_events WHERE org_id = $1 AND canonical::jsonb->'target'->>'id' = $2 AND canonical::jsonb->>'action' = 'schedule.skip'`, [org.id, s.id])).rows;
    expect(skip).toEqual({ reason: 'not_permitted' });
    // A member again: it runs.
    expect((await h.http.put(`/v1/members/${person.id}/roles`).set('Cookie', owner).send({ roles: ['member'] })).status).toBe(200);
    await makeDue(s.id);
    expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 1, skipped: 0 });
  });

  it('revoking an API key pauses the schedules it wrote (not those a person wrote), and says so in the audit trail', async () => {
    const created = await h.http.post('/v1/api-keys').set('Cookie', member).send({ name: 'nightly automation', scopes: ['*'] });
    expect(created.status).toBe(201);
    const bearer = { Authorization: `Bearer ${created.body.secret}` };
    const byKey = (await h.http.post('/v1/task-schedules').set(bearer).send({ name: 'Keyed nightly', cron: '0 3 * * *', timeZone: 'UTC', prompt: '[script:hello] keyed' })).body;
    expect(byKey.writtenWithApiKey).toBe(created.body.apiKey.id);
    const byPerson = (await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'Personal nightly', cron: '0 3 * * *', timeZone: 'UTC', prompt: '[script:hello] mine' })).body;
    expect(byPerson.writtenWithApiKey).toBeNull();
    // What counts is who wrote the prompt: the key rewriting a person's prompt makes the schedule the key's;
    // changing its name or time keeps whose it is; a person rewriting the prompt from a session takes it back.
    expect((await h.http.patch(`/v1/task-schedules/${byPerson.id}`).set(bearer).send({ prompt: '[script:hello] rewritten by the key' })).body.writtenWithApiKey).toBe(created.body.apiKey.id);
    expect((await h.http.patch(`/v1/task-schedules/${byPerson.id}`).set('Cookie', member).send({ cron: '30 3 * * *' })).body.writtenWithApiKey).toBe(created.body.apiKey.id);
    expect((await h.http.patch(`/v1/task-schedules/${byPerson.id}`).set('Cookie', member).send({ prompt: '[script:hello] mine again' })).body.writtenWithApiKey).toBeNull();
    expect((await h.http.patch(`/v1/task-schedules/${byKey.id}`).set('Cookie', member).send({ name: 'Keyed nightly (renamed)' })).body.writtenWithApiKey).toBe(created.body.apiKey.id);

    expect((await h.http.delete(`/v1/api-keys/${created.body.apiKey.id}`).set('Cookie', member)).status).toBe(204);
    expect(await schedule(byKey.id)).toMatchObject({ paused_at: expect.any(Date) });
    expect(await schedule(byPerson.id)).toMatchObject({ paused_at: null });
    const [revoke] = (await su.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'api_key.revoke' AND canonical::jsonb->'target'->>'id' = $2`, [org.id, created.body.apiKey.id])).rows;
    expect(revoke.p.schedulesPaused).toEqual([byKey.id]);
    // Paused, it does not fire; its owner resumes it from a session after a look.
    await makeDue(byKey.id);
    await makeDue(byPerson.id);
    expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 1, skipped: 0 });
    expect((await schedule(byKey.id)).runs).toBe(0);

    // A key revoked without its schedules being paused (a write that raced the revocation, a deprovisioning):
    // the schedule pauses itself at its next run instead of firing.
    const other = await h.http.post('/v1/api-keys').set('Cookie', member).send({ name: 'second automation', scopes: ['*'] });
    const raced = (await h.http.post('/v1/task-schedules').set({ Authorization: `Bearer ${other.body.secret}` }).send({ name: 'Raced', cron: '0 4 * * *', timeZone: 'UTC', prompt: '[script:hello] raced' })).body;
    await su.query(`UPDATE api_keys SET revoked_at = now() WHERE id = $1`, [other.body.apiKey.id]);
    await makeDue(raced.id);
    expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 0, skipped: 1 });
    expect(await schedule(raced.id)).toMatchObject({ paused_at: expect.any(Date), runs: 0 });
    const [skip] = (await su.query(`SELECT canonical::jsonb->'payload'->>'reason' AS reason FROM audit_events WHERE org_id = $1 AND canonical::jsonb->'target'->>'id' = $2 AND canonical::jsonb->>'action' = 'schedule.skip'`, [org.id, raced.id])).rows;
    expect(skip).toEqual({ reason: 'key_revoked' });
    for (const id of [byKey.id, byPerson.id, raced.id]) expect((await h.http.delete(`/v1/task-schedules/${id}`).set('Cookie', member)).status).toBe(204);
  });

  it('a worker whose clock is behind the database fires a due run once, not again at the next tick', async () => {
    const s = (await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'Every hour', cron: '0 * * * *', timeZone: 'UTC', prompt: '[script:hello] each hour' })).body;
    // Due by the database's clock (this hour's run), while the worker's clock still reads 30 s before it.
    const [{ due }] = (await su.query(`UPDATE task_schedules SET next_run_at = date_trunc('hour', now()) WHERE id = $1 RETURNING next_run_at AS due`, [s.id])).rows;
    jest.useFakeTimers({ now: new Date(due.getTime() - 30_000), doNotFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'hrtime', 'performance'] });
    try {
      expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 1, skipped: 0 });
      expect((await schedule(s.id)).next_run_at.getTime()).toBe(due.getTime() + 3_600_000);
      expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 0, skipped: 0 });
    } finally {
      jest.useRealTimers();
      await h.http.delete(`/v1/task-schedules/${s.id}`).set('Cookie', member);
    }
  });

  it('monthly budgets: usage per org and user; a spent budget refuses new tasks (409), stops running ones and skips schedules', async () => {
    expect((await h.http.patch('/v1/org').set('Cookie', owner).send({ userMonthlyBudgetUsd: -1 })).status).toBe(400);
    const set = await h.http.patch('/v1/org').set('Cookie', owner).send({ userMonthlyBudgetUsd: 0.5, monthlyBudgetUsd: 2 });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ userMonthlyBudgetUsd: 0.5, monthlyBudgetUsd: 2 });
    // Only the owner changes org settings.
    expect((await h.http.patch('/v1/org').set('Cookie', member).send({ monthlyBudgetUsd: 1000 })).status).toBe(403);

    const waiting = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] before the budget is spent' });
    expect(waiting.status).toBe(201);
    const s = (await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'Costly', cron: '0 9 * * *', timeZone: 'UTC', prompt: '[script:hello] daily' })).body;
    // The member's tasks this month cost 0.60 USD (a model bill, booked to this month as the worker books each turn).
    const spent = async (micros: number, tokens = { input: 0, output: 0 }) => {
      await su.query(`UPDATE tasks SET cost_micros = $2, input_tokens = $3, output_tokens = $4 WHERE id = $1`, [waiting.body.id, micros, tokens.input, tokens.output]);
      await su.query(
        `INSERT INTO task_cost_months (org_id, task_id, month, user_id, cost_micros, input_tokens, output_tokens) VALUES ($1, $2, date_trunc('month', now() AT TIME ZONE 'UTC')::date, $3, $4, $5, $6)
         ON CONFLICT (org_id, month, task_id) DO UPDATE SET cost_micros = EXCLUDED.cost_micros, input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens`,
        [org.id, waiting.body.id, org.users.member.id, micros, tokens.input, tokens.output],
      );
    };
    await spent(600000, { input: 1000, output: 200 });

    const refused = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] over budget' });
    expect(refused.status).toBe(409);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(refused.body).toMatchObject({ code: 'budget_exceeded', detail: expect.stringMatching(/user's monthly budget is spent \(0\.60 of 0\.50 USD/) });
    // Another user of the org still may (the org's budget is not spent).
    expect((await h.http.post('/v1/tasks').set('Cookie', owner).send({ prompt: '[script:hello] owner task' })).status).toBe(201);

    const usage = await h.http.get('/v1/usage').set('Cookie', owner);
    expect(usage.status).toBe(200);
    expect(usage.body.month).toBe(new Date().toISOString().slice(0, 7));
    expect(usage.body.org).toMatchObject({ budgetUsd: 2 });
    expect(usage.body.org.spentUsd).toBeGreaterThanOrEqual(0.6);
    const memberUsage = usage.body.users.find((u: { userId: string }) => u.userId === org.users.member.id);
    // (The scheduled tasks of the test before ran on the offline model: tokens, no cost.)
    expect(memberUsage).toMatchObject({ spentUsd: 0.6, budgetUsd: 0.5 });
    expect(memberUsage.inputTokens).toBeGreaterThanOrEqual(1000);
    expect(memberUsage.outputTokens).toBeGreaterThanOrEqual(200);
    const mine = await h.http.get('/v1/usage').set('Cookie', member);
    expect(mine.body.org).toBeNull();
    expect(mine.body.users.map((u: { userId: string }) => u.userId)).toEqual([org.users.member.id]);

    // A task accepted before the budget was spent stops before its first model turn.
    await spent(0);
    const other = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] accepted in time' });
    expect(other.status).toBe(201);
    await spent(600000);
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: other.body.id, epoch: 1 })).toBe('failed');
    const stopped = (await h.http.get(`/v1/tasks/${other.body.id}`).set('Cookie', member)).body;
    expect(stopped).toMatchObject({ state: 'failed', error: { code: 'monthly_budget_exceeded' } });
    expect((await su.query(`SELECT count(*)::int AS n FROM task_actions WHERE task_id = $1`, [other.body.id])).rows[0].n).toBe(0);

    // The schedule's run is skipped while the budget is spent.
    await makeDue(s.id);
    expect(await fireDueSchedules(fireDeps())).toEqual({ fired: 0, skipped: 1 });

    // The org's budget spent: nobody in the org starts a task.
    await spent(2000000);
    const orgSpent = await h.http.post('/v1/tasks').set('Cookie', owner).send({ prompt: '[script:hello] owner again' });
    expect(orgSpent.status).toBe(409);
    expect(orgSpent.body.detail).toMatch(/org's monthly budget is spent/);
    // Lifting the limits lets work start again.
    expect((await h.http.patch('/v1/org').set('Cookie', owner).send({ userMonthlyBudgetUsd: null, monthlyBudgetUsd: null })).body).toMatchObject({ userMonthlyBudgetUsd: null, monthlyBudgetUsd: null });
    expect((await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] no limit' })).status).toBe(201);
  });
});
