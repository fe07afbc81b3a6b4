import { Writable } from 'node:stream';
import { Client } from 'pg';
import { AuditKeyring } from '@steward/audit';
import { createLogger, newId } from '@steward/common';
import { inOrg } from '@steward/db';
import { type AgentDeps, orgEgressReader, runTask, type ScriptedModelServer, startScriptedModelServer, sweepIncidents } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { addUser, type Harness, login, type SeededOrg, type SeededUser, seedOrg, startHarness } from './support/harness';

/**
 * Sanctions: security triages each Forbidden attempt with its evidence (the attempt through the
 * real gate, the task's transcript, what it had read, its taint); confirmed ones climb the ladder
 * (warning → suspension → disciplinary review), dismissed ones count for nothing; an owner lifts a
 * suspension or records a review's outcome, audited.
 */
describe('sanctions: triage evidence, strikes, lifting and outcomes', () => {
  let h: Harness;
  let org: SeededOrg;
  let su: Client;
  let model: ScriptedModelServer;
  let cookie: Record<'owner' | 'security' | 'member' | 'auditor', string>;
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
  const agentDeps = (): AgentDeps => {
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    return {
      ds: h.ds, keys, keyring: new AuditKeyring(keys), log: quiet, redis: h.redis, redisPrefix: h.config.REDIS_PREFIX, dataDir: h.config.STEWARD_DATA_DIR, leaseSeconds: 5,
      model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: false, maxTokens: 1024, offline: true, retry: { attempts: 2, baseDelayMs: 10 } },
    };
  };
  /** A violation as the gate's write-ahead records it. */
  const violation = async (user: SeededUser, tainted = false) => {
    const id = newId();
    await inOrg(h.ds, { orgId: org.id }, (em) =>
      em.query(
        `INSERT INTO violations (org_id, id, action_id, user_id, connector, tool, action_type, args_digest, tainted, reason) VALUES ($1, $2, $3, $4, 'workspace-files', 'files.write', 'file.create', $5, $6, 'Forbidden: payroll')`,
        [org.id, id, newId(), user.id, '0'.repeat(64), tainted],
      ),
    );
    return id;
  };
  const events = async (action: string) => (await su.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = $2 ORDER BY occurred_at, id`, [org.id, action])).rows.map((r) => JSON.parse(r.canonical));
  const status = async (userId: string) => (await su.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [org.id, userId])).rows[0].status;

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'sanctions');
    cookie = {
      owner: await login(h, org.users.owner.email),
      security: await login(h, org.users.security.email),
      member: await login(h, org.users.member.email),
      auditor: await login(h, org.users.auditor.email),
    };
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    model = await startScriptedModelServer();
  });
  afterAll(async () => {
    await model?.close();
    await su?.end();
    await h?.close();
  });

  it('evidence of a real Forbidden attempt: the attempt, its rules, the transcript, taint; reading it is audited', async () => {
    const policy = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows[0].document;
    const doc = { ...policy, rules: [...policy.rules, { id: 'org.no-payroll', scope: { type: 'org' }, actions: ['file.create', 'file.update'], level: 'forbidden', when: { resources: ['payroll/**'] }, reason: 'payroll data stays off agents' }] };
    await su.query(`UPDATE policies SET document = $2 WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(doc)]);
    const task = await h.http.post('/v1/tasks').set('Cookie', cookie.member).send({ prompt: '[script:payroll] raise the bonus' });
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: task.body.id, epoch: 1 })).toBe('failed');
    await su.query(`UPDATE policies SET document = $2 WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(policy)]);
    const [v] = (await h.http.get(`/v1/violations?userId=${org.users.member.id}`).set('Cookie', cookie.security)).body.items;
    expect((await h.http.get(`/v1/violations/${v.id}/evidence`).set('Cookie', cookie.member)).status).toBe(403);
    const ev = await h.http.get(`/v1/violations/${v.id}/evidence`).set('Cookie', cookie.security);
    expect(ev.status).toBe(200);
    expect(ev.body).toMatchObject({
      violationId: v.id,
      state: 'open',
      userId: org.users.member.id,
      attempt: { tool: 'files.write', actionType: 'file.create', ruleIds: ['org.no-payroll'] },
      tainted: false,
      task: { id: task.body.id, state: 'failed', transcript: `/v1/tasks/${task.body.id}/events`, priorActions: [] },
      priorStrikes: 0,
    });
    expect((await events('violation.read_evidence')).map((e) => e.target.id)).toEqual([v.id]);
    expect((await h.http.get(`/v1/violations/${newId()}/evidence`).set('Cookie', cookie.security)).status).toBe(404);
    // Dismissed (an agent steered by injected content): no strike, no sanction.
    expect((await h.http.post(`/v1/violations/${v.id}/dismiss`).set('Cookie', cookie.security).send({ note: 'instruction hidden in a shared file' })).status).toBe(200);
    expect((await h.http.get(`/v1/members/${org.users.member.id}/strikes`).set('Cookie', cookie.security)).body).toMatchObject({ strikes: 0, sanction: 'none', dismissedViolations: 1, sanctions: [] });
  });

  it('confirmed violations climb the ladder; the owner lifts the suspension and records the review outcome, audited', async () => {
    const user = await addUser(h.ds, org, 'member', 'ladder');
    const [v1, v2, v3] = [await violation(user), await violation(user), await violation(user, true)];
    const confirm = (id: string) => h.http.post(`/v1/violations/${id}/confirm`).set('Cookie', cookie.security).send({ note: 'the user asked for it' });
    expect((await confirm(v1)).body).toMatchObject({ strikes: 1, sanction: 'warning' });
    expect((await confirm(v2)).body).toMatchObject({ strikes: 2, sanction: 'suspension' });
    expect(await status(user.id)).toBe('suspended');
    expect((await confirm(v3)).body).toMatchObject({ strikes: 3, sanction: 'disciplinary_review' });
    const strikes = await h.http.get(`/v1/members/${user.id}/strikes`).set('Cookie', cookie.auditor);
    expect(strikes.status).toBe(200);
    expect(strikes.body).toMatchObject({ strikes: 3, sanction: 'disciplinary_review', memberStatus: 'suspended', openViolations: 0 });
    const byKind = Object.fromEntries((strikes.body.sanctions as { kind: string; id: string; violationId: string; strikes: number }[]).map((s) => [s.kind, s]));
    expect(byKind.warning).toMatchObject({ violationId: v1, strikes: 1 });
    expect(byKind.suspension).toMatchObject({ violationId: v2, strikes: 2 });
    expect(byKind.disciplinary_review).toMatchObject({ violationId: v3, strikes: 3 });
    expect((await events('sanction.open')).length).toBe(3);
    expect((await h.http.get(`/v1/sanctions?userId=${user.id}&state=open`).set('Cookie', cookie.security)).body.items).toHaveLength(3);

    // A suspension the ladder put is lifted only as a sanction, by an owner: not by reactivating the member (any role).
    for (const who of [cookie.owner, cookie.security]) {
      const reactivate = await h.http.post(`/v1/members/${user.id}/reactivate`).set('Cookie', who);
      expect(reactivate.status).toBe(409);
      expect(reactivate.body.detail).toContain('An open sanction holds this suspension');
    }
    expect(await status(user.id)).toBe('suspended');
    // Only owners resolve; wrong kinds and bad outcomes are refused without change.
    expect((await h.http.post(`/v1/sanctions/${byKind.suspension.id}/lift`).set('Cookie', cookie.security).send({ note: 'x' })).status).toBe(403);
    expect((await h.http.post(`/v1/sanctions/${byKind.warning.id}/lift`).set('Cookie', cookie.owner).send({ note: 'x' })).status).toBe(409);
    expect((await h.http.post(`/v1/sanctions/${byKind.suspension.id}/outcome`).set('Cookie', cookie.owner).send({ outcome: 'no_action', note: 'x' })).status).toBe(409);
    const badOutcome = await h.http.post(`/v1/sanctions/${byKind.disciplinary_review.id}/outcome`).set('Cookie', cookie.owner).send({ outcome: 'fired', note: 'x' });
    expect(badOutcome.status).toBe(400);
    expect(badOutcome.headers['content-type']).toMatch(/application\/problem\+json/);
    expect((await h.http.post(`/v1/sanctions/${byKind.warning.id}/outcome`).set('Cookie', cookie.owner).send({ outcome: 'access_revoked', note: 'x' })).status).toBe(400);
    expect(await status(user.id)).toBe('suspended');

    // The review keeps access revoked: still suspended. Lifting the suspension restores access.
    const review = await h.http.post(`/v1/sanctions/${byKind.disciplinary_review.id}/outcome`).set('Cookie', cookie.owner).send({ outcome: 'access_revoked', note: 'Third strike; HR informed.' });
    expect(review.body).toMatchObject({ state: 'resolved', outcome: 'access_revoked', decidedBy: org.users.owner.id });
    expect(await status(user.id)).toBe('suspended');
    const lifted = await h.http.post(`/v1/sanctions/${byKind.suspension.id}/lift`).set('Cookie', cookie.owner).send({ note: 'Retrained on 12 Nov; access restored.' });
    expect(lifted.body).toMatchObject({ state: 'lifted', note: 'Retrained on 12 Nov; access restored.' });
    expect(await status(user.id)).toBe('active');
    expect((await h.http.post(`/v1/sanctions/${byKind.suspension.id}/lift`).set('Cookie', cookie.owner).send({ note: 'again' })).status).toBe(409);
    expect((await h.http.post(`/v1/sanctions/${byKind.warning.id}/outcome`).set('Cookie', cookie.owner).send({ outcome: 'retraining', note: 'Course done.' })).body.state).toBe('resolved');
    expect((await events('sanction.lift'))[0].payload).toMatchObject({ userId: user.id, reactivated: true });
    expect((await events('sanction.outcome')).map((e) => e.payload.outcome)).toEqual(['access_revoked', 'retraining']);
    expect((await events('member.reactivate')).map((e) => e.target.id)).toContain(user.id);
    expect((await h.http.get(`/v1/members/${newId()}/strikes`).set('Cookie', cookie.security)).status).toBe(404);
  });

  it('strikes count the year before: a violation confirmed 400 days ago is not a strike now', async () => {
    const user = await addUser(h.ds, org, 'member', 'old-strike');
    const [old, fresh] = [await violation(user), await violation(user)];
    const confirm = (id: string) => h.http.post(`/v1/violations/${id}/confirm`).set('Cookie', cookie.security).send({ note: 'the user asked for it' });
    expect((await confirm(old)).body).toMatchObject({ strikes: 1, sanction: 'warning' });
    await su.query(`UPDATE violations SET decided_at = now() - interval '400 days' WHERE org_id = $1 AND id = $2`, [org.id, old]);
    expect((await confirm(fresh)).body).toMatchObject({ strikes: 1, sanction: 'warning' });
    expect(await status(user.id)).toBe('active');
  });

  it("confirmed strikes do not suspend the org's last active owner (only an owner lifts a sanction): the sanction is recorded, the suspension withheld", async () => {
    const owner = org.users.owner;
    const [v1, v2] = [await violation(owner), await violation(owner)];
    for (const v of [v1, v2]) expect((await h.http.post(`/v1/violations/${v}/confirm`).set('Cookie', cookie.security).send({ note: 'asked for it' })).status).toBe(200);
    expect(await status(owner.id)).toBe('active');
    expect((await events('member.suspend_withheld')).map((e) => [e.target.id, e.payload.reason])).toEqual([[owner.id, 'last_active_owner']]);
    const open = (await h.http.get(`/v1/sanctions?userId=${owner.id}&state=open`).set('Cookie', cookie.security)).body.items.map((x: { kind: string }) => x.kind).sort();
    expect(open).toEqual(['suspension', 'warning']);
  });

  it('access returns only when every sanction that holds it is closed: a lift while the disciplinary review is open keeps the member suspended', async () => {
    const user = await addUser(h.ds, org, 'member', 'two-holds');
    const vs = [await violation(user), await violation(user), await violation(user)];
    for (const v of vs) expect((await h.http.post(`/v1/violations/${v}/confirm`).set('Cookie', cookie.security).send({ note: 'the user asked for it' })).status).toBe(200);
    const open = (await h.http.get(`/v1/sanctions?userId=${user.id}&state=open`).set('Cookie', cookie.security)).body.items as { kind: string; id: string }[];
    const of = (kind: string) => open.find((x) => x.kind === kind)!.id;
    expect((await h.http.post(`/v1/sanctions/${of('suspension')}/lift`).set('Cookie', cookie.owner).send({ note: 'retrained' })).body.state).toBe('lifted');
    expect(await status(user.id)).toBe('suspended');
    const lift = (await events('sanction.lift')).find((e) => e.target.id === of('suspension'));
    expect(lift.payload).toMatchObject({ userId: user.id, reactivated: false });
    // The review's outcome closes the last hold: access returns.
    expect((await h.http.post(`/v1/sanctions/${of('disciplinary_review')}/outcome`).set('Cookie', cookie.owner).send({ outcome: 'final_warning', note: 'Last chance.' })).body.state).toBe('resolved');
    expect(await status(user.id)).toBe('active');
  });

  it("automatic strikes (the org's setting, confirmed by the gate itself) get their sanctions from the worker's sweep", async () => {
    const user = await addUser(h.ds, org, 'member', 'auto');
    const userCookie = await login(h, user.email);
    await su.query(`UPDATE orgs SET automatic_strikes = true WHERE id = $1`, [org.id]);
    const policy = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows[0].document;
    const doc = { ...policy, rules: [...policy.rules, { id: 'org.no-payroll', scope: { type: 'org' }, actions: ['file.create', 'file.update'], level: 'forbidden', when: { resources: ['payroll/**'] }, reason: 'payroll data stays off agents' }] };
    await su.query(`UPDATE policies SET document = $2 WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(doc)]);
    try {
      // The member, and the org's only owner: two Forbidden attempts each.
      for (const who of [userCookie, cookie.owner]) {
        for (let i = 0; i < 2; i++) {
          const task = await h.http.post('/v1/tasks').set('Cookie', who).send({ prompt: '[script:payroll] raise the bonus' });
          expect(task.status).toBe(201);
          expect(await runTask(agentDeps(), { orgId: org.id, taskId: task.body.id, epoch: 1 })).toBe('failed');
        }
      }
    } finally {
      await su.query(`UPDATE policies SET document = $2 WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(policy)]);
      await su.query(`UPDATE orgs SET automatic_strikes = false WHERE id = $1`, [org.id]);
    }
    expect(await status(user.id)).toBe('suspended');
    // The last active owner keeps access (nobody else could lift the sanction); the strikes are recorded all the same.
    expect(await status(org.users.owner.id)).toBe('active');
    expect((await su.query(`SELECT count(*)::int AS n FROM violations WHERE org_id = $1 AND user_id = $2 AND state = 'confirmed' AND automatic`, [org.id, org.users.owner.id])).rows[0].n).toBe(2);
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    const deps = { ds: h.ds, keys, keyring: new AuditKeyring(keys), log: quiet, egress: orgEgressReader(h.ds, h.config) };
    expect((await sweepIncidents(deps, new Date())).sanctioned).toBe(4);
    expect(await sweepIncidents(deps, new Date())).toMatchObject({ opened: 0, sanctioned: 0 });
    expect((await su.query(`SELECT count(*)::int AS n FROM incidents WHERE org_id = $1 AND subject_user_id = $2 AND source = 'violation'`, [org.id, user.id])).rows[0].n).toBe(2);
    const list = await h.http.get(`/v1/sanctions?userId=${user.id}`).set('Cookie', cookie.security);
    expect(list.body.items.map((x: { kind: string; strikes: number }) => `${x.kind}:${x.strikes}`).sort()).toEqual(['suspension:2', 'warning:1']);
    const suspension = list.body.items.find((x: { kind: string }) => x.kind === 'suspension');
    expect((await h.http.post(`/v1/sanctions/${suspension.id}/lift`).set('Cookie', cookie.owner).send({ note: 'reviewed: the agent was misled' })).status).toBe(200);
    expect(await status(user.id)).toBe('active');
    expect((await events('sanction.open')).filter((e) => e.payload.automatic && e.payload.userId === user.id)).toHaveLength(2);
  });
});
