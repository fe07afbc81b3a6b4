import { Client } from 'pg';
import { inOrg } from '@steward/db';
import { reserveTurn, runTask, type ScriptedModelServer, startScriptedModelServer } from '@steward/jobs';
import { agentDepsFor } from './support/agent';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Budgets are never overspent. Each model turn may cost at most its input as sent and the whole
 * max_tokens of output at the model's prices; it runs only if that fits the task's budget, and is
 * reserved — under the org's lock — against the org's and the user's monthly budgets, so tasks
 * running side by side cannot each take the same remaining money. The model is the scripted server
 * priced as a Sonnet model (3 and 15 USD per million tokens), so turns cost what the API would bill.
 */
describe('budgets: reserved before each model turn, never overspent', () => {
  let h: Harness;
  let org: SeededOrg;
  let su: Client;
  let model: ScriptedModelServer;
  let owner: string;
  let member: string;
  const MAX_TOKENS = 1024;
  const agentDeps = () => agentDepsFor(h, model.url, { defaultModel: 'claude-sonnet-5-5', maxTokens: MAX_TOKENS, offline: false });
  const task = async (id: string) =>
    (await su.query(`SELECT state, error_code, error_message, cost_micros::int AS cost, reserved_micros::int AS reserved, budget_micros::int AS budget, turns FROM tasks WHERE org_id = $1 AND id = $2`, [org.id, id])).rows[0];
  const create = async (prompt: string, extra: Record<string, unknown> = {}) => {
    const res = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt, ...extra });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  beforeAll(async () => {
    model = await startScriptedModelServer();
    h = await startHarness();
    org = await seedOrg(h.ds, 'budgets');
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    owner = await login(h, org.users.owner.email);
    member = await login(h, org.users.member.email);
  });
  afterAll(async () => {
    await model?.close();
    await su?.end();
    await h?.close();
  });

  it.each([
    ['keeps timing out', '[slow:2000] answer slowly', false],
    ['keeps breaking off with an error inside its 200 stream (billed up to there)', '[stream-error-always] answer', true],
    ['keeps dropping the connection in the middle of its streamed answer', '[stream-cut-always] answer', true],
    ['keeps ending its streamed answer early (no message_stop)', '[stream-end-always] answer', true],
  ])('a model that %s cannot spend past the budget: each attempt that may have been generated counts at the most a turn costs', async (_name, knobs, stream) => {
    const id = await create(`[script:hello] ${knobs}`, { budgetUsd: 0.05 });
    const deps = { ...agentDeps(), model: { ...agentDeps().model, stream, timeoutMs: 300, retry: { attempts: 3, baseDelayMs: 5 }, requeue: { times: 5, baseDelayMs: 10 } } };
    const outcomes: string[] = [];
    for (let epoch = 1; ; ) {
      outcomes.push(await runTask(deps, { orgId: org.id, taskId: id, epoch }));
      if (outcomes.at(-1) !== 'requeued') break;
      epoch = (await su.query(`SELECT epoch FROM tasks WHERE org_id = $1 AND id = $2`, [org.id, id])).rows[0].epoch;
    }
    const t = await task(id);
    // Each lost attempt is booked at the turn's most (about 0.017 USD) and not tried again in its run: the task goes back to
    // the queue, and once another turn has no room it stops — never past its budget (rather than asking again and again for free).
    expect(outcomes.at(-1)).toBe('failed');
    expect(outcomes.slice(0, -1).every((o) => o === 'requeued') && outcomes.length >= 2).toBe(true);
    expect(t).toMatchObject({ state: 'failed', error_code: 'budget_exceeded', reserved: 0 });
    expect(t.cost).toBeLessThanOrEqual(50_000);
    expect(t.cost).toBeGreaterThan(0);
    const [month] = (await su.query(`SELECT cost_micros::int AS cost FROM task_cost_months WHERE org_id = $1 AND task_id = $2`, [org.id, id])).rows;
    expect(month.cost).toBe(t.cost);
  });

  it('a model call in flight when its worker lost the task (a crash, a lapsed lease) is booked at the most its turn could cost when the task runs again', async () => {
    const id = await create('[script:hello] [slow:2500] answer slowly');
    const first = runTask({ ...agentDeps(), leaseSeconds: 2 }, { orgId: org.id, taskId: id, epoch: 1 });
    const inFlight = async () => (await su.query(`SELECT count(*)::int AS n FROM task_actions WHERE org_id = $1 AND task_id = $2 AND action_type = 'model.invoke' AND state = 'executing'`, [org.id, id])).rows[0].n;
    for (let i = 0; i < 100 && (await inFlight()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await inFlight()).toBe(1);
    // The call is in flight, its turn reserved: the sweep takes the task over (as after a crash, its lease lapsed).
    const reserved = (await task(id)).reserved;
    expect(reserved).toBeGreaterThan(0);
    await su.query(`UPDATE tasks SET epoch = epoch + 1, state = 'queued', lease_holder = NULL, lease_until = NULL WHERE org_id = $1 AND id = $2`, [org.id, id]);
    expect(await first).toBe('lease_lost');
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: id, epoch: 2 })).toBe('completed');
    const t = await task(id);
    const calls = (await su.query(`SELECT state FROM task_actions WHERE org_id = $1 AND task_id = $2 AND action_type = 'model.invoke' ORDER BY step`, [org.id, id])).rows.map((r) => r.state);
    expect(calls).toEqual(['outcome_unknown', 'succeeded']);
    // The lost call at what was reserved for it, and the answered one at its own cost.
    expect(t.cost).toBeGreaterThan(reserved);
    expect(t.reserved).toBe(0);
    const [month] = (await su.query(`SELECT cost_micros::int AS cost FROM task_cost_months WHERE org_id = $1 AND task_id = $2`, [org.id, id])).rows;
    expect(month.cost).toBe(t.cost);
  });

  it("a task stops before the turn that could take it past its own budget: it never spends more than the budget", async () => {
    // A task that would go on reading for ever, with 0.03 USD: each turn may cost up to 1,024 output tokens at 15 USD/MTok (0.015 USD) and its input.
    const id = await create('[script:loop] keep reading the folder', { budgetUsd: 0.03, maxSteps: 200 });
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: id, epoch: 1 })).toBe('failed');
    const t = await task(id);
    expect(t).toMatchObject({ state: 'failed', error_code: 'budget_exceeded', budget: 30_000, reserved: 0 });
    expect(t.error_message).toMatch(/^the task has no room in its budget for another model turn \(up to 0\.0\d USD; 0\.0\d spent\) \(0\.03 USD\)$/);
    expect(t.turns).toBeGreaterThan(1);
    expect(t.cost).toBeGreaterThan(0);
    expect(t.cost).toBeLessThanOrEqual(30_000);
    // A budget smaller than one turn's most: nothing is sent to the model at all.
    const tiny = await create('[script:hello] one turn', { budgetUsd: 0.01 });
    const sent = model.requests.length;
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: tiny, epoch: 1 })).toBe('failed');
    expect(await task(tiny)).toMatchObject({ state: 'failed', error_code: 'budget_exceeded', turns: 0, cost: 0 });
    expect(model.requests.length).toBe(sent);
  });

  it("a running task's reservation counts against the month: another task finds no room until it ends", async () => {
    expect((await h.http.patch('/v1/org').set('Cookie', owner).send({ userMonthlyBudgetUsd: 0.5, monthlyBudgetUsd: null })).status).toBe(200);
    // The member's budget: what they spent this month (the test above) and 0.10 more; another task of theirs is running and holds 0.09 for its turn.
    const [{ spent }] = (await su.query(`SELECT coalesce(sum(cost_micros), 0)::int AS spent FROM tasks WHERE org_id = $1 AND user_id = $2`, [org.id, org.users.member.id])).rows;
    await su.query(`UPDATE orgs SET user_monthly_budget_micros = $2 WHERE id = $1`, [org.id, spent + 100_000]);
    const running = await create('[script:hello] a long report');
    await su.query(`UPDATE tasks SET state = 'running', reserved_micros = 90000 WHERE org_id = $1 AND id = $2`, [org.id, running]);
    const second = await create('[script:hello] a quick question');
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: second, epoch: 1 })).toBe('failed');
    const refused = await task(second);
    expect(refused).toMatchObject({ state: 'failed', error_code: 'monthly_budget_exceeded', turns: 0, cost: 0, reserved: 0 });
    expect(refused.error_message).toMatch(/^the user's monthly budget has no room for another model turn \(up to 0\.0\d USD; 0\.01 of \d+\.\d\d USD left this month, counting running tasks\)$/);

    // Once that task has ended, its reservation no longer counts: the next task runs, and its turn's reservation is replaced by its cost.
    await su.query(`UPDATE tasks SET state = 'completed', finished_at = now() WHERE org_id = $1 AND id = $2`, [org.id, running]);
    const third = await create('[script:hello] the same question again');
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: third, epoch: 1 })).toBe('completed');
    const done = await task(third);
    expect(done.cost).toBeGreaterThan(0);
    expect(done.reserved).toBe(0);
  });

  it('spend is booked to the month it was spent in: a task created last month that runs a turn now counts against this month; last month\'s turns do not', async () => {
    expect((await h.http.patch('/v1/org').set('Cookie', owner).send({ monthlyBudgetUsd: null, userMonthlyBudgetUsd: null })).status).toBe(200);
    // A task created and run last month.
    const earlier = await create('[script:hello] last month');
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: earlier, epoch: 1 })).toBe('completed');
    await su.query(`UPDATE tasks SET created_at = date_trunc('month', now()) - interval '3 days' WHERE org_id = $1 AND id = $2`, [org.id, earlier]);
    await su.query(`UPDATE task_cost_months SET month = (date_trunc('month', now()) - interval '1 month')::date WHERE org_id = $1 AND task_id = $2`, [org.id, earlier]);
    // A task created an hour before the month turned, whose turn runs now.
    const crossing = await create('[script:hello] started before the month turned');
    await su.query(`UPDATE tasks SET created_at = date_trunc('month', now()) - interval '1 hour' WHERE org_id = $1 AND id = $2`, [org.id, crossing]);
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: crossing, epoch: 1 })).toBe('completed');
    const crossed = await task(crossing);
    expect(crossed.cost).toBeGreaterThan(0);
    const booked = (await su.query(`SELECT month::text AS month, cost_micros::int AS cost FROM task_cost_months WHERE org_id = $1 AND task_id = $2`, [org.id, crossing])).rows;
    expect(booked).toEqual([{ month: `${new Date().toISOString().slice(0, 7)}-01`, cost: crossed.cost }]);
    // This month: the turns spent in it (the crossing task's included, last month's not).
    const [{ created }] = (await su.query(`SELECT coalesce(sum(cost_micros), 0)::int AS created FROM tasks WHERE org_id = $1 AND created_at >= date_trunc('month', now())`, [org.id])).rows;
    const usage = await h.http.get('/v1/usage').set('Cookie', owner);
    expect(Math.round(usage.body.org.spentUsd * 1e6)).toBe(created + crossed.cost);
    // A budget of exactly what this month spent: nothing more starts.
    await su.query(`UPDATE orgs SET monthly_budget_micros = $2 WHERE id = $1`, [org.id, created + crossed.cost]);
    try {
      const refused = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] one more' });
      expect(refused.status).toBe(409);
      expect(refused.body.detail).toMatch(/org's monthly budget is spent/);
    } finally {
      await su.query(`UPDATE orgs SET monthly_budget_micros = NULL WHERE id = $1`, [org.id]);
    }
  });

  it('two turns reserving at the same moment cannot both take the last of a budget (per-org lock)', async () => {
    expect((await h.http.patch('/v1/org').set('Cookie', owner).send({ monthlyBudgetUsd: null, userMonthlyBudgetUsd: null })).status).toBe(200);
    const [a, b] = [await create('[script:hello] a'), await create('[script:hello] b')];
    await su.query(`UPDATE tasks SET state = 'running' WHERE org_id = $1 AND id = ANY($2::uuid[])`, [org.id, [a, b]]);
    // Room for one reservation of 0.04 USD, not two, in the org's budget (what this month holds so far plus 0.06).
    const [{ used }] = (await su.query(`SELECT coalesce(sum(cost_micros + CASE WHEN state = 'running' THEN reserved_micros ELSE 0 END), 0)::int AS used FROM tasks WHERE org_id = $1`, [org.id])).rows;
    await su.query(`UPDATE orgs SET monthly_budget_micros = $2 WHERE id = $1`, [org.id, used + 60_000]);
    const results = await Promise.all([a, b].map((id) => inOrg(h.ds, { orgId: org.id }, (em) => reserveTurn(em, org.id, org.users.member.id, id, 40_000))));
    expect(results.filter((r) => r === null)).toHaveLength(1);
    expect(results.find((r) => r !== null)).toMatchObject({ scope: 'org', turnMicros: 40_000 });
    const reserved = (await su.query(`SELECT reserved_micros::int AS r FROM tasks WHERE org_id = $1 AND id = ANY($2::uuid[]) ORDER BY r`, [org.id, [a, b]])).rows.map((x) => x.r);
    expect(reserved).toEqual([0, 40_000]);
    await su.query(`UPDATE tasks SET state = 'cancelled', finished_at = now() WHERE org_id = $1 AND id = ANY($2::uuid[])`, [org.id, [a, b]]);
    await su.query(`UPDATE orgs SET monthly_budget_micros = NULL WHERE id = $1`, [org.id]);
  });
});
