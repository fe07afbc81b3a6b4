import { Client } from 'pg';
import { fireDueSchedules, runTask, type ScriptedModelServer, startScriptedModelServer } from '@steward/jobs';
import { agentDepsFor } from './support/agent';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Who may run tasks under a workflow. A workflow's policy rules decide before group rules, so a
 * workflow open to every member hands its levels to everyone: an admin opens it to some groups
 * only. Checked when a task or a schedule is made (403), when a schedule fires (skipped,
 * `not_permitted`) and by the worker before each model call (the task stops,
 * `workflow_not_permitted`); the gate's own check for every action is in libs/gate's tests.
 */
describe('workflow access: only the groups a workflow is open to run tasks under it', () => {
  let h: Harness;
  let org: SeededOrg;
  let su: Client;
  let model: ScriptedModelServer;
  let admin: string;
  let member: string;
  let finance: string;
  let workflowId: string;

  const counts = async () => (await su.query(`SELECT (SELECT count(*)::int FROM tasks WHERE org_id = $1) AS tasks, (SELECT count(*)::int FROM task_schedules WHERE org_id = $1) AS schedules`, [org.id])).rows[0];

  beforeAll(async () => {
    model = await startScriptedModelServer();
    h = await startHarness();
    org = await seedOrg(h.ds, 'wfaccess');
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    admin = await login(h, org.users.admin.email);
    member = await login(h, org.users.member.email);
    finance = (await h.http.post('/v1/groups').set('Cookie', admin).send({ name: 'Finance' })).body.id;
  });
  afterAll(async () => {
    await model?.close();
    await su?.end();
    await h?.close();
  });

  it('an admin opens a workflow to some groups only; groups that are not the org’s are refused and change nothing', async () => {
    const unknown = await h.http.post('/v1/workflows').set('Cookie', admin).send({ key: 'month-end-close', name: 'Month-end close', actionTypes: ['saas.write'], allowedGroups: ['0198f2a4-0000-7000-8000-000000000000'] });
    expect(unknown.status).toBe(400);
    expect(unknown.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(unknown.body.errors).toEqual([{ path: 'allowedGroups.0', message: 'no group with this id in the org' }]);
    expect((await h.http.post('/v1/workflows').set('Cookie', admin).send({ key: 'month-end-close', name: 'Month-end close', actionTypes: ['saas.write'], allowedGroups: [finance, finance] })).status).toBe(400);
    expect((await su.query(`SELECT count(*)::int AS n FROM workflows WHERE org_id = $1`, [org.id])).rows[0].n).toBe(0);

    const created = await h.http.post('/v1/workflows').set('Cookie', admin).send({ key: 'month-end-close', name: 'Month-end close', actionTypes: ['saas.write'], allowedGroups: [finance] });
    expect(created.status).toBe(201);
    expect(created.body.allowedGroups).toEqual([finance]);
    workflowId = created.body.id;
    // Open to every member unless said otherwise, as before.
    const open = await h.http.post('/v1/workflows').set('Cookie', admin).send({ key: 'weekly-brief', name: 'Weekly brief', actionTypes: ['file.read'] });
    expect(open.body.allowedGroups).toBeNull();
    // Only those who may change workflows may change who runs them.
    expect((await h.http.patch(`/v1/workflows/${workflowId}`).set('Cookie', member).send({ allowedGroups: null })).status).toBe(403);
    expect((await h.http.get(`/v1/workflows/${workflowId}`).set('Cookie', member)).body.allowedGroups).toEqual([finance]);
  });

  it('a member outside its groups cannot start a task or a schedule under it (403, nothing made); in them, they can', async () => {
    const before = await counts();
    const task = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] close the month', workflow: 'month-end-close' });
    expect(task.status).toBe(403);
    expect(task.body.detail).toBe('You may not run tasks under the workflow "month-end-close": it is open to members of its groups only.');
    const sched = await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'Close', cron: '0 9 1 * *', timeZone: 'UTC', prompt: '[script:hello] close', workflow: 'month-end-close' });
    expect(sched.status).toBe(403);
    expect(await counts()).toEqual(before);
    // An unknown workflow is still a validation error; one open to everyone still works.
    expect((await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] x', workflow: 'no-such-flow' })).status).toBe(400);
    expect((await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] brief', workflow: 'weekly-brief' })).status).toBe(201);

    expect((await h.http.put(`/v1/groups/${finance}/members/${org.users.member.id}`).set('Cookie', admin)).status).toBe(204);
    expect((await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] close the month', workflow: 'month-end-close' })).status).toBe(201);
  });

  it('access taken away after the fact: a schedule skips its runs (not_permitted) and a queued task stops at its first model call', async () => {
    const sched = await h.http.post('/v1/task-schedules').set('Cookie', member).send({ name: 'Close', cron: '0 9 1 * *', timeZone: 'UTC', prompt: '[script:hello] close', workflow: 'month-end-close' });
    expect(sched.status).toBe(201);
    const task = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] close the month', workflow: 'month-end-close' });
    expect(task.status).toBe(201);

    expect((await h.http.delete(`/v1/groups/${finance}/members/${org.users.member.id}`).set('Cookie', admin)).status).toBe(204);
    await su.query(`UPDATE task_schedules SET next_run_at = now() - interval '1 minute' WHERE id = $1`, [sched.body.id]);
    const deps = agentDepsFor(h, model.url);
    expect(await fireDueSchedules(deps)).toEqual({ fired: 0, skipped: 1 });
    const [skip] = (await su.query(`SELECT canonical::jsonb->'payload'->>'reason' AS reason FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'schedule.skip'`, [org.id])).rows;
    expect(skip).toEqual({ reason: 'not_permitted' });

    expect(await runTask(deps, { orgId: org.id, taskId: task.body.id, epoch: 1 })).toBe('failed');
    const stopped = (await h.http.get(`/v1/tasks/${task.body.id}`).set('Cookie', member)).body;
    expect(stopped).toMatchObject({ state: 'failed', error: { code: 'workflow_not_permitted' } });
    expect(stopped.error.message).toMatch(/may not run tasks under the workflow "month-end-close"/);
    // Nothing was sent to the model: the model call was refused before it was made, and recorded so.
    const actions = (await su.query(`SELECT action_type, state, refusal FROM task_actions WHERE task_id = $1`, [task.body.id])).rows;
    expect(actions).toEqual([{ action_type: 'model.invoke', state: 'refused', refusal: 'workflow_not_permitted' }]);
  });

  it('deleting a group closes the workflows open to it (one open to it alone: to nobody), and the audit event names them', async () => {
    expect((await h.http.delete(`/v1/groups/${finance}`).set('Cookie', admin)).status).toBe(204);
    expect((await h.http.get(`/v1/workflows/${workflowId}`).set('Cookie', admin)).body.allowedGroups).toEqual([]);
    const [e] = (await su.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'group.delete'`, [org.id])).rows;
    expect(e.p).toMatchObject({ name: 'Finance', workflowsClosed: ['month-end-close'] });
    // Nobody, not even an owner, starts a task under it now.
    const owner = await login(h, org.users.owner.email);
    expect((await h.http.post('/v1/tasks').set('Cookie', owner).send({ prompt: '[script:hello] close', workflow: 'month-end-close' })).status).toBe(403);
    // Opened to every member again by an admin: audited with what it was before.
    const reopened = await h.http.patch(`/v1/workflows/${workflowId}`).set('Cookie', admin).send({ allowedGroups: null });
    expect(reopened.body.allowedGroups).toBeNull();
    const [u] = (await su.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'workflow.update' AND canonical::jsonb->>'outcome' = 'success'`, [org.id])).rows;
    expect(u.p).toMatchObject({ before: { allowedGroups: [] }, after: { allowedGroups: null } });
    expect((await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:hello] close', workflow: 'month-end-close' })).status).toBe(201);
  });
});
