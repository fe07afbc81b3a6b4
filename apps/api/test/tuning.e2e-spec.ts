import { Client } from 'pg';
import { newId } from '@steward/common';
import { IncidentsService } from '../src/incidents/incidents.service';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Trust tuning from the org's approval, review and incident data: each recommendation shows its
 * numbers; floors hold; chosen ones become a policy draft (validated by the policies service) that
 * gives the suggested level and leaves the active policy alone until someone activates it.
 */
describe('trust tuning recommendations', () => {
  let h: Harness;
  let org: SeededOrg;
  let su: Client;
  let cookie: Record<'owner' | 'admin' | 'member', string>;

  const approvals = async (taskId: string | null, actionType: string, states: string[], decideAfterSeconds: number) => {
    for (const state of states) {
      await su.query(
        `INSERT INTO approvals (org_id, id, kind, action_id, task_id, requested_by, connector, tool, action_type, args_digest, reason, quorum, state, created_at, decided_at, expires_at)
         VALUES ($1, $2, 'action', $3, $4, $5, 'slack', 'slack.post', $6, $7, 'Watched: default', 1, $8, now() - interval '3 days', now() - interval '3 days' + make_interval(secs => $9), now())`,
        [org.id, newId(), newId(), taskId, org.users.member.id, actionType, '0'.repeat(64), state, decideAfterSeconds],
      );
    }
  };

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'tuning');
    cookie = { owner: await login(h, org.users.owner.email), admin: await login(h, org.users.admin.email), member: await login(h, org.users.member.email) };
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    expect((await h.http.post('/v1/workflows').set('Cookie', cookie.owner).send({ key: 'weekly-brief', name: 'Weekly executive brief', actionTypes: ['chat.send', 'file.create'] })).status).toBe(201);
    const brief = await h.http.post('/v1/tasks').set('Cookie', cookie.member).send({ prompt: '[script:hello] brief', workflow: 'weekly-brief' });
    const other = await h.http.post('/v1/tasks').set('Cookie', cookie.member).send({ prompt: '[script:hello] other' });
    // 40 posts to Slack from the weekly brief, all approved within 30 s.
    await approvals(brief.body.id, 'chat.send', Array(40).fill('used'), 30);
    // 40 e-mails, all approved quickly — but e-mail's floor is Watched.
    await approvals(other.body.id, 'email.send', Array(40).fill('used'), 20);
    // 10 saas writes, 3 of them rejected and slow: not enough to raise a Watched action, not good enough to lower it.
    await approvals(other.body.id, 'saas.write', [...Array(7).fill('used'), 'rejected', 'rejected', 'rejected'], 900);
    // 12 reviewed file writes, 3 reverted.
    for (let i = 0; i < 12; i++) {
      await su.query(
        `INSERT INTO task_actions (org_id, id, task_id, step, user_id, connector, tool, action_type, level, rule_ids, reason, args_digest, tainted, reversible, state, review_state, finished_at)
         VALUES ($1, $2, $3, $4, $5, 'workspace-files', 'files.write', 'file.create', 'batched', '{seed.file.create}', 'Batched', $6, false, true, 'succeeded', $7, now())`,
        [org.id, newId(), other.body.id, 100 + i, org.users.member.id, '0'.repeat(64), i < 3 ? 'reverted' : 'accepted'],
      );
    }
    // An incident about drive edits.
    await h.app.get(IncidentsService).openIncidentFromFinding({ orgId: org.id }, { key: 'r1/mass-edit', title: 'Mass drive edits', severity: 'high', actionType: 'drive.update' });
  });
  afterAll(async () => {
    await su?.end();
    await h?.close();
  });

  it('recommends with the numbers behind each, and respects floors', async () => {
    const res = await h.http.get('/v1/trust-recommendations?days=30').set('Cookie', cookie.admin);
    expect(res.status).toBe(200);
    const by = Object.fromEntries((res.body.items as { key: string }[]).map((i) => [i.key, i]));
    expect(Object.keys(by).sort()).toEqual(['chat.send@org', 'chat.send@workflow:weekly-brief', 'drive.update@org', 'email.send@org', 'file.create@org']);
    expect(by['chat.send@workflow:weekly-brief']).toMatchObject({
      scope: { type: 'workflow', id: 'weekly-brief' },
      currentLevel: 'watched',
      suggestedLevel: 'batched',
      direction: 'lower',
      draftable: true,
      numbers: { approvals: { total: 40, approved: 40, rejected: 0, approvalRate: 1, medianDecisionSeconds: 30 }, incidents: 0 },
    });
    expect(by['email.send@org']).toMatchObject({ currentLevel: 'watched', suggestedLevel: 'watched', floor: 'watched', draftable: false });
    expect(by['file.create@org']).toMatchObject({ currentLevel: 'batched', suggestedLevel: 'watched', direction: 'higher', numbers: { reviews: { total: 12, accepted: 9, reverted: 3, revertRate: 0.25 } } });
    expect(by['drive.update@org']).toMatchObject({ currentLevel: 'watched', suggestedLevel: 'forbidden', direction: 'higher', numbers: { incidents: 1 } });
    expect(res.body.thresholds.minCases).toBe(30);
    const bad = await h.http.get('/v1/trust-recommendations?days=2').set('Cookie', cookie.admin);
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/application\/problem\+json/);
    // Oversight data: an employee is refused.
    expect((await h.http.get('/v1/trust-recommendations?days=30').set('Cookie', cookie.member)).status).toBe(403);
  });

  it('turns chosen recommendations into a policy draft that gives the suggested levels; floors and unknown ones refused', async () => {
    const before = (await su.query(`SELECT count(*)::int AS n FROM policies WHERE org_id = $1`, [org.id])).rows[0].n;
    expect((await h.http.post('/v1/trust-recommendations/draft').set('Cookie', cookie.member).send({ items: [{ actionType: 'chat.send', scope: { type: 'org' } }], days: 30 })).status).toBe(403);
    const floor = await h.http.post('/v1/trust-recommendations/draft').set('Cookie', cookie.admin).send({ items: [{ actionType: 'email.send', scope: { type: 'org' } }, { actionType: 'git.push', scope: { type: 'org' } }], days: 30 });
    expect(floor.status).toBe(400);
    expect(floor.body.errors.map((e: { path: string }) => e.path)).toEqual(['items.0', 'items.1']);
    expect((await su.query(`SELECT count(*)::int AS n FROM policies WHERE org_id = $1`, [org.id])).rows[0].n).toBe(before);

    // The org's conditional protections for the action (here: a tainted task's posts wait for a person) stay in force in the workflow.
    const active = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows[0].document;
    const guarded = { ...active, rules: [...active.rules, { id: 'org.chat-tainted', scope: { type: 'org' }, actions: ['chat.send', 'saas.write'], level: 'watched', when: { tainted: true }, reason: 'a tainted task posts nothing alone' }] };
    await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(guarded)]);
    const res = await h.http.post('/v1/trust-recommendations/draft').set('Cookie', cookie.admin).send({
      items: [{ actionType: 'chat.send', scope: { type: 'workflow', id: 'weekly-brief' } }, { actionType: 'file.create', scope: { type: 'org' } }],
      days: 30,
    });
    // A group's stricter rule for the action cannot follow into the workflow: the draft is refused, for a person to write.
    const group = (await h.http.post('/v1/groups').set('Cookie', cookie.owner).send({ name: 'Contractors' })).body;
    const grouped = { ...guarded, rules: [...guarded.rules, { id: 'contractors.chat', scope: { type: 'group', id: group.id }, actions: ['chat.send'], level: 'watched', reason: 'contractors post nothing alone' }] };
    await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(grouped)]);
    const refused = await h.http.post('/v1/trust-recommendations/draft').set('Cookie', cookie.admin).send({ items: [{ actionType: 'chat.send', scope: { type: 'workflow', id: 'weekly-brief' } }], days: 30 });
    expect({ status: refused.status, errors: refused.body.errors }).toEqual({ status: 400, errors: [{ path: 'items.0', message: expect.stringContaining('would override contractors.chat') }] });
    // The list says so before anyone tries.
    const listed = (await h.http.get('/v1/trust-recommendations?days=30').set('Cookie', cookie.admin)).body.items.find((i: { key: string }) => i.key === 'chat.send@workflow:weekly-brief');
    expect(listed).toMatchObject({ suggestedLevel: 'batched', draftable: false, reason: expect.stringContaining('but a workflow rule decides before group rules, and would override contractors.chat') });
    await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(active)]);
    expect(res.status).toBe(201);
    expect(res.body.document.rules).toContainEqual(expect.objectContaining({ id: 'tuning.chat.send.weekly-brief.keep.org.chat-tainted', scope: { type: 'workflow', id: 'weekly-brief' }, actions: ['chat.send'], level: 'watched', when: { tainted: true } }));
    expect(res.body).toMatchObject({ status: 'draft' });
    expect(res.body.note).toContain('chat.send@workflow:weekly-brief → batched');
    expect(res.body.document.baseline['file.create']).toBe('watched');
    expect(res.body.document.rules).toContainEqual(expect.objectContaining({ id: 'tuning.chat.send.weekly-brief', scope: { type: 'workflow', id: 'weekly-brief' }, actions: ['chat.send'], level: 'batched' }));
    const explain = async (policyId: string | undefined, action: string, context: Record<string, unknown>) =>
      (await h.http.post('/v1/policies/explain').set('Cookie', cookie.admin).send({ policyId, action, context })).body.level;
    expect(await explain(res.body.id, 'chat.send', { workflow: 'weekly-brief' })).toBe('batched');
    expect(await explain(res.body.id, 'chat.send', { workflow: 'weekly-brief', tainted: true })).toBe('watched');
    expect(await explain(res.body.id, 'chat.send', {})).toBe('watched');
    expect(await explain(res.body.id, 'file.create', {})).toBe('watched');
    // Nothing changes until the draft is activated.
    expect(await explain(undefined, 'chat.send', { workflow: 'weekly-brief' })).toBe('watched');
    const audit = (await su.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'policy.create'`, [org.id])).rows.map((r) => JSON.parse(r.canonical));
    expect(audit.map((e) => e.target.id)).toContain(res.body.id);
  });

  it('lists a recommendation that a guard blocks as not draftable, naming the guard, and refuses to draft it', async () => {
    const active = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows[0].document;
    const held = { ...active, rules: [...active.rules, { id: 'org.chat-held', scope: { type: 'org' }, actions: ['chat.send'], level: 'watched', reason: 'every post waits for a person', guard: true }] };
    await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(held)]);
    try {
      const before = (await su.query(`SELECT count(*)::int AS n FROM policies WHERE org_id = $1`, [org.id])).rows[0].n;
      const items = (await h.http.get('/v1/trust-recommendations?days=30').set('Cookie', cookie.admin)).body.items as { key: string }[];
      const by = Object.fromEntries(items.map((i) => [i.key, i]));
      for (const key of ['chat.send@org', 'chat.send@workflow:weekly-brief']) {
        expect(by[key]).toMatchObject({ currentLevel: 'watched', suggestedLevel: 'batched', direction: 'lower', draftable: false, reason: expect.stringContaining('but org.chat-held would still give watched') });
      }
      // Not blocked: still offered.
      expect(by['file.create@org']).toMatchObject({ suggestedLevel: 'watched', draftable: true });
      const res = await h.http.post('/v1/trust-recommendations/draft').set('Cookie', cookie.admin).send({ items: [{ actionType: 'file.create', scope: { type: 'org' } }, { actionType: 'chat.send', scope: { type: 'org' } }], days: 30 });
      expect({ status: res.status, errors: res.body.errors }).toEqual({ status: 400, errors: [{ path: 'items.1', message: expect.stringContaining('org.chat-held would still give watched') }] });
      expect((await su.query(`SELECT count(*)::int AS n FROM policies WHERE org_id = $1`, [org.id])).rows[0].n).toBe(before);
    } finally {
      await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(active)]);
    }
  });
});
