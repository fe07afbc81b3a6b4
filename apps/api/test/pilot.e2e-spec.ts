import { Client } from 'pg';
import { addUser, type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Pilot metrics per workflow: tasks run, completion rate, time saved (baseline × completed),
 * satisfaction from 1–5 ratings, and the seed's decision — roll out, extend or stop.
 */
describe('pilot metrics', () => {
  let h: Harness;
  let org: SeededOrg;
  let su: Client;
  let cookie: Record<'owner' | 'admin' | 'member' | 'auditor', string>;
  const workflows: Record<string, string> = {};

  /** A task of the member in a workflow, ended in `state` (the API creates it; the test plays the worker's end). */
  const task = async (who: string, workflow: string, state: 'completed' | 'failed' | 'cancelled' | 'in_review' | 'queued') => {
    const res = await h.http.post('/v1/tasks').set('Cookie', who).send({ prompt: '[script:hello] pilot task', workflow });
    expect(res.status).toBe(201);
    if (state !== 'queued') await su.query(`UPDATE tasks SET state = $2, finished_at = now() WHERE id = $1`, [res.body.id, state]);
    return res.body.id as string;
  };
  const rate = (who: string, id: string, rating: number) => h.http.put(`/v1/tasks/${id}/rating`).set('Cookie', who).send({ rating });

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'pilot');
    cookie = { owner: await login(h, org.users.owner.email), admin: await login(h, org.users.admin.email), member: await login(h, org.users.member.email), auditor: await login(h, org.users.auditor.email) };
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    for (const [key, name] of [['weekly-brief', 'Weekly executive brief'], ['contract-triage', 'Contract risk triage'], ['receipts', 'Receipts to CSV'], ['ir-faq', 'IR Q&A refresh']]) {
      const res = await h.http.post('/v1/workflows').set('Cookie', cookie.owner).send({ key, name, actionTypes: ['file.create'] });
      expect(res.status).toBe(201);
      workflows[key] = res.body.id;
    }
  });
  afterAll(async () => {
    await su?.end();
    await h?.close();
  });

  it('ratings: the employee who ran a finished task rates it 1–5 (replacing their rating); others cannot', async () => {
    const id = await task(cookie.member, 'ir-faq', 'completed');
    const first = await rate(cookie.member, id, 3);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ taskId: id, userId: org.users.member.id, rating: 3, client: 'console' });
    expect((await rate(cookie.member, id, 5)).body.rating).toBe(5);
    for (const bad of [0, 6, 4.5]) {
      const res = await rate(cookie.member, id, bad);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
    expect((await rate(cookie.owner, id, 1)).status).toBe(403); // the owner can read it, but did not run it
    const other = await addUser(h.ds, org, 'member', 'other');
    expect((await rate(await login(h, other.email), id, 1)).status).toBe(404); // cannot even see it
    expect((await rate(cookie.member, await task(cookie.member, 'ir-faq', 'queued'), 4)).status).toBe(409);
    expect((await su.query(`SELECT rating FROM task_ratings WHERE task_id = $1`, [id])).rows).toEqual([{ rating: 5 }]);
    const audit = (await su.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'task.rate'`, [org.id])).rows;
    expect(audit).toHaveLength(2);
  });

  it('per workflow: run, completion, time saved, satisfaction and the seed decision', async () => {
    expect((await h.http.put(`/v1/workflows/${workflows['weekly-brief']}/baseline`).set('Cookie', cookie.member).send({ manualMinutes: 180 })).status).toBe(403);
    expect((await h.http.put(`/v1/workflows/${workflows['weekly-brief']}/baseline`).set('Cookie', cookie.admin).send({ manualMinutes: 0 })).status).toBe(400);
    expect((await h.http.put(`/v1/workflows/00000000-0000-4000-8000-000000000000/baseline`).set('Cookie', cookie.admin).send({ manualMinutes: 5 })).status).toBe(404);
    expect((await h.http.put(`/v1/workflows/${workflows['weekly-brief']}/baseline`).set('Cookie', cookie.admin).send({ manualMinutes: 180 })).body).toMatchObject({ workflow: 'weekly-brief', manualMinutes: 180 });
    expect((await h.http.put(`/v1/workflows/${workflows['contract-triage']}/baseline`).set('Cookie', cookie.admin).send({ manualMinutes: 45 })).status).toBe(200);

    // Weekly brief: 8 of 10 completed (80%), rated 4, 5, 4, 4 → roll out; saved 8 × 180 min.
    const brief = [];
    for (let i = 0; i < 10; i++) brief.push(await task(cookie.member, 'weekly-brief', i < 8 ? 'completed' : 'failed'));
    for (const [i, r] of [4, 5, 4, 4].entries()) expect((await rate(cookie.member, brief[i], r)).status).toBe(200);
    await task(cookie.member, 'weekly-brief', 'queued'); // still running: not counted
    // Contract triage: 6 of 10 (60%), rated 5 → extend.
    for (let i = 0; i < 10; i++) {
      const id = await task(cookie.member, 'contract-triage', i < 6 ? 'completed' : i < 9 ? 'failed' : 'cancelled');
      if (i === 0) await rate(cookie.member, id, 5);
    }
    // Receipts: 9 of 10 but one incident about its tasks → stop.
    let receipt = '';
    for (let i = 0; i < 10; i++) receipt = await task(cookie.member, 'receipts', i < 9 ? 'completed' : 'in_review');
    const inc = await h.http.post('/v1/incidents').set('Cookie', await login(h, org.users.security.email)).send({ title: 'Receipt totals wrong', severity: 'high', taskId: receipt });
    expect(inc.status).toBe(201);

    const res = await h.http.get('/v1/pilot/metrics').set('Cookie', cookie.auditor);
    expect(res.status).toBe(200);
    const by = Object.fromEntries((res.body.workflows as { workflow: string }[]).map((w) => [w.workflow, w]));
    expect(by['weekly-brief']).toMatchObject({ tasksRun: 10, completed: 8, failed: 2, completionRate: 0.8, manualBaselineMinutes: 180, timeSavedMinutes: 1440, ratings: 4, satisfaction: 4.25, incidents: 0, decision: 'roll_out' });
    expect(by['contract-triage']).toMatchObject({ tasksRun: 10, completed: 6, cancelled: 1, completionRate: 0.6, timeSavedMinutes: 270, satisfaction: 5, decision: 'extend' });
    expect(by.receipts).toMatchObject({ tasksRun: 10, completed: 9, inReview: 1, manualBaselineMinutes: null, timeSavedMinutes: null, incidents: 1, decision: 'stop' });
    expect(by['ir-faq']).toMatchObject({ completed: 1, ratings: 1, satisfaction: 5, decision: 'roll_out' });
    expect(res.body.thresholds).toEqual({ rollOutCompletion: 0.75, rollOutSatisfaction: 4, extendCompletion: 0.5 });

    // A period before any of it: no data, no decision.
    const old = await h.http.get('/v1/pilot/metrics').query({ from: '2020-01-01T00:00:00Z', to: '2020-02-01T00:00:00Z' }).set('Cookie', cookie.auditor);
    expect(old.body.workflows.every((w: { tasksRun: number; decision: string }) => w.tasksRun === 0 && w.decision === 'insufficient_data')).toBe(true);
    expect((await h.http.get('/v1/pilot/metrics').query({ from: '2021-01-01T00:00:00Z', to: '2020-01-01T00:00:00Z' }).set('Cookie', cookie.auditor)).status).toBe(400);
    // Oversight data: an employee is refused (the roles that read anomaly reports see it).
    expect((await h.http.get('/v1/pilot/metrics').set('Cookie', cookie.member)).status).toBe(403);
  });
});
