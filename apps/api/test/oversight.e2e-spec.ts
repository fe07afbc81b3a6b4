import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { AuditKeyring } from '@steward/audit';
import { createLogger } from '@steward/common';
import { type AgentDeps, orgEgressReader, outcomeUnknownAfterSeconds, runTask, type ScriptedModelServer, startScriptedModelServer, startWorkerRuntime, sweepExpiredApprovals, sweepOutcomesUnknown, type WorkerRuntime } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { startOwnRedis } from '../../../test/support/own-services';
import { newOrgCredential, totpUser } from './support/fixtures';
import { crashAfterClaim } from './support/crash';
import { addUser, type Harness, login, type SeededOrg, type SeededUser, seedOrg, startHarness } from './support/harness';

/**
 * The human side of the gate, end to end: the API, the worker runtime (relay, sweeper, agent
 * loop) against the scripted model server, every action through the gate into the
 * workspace-files connector, on real PostgreSQL and Redis. One task through each level, approval
 * integrity through the routes, reviews, violations and strikes, the kill switch, and an outcome
 * nobody knows after a crash.
 */
describe('approvals, reviews, violations and the kill switch', () => {
  let h: Harness;
  let org: SeededOrg;
  let su: Client;
  let suUrl: string;
  let model: ScriptedModelServer;
  let runtime: WorkerRuntime | undefined;
  let cookie: Record<'owner' | 'security' | 'approver' | 'member' | 'approver2' | 'approver3', string>;
  let approver2: SeededUser;
  let originalPolicy: unknown;
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });

  const dataDir = () => h.config.STEWARD_DATA_DIR;
  const workspace = (userId: string) => join(dataDir(), 'workspaces', org.id, userId);
  const agentDeps = (): AgentDeps & { relayIntervalMs: number } => {
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    return {
      ds: h.ds,
      redis: h.redis,
      redisPrefix: h.config.REDIS_PREFIX,
      keys,
      keyring: new AuditKeyring(keys),
      dataDir: dataDir(),
      model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: false, maxTokens: 1024, offline: true, retry: { attempts: 2, baseDelayMs: 10 } },
      leaseSeconds: 5,
      relayIntervalMs: 100,
      log: quiet,
      // The org's egress rules, as the worker reads them (its webhooks go through them).
      connectors: { egress: orgEgressReader(h.ds, h.config) },
    };
  };
  const startWorker = async () => {
    runtime = await startWorkerRuntime({ redisUrl: h.config.REDIS_URL, prefix: h.config.REDIS_PREFIX, concurrency: 2, log: quiet, agentTasks: agentDeps() });
  };
  const stopWorker = async () => {
    await runtime?.close();
    runtime = undefined;
  };
  const create = async (who: string, prompt: string) => {
    const res = await h.http.post('/v1/tasks').set('Cookie', who).send({ prompt });
    expect(res.status).toBe(201);
    return res.body as { id: string };
  };
  const waitFor = async (id: string, states: string[]) => {
    for (let i = 0; i < 300; i++) {
      const res = await h.http.get(`/v1/tasks/${id}`).set('Cookie', cookie.owner);
      if (states.includes(res.body.state)) return res.body;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`task ${id} never reached ${states.join('/')}`);
  };
  const actions = async (taskId: string) => (await su.query(`SELECT * FROM task_actions WHERE task_id = $1 AND action_type <> 'model.invoke' ORDER BY step`, [taskId])).rows;
  const output = async (taskId: string) => {
    const res = await h.http.get(`/v1/tasks/${taskId}/events?follow=false`).set('Cookie', cookie.owner);
    const ev = res.text.split('\n\n').filter((b) => b.includes('data: ')).map((b) => JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6)));
    return ev.find((e) => e.kind === 'output')?.text as string | undefined;
  };
  const approvalOf = async (taskId: string) => {
    const res = await h.http.get('/v1/approvals?state=pending').set('Cookie', cookie.owner);
    expect(res.status).toBe(200);
    return (res.body.items as { id: string; taskId: string; kind: string }[]).find((a) => a.taskId === taskId);
  };
  const setPolicy = async (change: (doc: Record<string, unknown[]>) => void) => {
    const doc = JSON.parse(JSON.stringify(originalPolicy)) as Record<string, unknown[]>;
    change(doc);
    await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(doc)]);
  };
  const resetPolicy = () => su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(originalPolicy)]);
  /**
   * Runs `requests` while `lockSql` holds a row lock in another transaction, lets them go once `n`
   * of them wait on it (each then goes on at the same moment), and returns their answers.
   */
  const atOnce = async <T>(lockSql: string, params: unknown[], waiting: string, requests: () => Promise<T>[]): Promise<T[]> => {
    const locker = new Client({ connectionString: suUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(lockSql, params);
      const pending = requests();
      for (let i = 0; i < 200; i++) {
        const { rows } = await su.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`, [waiting]);
        if (rows[0].n === pending.length) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      await locker.query('COMMIT');
      return await Promise.all(pending);
    } finally {
      await locker.end();
    }
  };
  const seedFiles = (userId: string) => {
    mkdirSync(join(workspace(userId), 'numbers'), { recursive: true });
    mkdirSync(join(workspace(userId), 'notes'), { recursive: true });
    writeFileSync(join(workspace(userId), 'numbers/last-week.csv'), 'week,revenue\n46,1200000\n');
    writeFileSync(join(workspace(userId), 'notes/competitors.md'), 'Globex cut prices by 5%.\n');
  };

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'oversight');
    approver2 = await addUser(h.ds, org, 'approver', 'two');
    const approver3 = await addUser(h.ds, org, 'approver', 'three');
    cookie = {
      owner: await login(h, org.users.owner.email),
      security: await login(h, org.users.security.email),
      approver: await login(h, org.users.approver.email),
      member: await login(h, org.users.member.email),
      approver2: await login(h, approver2.email),
      approver3: await login(h, approver3.email),
    };
    model = await startScriptedModelServer();
    for (const u of [org.users.member, org.users.approver]) seedFiles(u.id);
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    suUrl = url.toString();
    su = new Client({ connectionString: suUrl });
    await su.connect();
    originalPolicy = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows[0].document;
    await startWorker();
  });
  afterAll(async () => {
    await stopWorker();
    await model?.close();
    await su?.end();
    await h?.close();
  });
  afterEach(async () => {
    await resetPolicy();
    seedFiles(org.users.member.id);
  });

  it('Autonomous executes; Batched runs reversibly and waits in review: revert really restores, accept completes', async () => {
    const read = await create(cookie.member, '[script:read-only] summarise');
    expect((await waitFor(read.id, ['completed', 'failed'])).state).toBe('completed');
    expect((await actions(read.id)).map((a) => [a.level, a.state])).toEqual([['autonomous', 'succeeded']]);

    // Revert, one action at a time: the brief the agent wrote is gone again.
    const t1 = await create(cookie.member, 'Weekly exec brief (to revert)');
    expect((await waitFor(t1.id, ['in_review', 'failed', 'completed'])).state).toBe('in_review');
    const briefs = () => (existsSync(join(workspace(org.users.member.id), 'briefs')) ? readdirSync(join(workspace(org.users.member.id), 'briefs')).filter((f) => !f.startsWith('.')) : []);
    const written = briefs();
    expect(written).toHaveLength(1);
    const bundle = await h.http.get(`/v1/reviews/${t1.id}`).set('Cookie', cookie.approver);
    expect(bundle.status).toBe(200);
    expect(bundle.body).toMatchObject({ taskState: 'in_review', pending: 1, accepted: 0, reverted: 0 });
    expect(bundle.body.actions.map((a: { tool: string; needsReview: boolean }) => [a.tool, a.needsReview])).toEqual([['files.read', false], ['files.read', false], ['files.write', true]]);
    const write = bundle.body.actions.find((a: { needsReview: boolean }) => a.needsReview);
    expect(write.undoTool).toBe('files.delete');
    // While agents are paused nothing runs through a connector, a reviewer's undo included: the review waits.
    expect((await h.http.post('/v1/org/agents/pause').set('Cookie', cookie.security).send({ reason: 'review during an incident' })).status).toBe(200);
    const frozen = await h.http.post(`/v1/reviews/${t1.id}/actions/${write.actionId}/revert`).set('Cookie', cookie.approver).send({ reason: 'not this week' });
    expect({ status: frozen.status, detail: frozen.body.detail }).toEqual({ status: 409, detail: expect.stringMatching(/kill switch/) });
    expect(briefs()).toEqual(written);
    expect((await h.http.post('/v1/org/agents/resume').set('Cookie', cookie.owner).send({})).status).toBe(200);
    // The member who ran it cannot settle their own review; the list shows it to the approver.
    expect((await h.http.post(`/v1/reviews/${t1.id}/accept`).set('Cookie', cookie.member).send({})).status).toBe(403);
    expect((await h.http.get('/v1/reviews').set('Cookie', cookie.approver)).body.items.map((i: { taskId: string }) => i.taskId)).toContain(t1.id);
    const reverted = await h.http.post(`/v1/reviews/${t1.id}/actions/${write.actionId}/revert`).set('Cookie', cookie.approver).send({ reason: 'not this week' });
    expect(reverted.status).toBe(200);
    expect(reverted.body).toMatchObject({ taskState: 'completed', pending: 0, reverted: 1 });
    expect(briefs()).toEqual([]);
    expect((await h.http.get(`/v1/tasks/${t1.id}`).set('Cookie', cookie.member)).body.state).toBe('completed');
    expect((await h.http.post(`/v1/reviews/${t1.id}/actions/${write.actionId}/revert`).set('Cookie', cookie.approver).send({})).status).toBe(409);

    // Accept, the whole bundle: the brief stays, the task completes.
    const t2 = await create(cookie.member, 'Weekly exec brief (to accept)');
    expect((await waitFor(t2.id, ['in_review', 'failed', 'completed'])).state).toBe('in_review');
    const accepted = await h.http.post(`/v1/reviews/${t2.id}/accept`).set('Cookie', cookie.approver).send({});
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ taskState: 'completed', pending: 0, accepted: 1 });
    expect(briefs()).toHaveLength(1);
    const audit = await su.query(`SELECT canonical::jsonb->>'action' AS a FROM audit_events WHERE org_id = $1 AND canonical::jsonb->'target'->>'id' = ANY($2::text[]) ORDER BY txid`, [org.id, [t1.id, t2.id]]);
    expect(audit.rows.map((r) => r.a)).toEqual(expect.arrayContaining(['review.revert', 'review.accept']));

    // An approver's own task: another reviewer accepts its work; they may take it back themselves.
    const own = await create(cookie.approver, 'Weekly exec brief (my own)');
    expect((await waitFor(own.id, ['in_review', 'failed', 'completed'])).state).toBe('in_review');
    const self = await h.http.post(`/v1/reviews/${own.id}/accept`).set('Cookie', cookie.approver).send({});
    expect(self.status).toBe(403);
    expect(self.body.detail).toMatch(/Nobody accepts their own agent task's work/);
    expect((await h.http.get(`/v1/reviews/${own.id}`).set('Cookie', cookie.approver)).body).toMatchObject({ taskState: 'in_review', pending: 1 });
    expect((await h.http.post(`/v1/reviews/${own.id}/revert`).set('Cookie', cookie.approver).send({})).body).toMatchObject({ taskState: 'completed', reverted: 1 });
  });

  it('a task that fails after its Batched writes ran keeps them under review: listed, revertable, and the task stays failed', async () => {
    const user = await addUser(h.ds, org, 'member', 'fails-after-note');
    const userCookie = await login(h, user.email);
    await setPolicy((d) => {
      d.rules = [...d.rules, { id: 'org.no-payroll', scope: { type: 'org' }, actions: ['file.create', 'file.update'], level: 'forbidden', when: { resources: ['payroll/**'] }, reason: 'payroll data stays off agents' }];
    });
    try {
      const t = await create(userCookie, '[script:note-then-payroll] note it, then pay it');
      expect(await waitFor(t.id, ['failed', 'completed', 'in_review'])).toMatchObject({ state: 'failed', error: { code: 'forbidden' } });
      const notes = () => readdirSync(join(workspace(user.id), 'notes')).filter((f) => !f.startsWith('.'));
      expect(notes()).toHaveLength(1);
      // Listed for review with its state, and reverted like any bundle: the note is gone, the task is still the failure it was.
      const listed = (await h.http.get('/v1/reviews').set('Cookie', cookie.approver)).body.items.find((i: { taskId: string }) => i.taskId === t.id);
      expect(listed).toMatchObject({ taskState: 'failed', pending: 1 });
      const reverted = await h.http.post(`/v1/reviews/${t.id}/revert`).set('Cookie', cookie.approver).send({ reason: 'the task failed' });
      expect(reverted.status).toBe(200);
      expect(reverted.body).toMatchObject({ taskState: 'failed', pending: 0, reverted: 1 });
      expect(notes()).toEqual([]);
      expect((await h.http.get(`/v1/tasks/${t.id}`).set('Cookie', userCookie)).body.state).toBe('failed');
      // Settled, it leaves the list.
      expect((await h.http.get('/v1/reviews').set('Cookie', cookie.approver)).body.items.map((i: { taskId: string }) => i.taskId)).not.toContain(t.id);
    } finally {
      await resetPolicy();
    }
  });

  it('Watched: waits without a worker; the approver sees tool, arguments and reason; approval executes exactly once; replay is refused', async () => {
    const t = await create(cookie.member, '[script:cleanup] remove the old numbers');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed', 'completed'])).state).toBe('awaiting_approval');
    const pending = await h.http.get('/v1/approvals?actionable=true').set('Cookie', cookie.approver);
    const item = pending.body.items.find((a: { taskId: string }) => a.taskId === t.id);
    expect(item).toMatchObject({ kind: 'action', state: 'pending', tool: 'files.delete', actionType: 'file.delete', requestedBy: org.users.member.id, quorum: 1, canDecide: true, tainted: false });
    const detail = await h.http.get(`/v1/approvals/${item.id}`).set('Cookie', cookie.approver);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ arguments: { path: 'numbers/last-week.csv' }, argumentsMatch: true });
    expect(detail.body.reason).toMatch(/^Watched/);
    // Security reads approvals but is neither routed this one nor a reader of sensitive audit data: no arguments.
    expect((await h.http.get(`/v1/approvals/${item.id}`).set('Cookie', cookie.security).expect(200)).body).toMatchObject({ arguments: null, argumentsMatch: null });
    // The requester sees their own request but cannot decide it.
    expect((await h.http.get(`/v1/approvals/${item.id}`).set('Cookie', cookie.member)).body.canDecide).toBe(false);
    expect((await h.http.post(`/v1/approvals/${item.id}/approve`).set('Cookie', cookie.member).send({})).status).toBe(403);
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(true);
    // Arguments on record that are not the bound ones (what is shown would not be what runs): approving is refused, no vote counted.
    const [{ args_digest: bound }] = (await su.query(`SELECT args_digest FROM approvals WHERE id = $1`, [item.id])).rows;
    await su.query(`UPDATE approvals SET args_digest = $2 WHERE id = $1`, [item.id, 'f'.repeat(64)]);
    const mismatched = await h.http.post(`/v1/approvals/${item.id}/approve`).set('Cookie', cookie.approver).send({});
    await su.query(`UPDATE approvals SET args_digest = $2 WHERE id = $1`, [item.id, bound]);
    expect({ status: mismatched.status, detail: mismatched.body.detail }).toEqual({ status: 409, detail: expect.stringContaining('not the ones this approval is bound to') });
    expect((await su.query(`SELECT count(*)::int AS n FROM approval_votes WHERE approval_id = $1`, [item.id])).rows[0].n).toBe(0);

    const ok = await h.http.post(`/v1/approvals/${item.id}/approve`).set('Cookie', cookie.approver).send({ reason: 'old file' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ state: 'approved', approvals: 1 });
    expect((await waitFor(t.id, ['completed', 'failed', 'in_review'])).state).toBe('completed');
    expect(await output(t.id)).toBe('Cleanup done.');
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(false);
    const acts = await actions(t.id);
    expect(acts.map((a) => [a.action_type, a.level, a.state])).toEqual([['file.delete', 'watched', 'succeeded']]);
    // Executed once: one "approved" redeem and one "executed" outcome for the action.
    const ev = await su.query(`SELECT canonical::jsonb->>'action' AS a, canonical::jsonb->>'decision' AS d FROM audit_events WHERE canonical::jsonb->'payload'->>'actionId' = $1 ORDER BY txid, id`, [acts[0].id]);
    // (The approver's look at the arguments is on record.)
    expect(ev.rows.map((r) => r.d ?? r.a)).toEqual(['watched_pending', 'approval.view_arguments', 'approval.approve', 'approved', 'executed']);
    // Replay of the used approval.
    const replay = await h.http.post(`/v1/approvals/${item.id}/approve`).set('Cookie', cookie.approver2).send({});
    expect(replay.status).toBe(409);
    expect(replay.headers['content-type']).toMatch(/application\/problem\+json/);
    expect((await h.http.get(`/v1/approvals/${item.id}`).set('Cookie', cookie.owner)).body.state).toBe('used');
  });

  it('notifications: the approval request reaches the org webhook signed (through the egress guard) and the e-mail outbox names the approvers', async () => {
    const received: Record<string, unknown>[] = [];
    const raw: { body: string; signature: unknown; event: unknown }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(JSON.parse(body));
        raw.push({ body, signature: req.headers['x-steward-signature'], event: req.headers['x-steward-event'] });
        res.writeHead(204).end();
      });
    });
    const SECRET = 'approval-hook-signing-secret-0123456789';
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/steward-hook`;
      // Posts are signed with the org's webhook signing secret: no URL is taken before there is one.
      const unsigned = await h.http.patch('/v1/org').set('Cookie', cookie.owner).send({ notifyWebhookUrl: url });
      expect(unsigned.status).toBe(400);
      expect(unsigned.body.errors).toEqual([{ path: 'notifyWebhookUrl', message: expect.stringMatching(/signed with the org's webhook signing secret/) }]);
      expect((await h.http.get('/v1/org').set('Cookie', cookie.owner)).body.notifyWebhookSet).toBe(false);
      expect((await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ channels: ['webhook'], webhookUrl: url, secrets: { webhookSigningSecret: SECRET } })).status).toBe(200);
      expect((await h.http.patch('/v1/org').set('Cookie', cookie.owner).send({ notifyWebhookUrl: url })).status).toBe(200);
      // Nor can the secret go while the webhook relies on it.
      const clear = await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ channels: ['webhook'], webhookUrl: url, secrets: { webhookSigningSecret: null } });
      expect(clear.status).toBe(400);
      expect(clear.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'secrets.webhookSigningSecret' })]));
      // The URL is what authenticates the posts at the receiver: only those who may change it see it.
      expect((await h.http.get('/v1/org').set('Cookie', cookie.owner)).body).toMatchObject({ notifyWebhookUrl: url, notifyWebhookSet: true });
      for (const who of [cookie.member, cookie.approver]) expect((await h.http.get('/v1/org').set('Cookie', who)).body).toMatchObject({ notifyWebhookUrl: null, notifyWebhookSet: true });
      const t = await create(cookie.member, '[script:cleanup] notify me');
      expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
      const a = (await approvalOf(t.id))!;
      // Loopback is refused until an admin allowlists it: the notice stays pending, retried later.
      const hook = async () => (await su.query(`SELECT state, attempts, last_error FROM notifications WHERE org_id = $1 AND subject_id = $2 AND channel = 'webhook'`, [org.id, a.id])).rows[0];
      for (let i = 0; i < 100 && (await hook()).attempts === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await hook()).toMatchObject({ state: 'pending', attempts: 1 });
      expect((await hook()).last_error).toMatch(/127\.0\.0\.1|loopback|refused/i);
      expect(received).toEqual([]);
      expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', cookie.owner).send({ hosts: ['127.0.0.1'] })).status).toBe(200);
      // The backoff is two seconds; let it be due now.
      await su.query(`UPDATE notifications SET next_attempt_at = now() WHERE org_id = $1 AND subject_id = $2`, [org.id, a.id]);
      for (let i = 0; i < 100 && !received.length; i++) await new Promise((r) => setTimeout(r, 100));
      expect(received).toEqual([expect.objectContaining({ kind: 'approval.requested', approvalId: a.id, taskId: t.id, tool: 'files.delete', actionType: 'file.delete' })]);
      // The receiver checks the signature over "<unix seconds>.<body>" with the secret it shares with the org.
      const [, ts, mac] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(raw[0].signature))!;
      expect(Math.abs(Date.now() / 1000 - Number(ts))).toBeLessThan(120);
      expect(mac).toBe(createHmac('sha256', SECRET).update(`${ts}.${raw[0].body}`).digest('hex'));
      expect(raw[0].event).toBe('approval.requested');
      const mail = (await su.query(`SELECT state, payload FROM notifications WHERE org_id = $1 AND subject_id = $2 AND channel = 'email'`, [org.id, a.id])).rows[0];
      expect(mail.state).toBe('sent');
      expect(mail.payload.to).toEqual(expect.arrayContaining([org.users.approver.email, approver2.email]));
      expect((await h.http.post(`/v1/approvals/${a.id}/reject`).set('Cookie', cookie.approver).send({ reason: 'test notice only' })).status).toBe(200);
      expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
    } finally {
      await h.http.patch('/v1/org').set('Cookie', cookie.owner).send({ notifyWebhookUrl: null });
      await su.query(`DELETE FROM incident_settings WHERE org_id = $1`, [org.id]);
      await su.query(`DELETE FROM incident_secrets WHERE org_id = $1`, [org.id]);
      await h.http.put('/v1/egress/allow-hosts').set('Cookie', cookie.owner).send({ hosts: [] });
      server.close();
    }
  });

  it("a webhook server that holds every notice open delays no timer: an approval expires while its notice still waits for an answer", async () => {
    const SECRET = 'held-hook-signing-secret-0123456789abcdef';
    let arrived = 0;
    let givenUp = 0;
    const open: IncomingMessage[] = [];
    // Reads each notice and never answers (an org's server, slow on purpose).
    const server = createServer((req) => {
      arrived++;
      open.push(req);
      req.resume();
      req.socket.on('close', () => givenUp++);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/held`;
      expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', cookie.owner).send({ hosts: ['127.0.0.1'] })).status).toBe(200);
      expect((await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ channels: ['webhook'], webhookUrl: url, secrets: { webhookSigningSecret: SECRET } })).status).toBe(200);
      expect((await h.http.patch('/v1/org').set('Cookie', cookie.owner).send({ notifyWebhookUrl: url })).status).toBe(200);
      const t = await create(cookie.member, '[script:cleanup] held notice');
      expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
      const a = (await approvalOf(t.id))!;
      for (let i = 0; i < 100 && !arrived; i++) await new Promise((r) => setTimeout(r, 100));
      expect(arrived).toBe(1);
      await su.query(`UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1`, [a.id]);
      expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
      expect(await output(t.id)).toMatch(/^Cleanup not done: Refused by Steward \(expired\)/);
      // All the while the notice was still out, waiting on the server (the worker had not given up on it).
      expect({ arrived, givenUp }).toEqual({ arrived: 1, givenUp: 0 });
    } finally {
      await h.http.patch('/v1/org').set('Cookie', cookie.owner).send({ notifyWebhookUrl: null });
      await su.query(`DELETE FROM incident_settings WHERE org_id = $1`, [org.id]);
      await su.query(`DELETE FROM incident_secrets WHERE org_id = $1`, [org.id]);
      await su.query(`UPDATE notifications SET state = 'failed' WHERE org_id = $1 AND state = 'pending'`, [org.id]);
      await h.http.put('/v1/egress/allow-hosts').set('Cookie', cookie.owner).send({ hosts: [] });
      for (const req of open) req.socket.destroy();
      server.close();
    }
  });

  it('self-approval is refused even for an approver; rejection tells the model the action was refused', async () => {
    const own = await create(cookie.approver, '[script:cleanup] my own cleanup');
    expect((await waitFor(own.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(own.id))!;
    const self = await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({});
    expect(self.status).toBe(403);
    expect(self.body.detail).toMatch(/own/);
    // The refusal is on record, as a role check's is.
    const denied = await su.query(`SELECT canonical::jsonb AS e FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'approval.decide' AND canonical::jsonb->'target'->>'id' = $2`, [org.id, a.id]);
    expect(denied.rows.map((r) => [r.e.outcome, r.e.actor.id, r.e.payload.reason])).toEqual([['denied', org.users.approver.id, 'own_action']]);
    const rejected = await h.http.post(`/v1/approvals/${a.id}/reject`).set('Cookie', cookie.approver2).send({ reason: 'keep the numbers' });
    expect(rejected.status).toBe(200);
    expect(rejected.body.state).toBe('rejected');
    expect((await waitFor(own.id, ['completed', 'failed'])).state).toBe('completed');
    expect(await output(own.id)).toMatch(/^Cleanup not done: Refused by Steward \(rejected\)/);
    expect(existsSync(join(workspace(org.users.approver.id), 'numbers/last-week.csv'))).toBe(true);
    expect((await actions(own.id)).map((x) => [x.state, x.refusal])).toEqual([['refused', 'rejected']]);
  });

  it('step-up: where the org requires it, an approval needs a fresh second factor', async () => {
    const t = await create(cookie.member, '[script:cleanup] step-up cleanup');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(t.id))!;
    await su.query(`UPDATE orgs SET require_step_up = true WHERE id = $1`, [org.id]);
    try {
      const refused = await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({});
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe('step_up_required');
      // An approver with an authenticator steps up, then approves.
      const totp = await totpUser({ h, org, role: 'approver', cookie: cookie.owner, ownerCookie: cookie.owner });
      expect((await h.http.post('/v1/auth/step-up').set('Cookie', totp.cookie).send({ totpCode: await totp.code(1) })).status).toBeLessThan(300);
      const ok = await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', totp.cookie).send({});
      expect(ok.status).toBe(200);
      expect(ok.body.state).toBe('approved');
    } finally {
      await su.query(`UPDATE orgs SET require_step_up = false WHERE id = $1`, [org.id]);
    }
    expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
  });

  it('quorum of two: one approver is not enough, the same one twice does not count, outsiders of the routed group are refused', async () => {
    const group = await h.http.post('/v1/groups').set('Cookie', cookie.owner).send({ name: 'Finance approvers' });
    expect(group.status).toBe(201);
    for (const u of [org.users.approver, approver2]) expect((await h.http.put(`/v1/groups/${group.body.id}/members/${u.id}`).set('Cookie', cookie.owner)).status).toBeLessThan(300);
    await setPolicy((d) => {
      d.approvals = [{ id: 'route.deletes', actions: ['file.delete'], approverGroup: group.body.id, quorum: 2 }];
    });
    const t = await create(cookie.member, '[script:cleanup] quorum cleanup');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(t.id))!;
    expect((await h.http.get(`/v1/approvals/${a.id}`).set('Cookie', cookie.owner)).body).toMatchObject({ quorum: 2, approverGroup: group.body.id });
    expect((await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver3).send({})).status).toBe(403);
    const first = await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({});
    expect(first.body).toMatchObject({ state: 'pending', approvals: 1 });
    expect((await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({})).status).toBe(409);
    // One approval where two are required: the task still waits, nothing ran.
    await new Promise((r) => setTimeout(r, 500));
    expect((await h.http.get(`/v1/tasks/${t.id}`).set('Cookie', cookie.owner)).body.state).toBe('awaiting_approval');
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(true);
    const second = await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver2).send({});
    expect(second.body).toMatchObject({ state: 'approved', approvals: 2 });
    expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(false);
  });

  it('quorum of two: two approvers who decide at the same moment both count, and the action runs', async () => {
    const group = await h.http.post('/v1/groups').set('Cookie', cookie.owner).send({ name: 'Deletes, two people' });
    for (const u of [org.users.approver, approver2]) expect((await h.http.put(`/v1/groups/${group.body.id}/members/${u.id}`).set('Cookie', cookie.owner)).status).toBeLessThan(300);
    await setPolicy((d) => {
      d.approvals = [{ id: 'route.deletes', actions: ['file.delete'], approverGroup: group.body.id, quorum: 2 }];
    });
    const t = await create(cookie.member, '[script:cleanup] two at once');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(t.id))!;
    // Both requests reach the approval while its row is locked (as by a third decision in progress), then go on together.
    const answers = await atOnce('SELECT 1 FROM approvals WHERE id = $1 FOR UPDATE', [a.id], '%FOR UPDATE OF a%', () =>
      [cookie.approver, cookie.approver2].map((c) => h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', c).send({}).then((r) => r)),
    );
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    expect((await h.http.get(`/v1/approvals/${a.id}`).set('Cookie', cookie.owner)).body).toMatchObject({ state: expect.stringMatching(/^(approved|used)$/), approvals: 2 });
    expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(false);
  });

  it('expiry: the sweeper expires the request, the model is told, a late approval is refused', async () => {
    const t = await create(cookie.member, '[script:cleanup] expiring cleanup');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(t.id))!;
    await su.query(`UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1`, [a.id]);
    expect((await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({})).status).toBe(409);
    expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
    expect(await output(t.id)).toMatch(/^Cleanup not done: Refused by Steward \(expired\)/);
    expect((await h.http.get(`/v1/approvals/${a.id}`).set('Cookie', cookie.owner)).body.state).toBe('expired');
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(true);
  });

  it('approved in its last seconds: the approval has an hour left to be used, so the resumed task runs it (a late queue does not turn a yes into expired)', async () => {
    seedFiles(org.users.owner.id);
    const t = await create(cookie.owner, '[script:cleanup] approved at the last moment');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(t.id))!;
    await su.query(`UPDATE approvals SET expires_at = now() + interval '3 seconds' WHERE id = $1`, [a.id]);
    expect((await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({})).status).toBe(200);
    const [{ left }] = (await su.query(`SELECT extract(epoch FROM expires_at - now())::int AS left FROM approvals WHERE id = $1`, [a.id])).rows;
    expect(left).toBeGreaterThan(3500);
    expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
    expect((await su.query(`SELECT state FROM approvals WHERE id = $1`, [a.id])).rows[0].state).toBe('used');
  });

  it('a policy made Forbidden before the approval is honoured: the approved action is refused and the task stops', async () => {
    const t = await create(cookie.member, '[script:cleanup] cleanup then forbidden');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(t.id))!;
    await setPolicy((d) => {
      d.forbiddenAreas = [...d.forbiddenAreas, { id: 'fa.no-deletes', actions: ['file.delete'], reason: 'no deletes during the audit' }];
    });
    expect((await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({})).status).toBe(200);
    expect(await waitFor(t.id, ['completed', 'failed'])).toMatchObject({ state: 'failed', error: { code: 'forbidden' } });
    expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(true);
    expect((await actions(t.id)).map((x) => [x.state, x.refusal])).toEqual([['refused', 'forbidden']]);
  });

  it('Forbidden stops the task and opens a violation; a second confirmed one suspends the user, whose next action is refused', async () => {
    const user = await addUser(h.ds, org, 'member', 'strikes');
    const userCookie = await login(h, user.email);
    await setPolicy((d) => {
      d.rules = [...d.rules, { id: 'org.no-payroll', scope: { type: 'org' }, actions: ['file.create', 'file.update'], level: 'forbidden', when: { resources: ['payroll/**'] }, reason: 'payroll data stays off agents' }];
    });
    const tasks = [await create(userCookie, '[script:payroll] raise the bonus'), await create(userCookie, '[script:payroll] raise it again')];
    for (const t of tasks) expect(await waitFor(t.id, ['failed', 'completed'])).toMatchObject({ state: 'failed', error: { code: 'forbidden' } });
    const list = await h.http.get(`/v1/violations?userId=${user.id}&state=open`).set('Cookie', cookie.security);
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(2);
    expect(list.body.items[0]).toMatchObject({ userId: user.id, actionType: 'file.create', tool: 'files.write', tainted: false, state: 'open' });
    expect(list.body.items.map((v: { taskId: string }) => v.taskId).sort()).toEqual(tasks.map((t) => t.id).sort());
    // A third task is queued before the second strike (the worker is stopped meanwhile).
    await stopWorker();
    const later = await create(userCookie, '[script:read-only] after the strikes');
    const [v1, v2] = list.body.items;
    const c1 = await h.http.post(`/v1/violations/${v1.id}/confirm`).set('Cookie', cookie.security).send({ note: 'asked for it twice' });
    expect(c1.body).toMatchObject({ state: 'confirmed', strikes: 1, sanction: 'warning' });
    const c2 = await h.http.post(`/v1/violations/${v2.id}/confirm`).set('Cookie', cookie.security).send({ note: 'again' });
    expect(c2.body).toMatchObject({ state: 'confirmed', strikes: 2, sanction: 'suspension' });
    expect((await su.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [org.id, user.id])).rows[0].status).toBe('suspended');
    await startWorker();
    expect((await waitFor(later.id, ['failed', 'completed'])).state).toBe('failed');
    expect((await su.query(`SELECT state, refusal FROM task_actions WHERE task_id = $1`, [later.id])).rows).toEqual([{ state: 'refused', refusal: 'suspended' }]);
    // Dismissal exists for injected content; the owner lifts the suspension as a sanction (audited), not by reactivating the member.
    expect((await h.http.post(`/v1/violations/${v1.id}/dismiss`).set('Cookie', cookie.security).send({ note: 'x' })).status).toBe(409);
    expect((await h.http.post(`/v1/members/${user.id}/reactivate`).set('Cookie', cookie.owner)).status).toBe(409);
    const [held] = (await h.http.get(`/v1/sanctions?userId=${user.id}&state=open`).set('Cookie', cookie.owner)).body.items.filter((x: { kind: string }) => x.kind === 'suspension');
    expect((await h.http.post(`/v1/sanctions/${held.id}/lift`).set('Cookie', cookie.owner).send({ note: 'retrained' })).status).toBe(200);
    expect((await su.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [org.id, user.id])).rows[0].status).toBe('active');
  });

  it('two strikes confirmed at the same moment still suspend the user', async () => {
    const user = await addUser(h.ds, org, 'member', 'two-at-once');
    const userCookie = await login(h, user.email);
    await setPolicy((d) => {
      d.rules = [...d.rules, { id: 'org.no-payroll', scope: { type: 'org' }, actions: ['file.create', 'file.update'], level: 'forbidden', when: { resources: ['payroll/**'] }, reason: 'payroll data stays off agents' }];
    });
    for (const t of [await create(userCookie, '[script:payroll] first try'), await create(userCookie, '[script:payroll] second try')]) {
      expect(await waitFor(t.id, ['failed', 'completed'])).toMatchObject({ state: 'failed', error: { code: 'forbidden' } });
    }
    const open = (await h.http.get(`/v1/violations?userId=${user.id}&state=open`).set('Cookie', cookie.security)).body.items as { id: string }[];
    expect(open).toHaveLength(2);
    // Both confirmations reach the person's record while it is locked (as by a third change in progress), then go on together.
    const answers = await atOnce('SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2 FOR UPDATE', [org.id, user.id], '%FROM memberships%', () =>
      open.map((v) => h.http.post(`/v1/violations/${v.id}/confirm`).set('Cookie', cookie.security).send({ note: 'both at once' }).then((r) => r)),
    );
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    expect(answers.map((r) => r.body.sanction).sort()).toEqual(['suspension', 'warning']);
    expect((await su.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [org.id, user.id])).rows[0].status).toBe('suspended');
  });

  it('kill switch: a running task stops at its next action; pending approvals are frozen; decrypts are refused', async () => {
    // A waiting approval, frozen while paused.
    const waiting = await create(cookie.member, '[script:cleanup] frozen cleanup');
    expect((await waitFor(waiting.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(waiting.id))!;
    const credential = await newOrgCredential({ h, org, role: 'owner', cookie: cookie.owner, ownerCookie: cookie.owner });
    expect((await h.http.post(`/v1/credentials/${credential}/test`).set('Cookie', cookie.owner)).status).toBe(200);
    await stopWorker();
    const t = await create(cookie.member, 'Weekly exec brief (kill switch)');
    const deps: AgentDeps = {
      ...agentDeps(),
      holder: 'worker-k',
      // Turn 0 ran (two reads); before the next action the owner pulls the switch.
      beforeTurn: async (_lease, turn) => {
        if (turn === 1) expect((await h.http.post('/v1/org/agents/pause').set('Cookie', cookie.security).send({ reason: 'incident' })).status).toBe(200);
      },
    };
    expect(await runTask(deps, { orgId: org.id, taskId: t.id, epoch: 1 })).toBe('failed');
    const acts = (await su.query(`SELECT tool, state, refusal FROM task_actions WHERE task_id = $1 ORDER BY step`, [t.id])).rows;
    expect(acts.map((x) => x.tool)).toEqual(['messages.create', 'files.read', 'files.read', 'messages.create']);
    expect(acts.at(-1)).toMatchObject({ state: 'refused', refusal: 'paused' });
    const org1 = await h.http.get('/v1/org').set('Cookie', cookie.member);
    expect(org1.body.agentsPausedAt).not.toBeNull();
    const frozen = await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({});
    expect(frozen.status).toBe(409);
    expect(frozen.body.detail).toMatch(/paused/);
    expect((await h.http.post('/v1/org/agents/pause').set('Cookie', cookie.member).send({})).status).toBe(403);
    const decrypt = await h.http.post(`/v1/credentials/${credential}/test`).set('Cookie', cookie.owner);
    expect(decrypt.status).toBe(409);
    expect(decrypt.body.detail).toMatch(/kill switch/);
    // The pause lasts two hours, past the approval's time: frozen, it does not expire meanwhile…
    await su.query(`UPDATE orgs SET agents_paused_at = now() - interval '2 hours' WHERE id = $1`, [org.id]);
    await su.query(`UPDATE approvals SET expires_at = now() - interval '1 minute' WHERE id = $1`, [a.id]);
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    await sweepExpiredApprovals(h.ds, keys, new AuditKeyring(keys), quiet);
    expect((await su.query(`SELECT state FROM approvals WHERE id = $1`, [a.id])).rows[0].state).toBe('pending');
    expect((await h.http.post('/v1/org/agents/resume').set('Cookie', cookie.owner).send({})).body.agentsPausedAt).toBeNull();
    // …and on resume its time to expiry moves on by the pause's length (two hours, less the minute it was past).
    const [{ left }] = (await su.query(`SELECT extract(epoch FROM expires_at - now())::int AS left FROM approvals WHERE id = $1`, [a.id])).rows;
    expect(left).toBeGreaterThan(2 * 3600 - 60 - 30);
    await sweepExpiredApprovals(h.ds, keys, new AuditKeyring(keys), quiet);
    expect((await su.query(`SELECT state FROM approvals WHERE id = $1`, [a.id])).rows[0].state).toBe('pending');
    const events = await su.query(`SELECT canonical::jsonb->>'action' AS a FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' LIKE 'org.agents_%' ORDER BY txid`, [org.id]);
    expect(events.rows.map((r) => r.a).slice(-2)).toEqual(['org.agents_pause', 'org.agents_resume']); // (an earlier test paused too)
    await startWorker();
    expect((await h.http.post(`/v1/approvals/${a.id}/reject`).set('Cookie', cookie.approver).send({ reason: 'done with it' })).status).toBe(200);
    expect((await waitFor(waiting.id, ['completed', 'failed'])).state).toBe('completed');
  });

  it('kill switch: a task resumed after its approval while agents are paused waits for the resume; its approved action is kept and runs once', async () => {
    // The owner's task (each member has 20 deletions an hour: the member's are this suite's other tests').
    seedFiles(org.users.owner.id);
    const t = await create(cookie.owner, '[script:cleanup] approved, then paused');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed'])).state).toBe('awaiting_approval');
    const a = (await approvalOf(t.id))!;
    await stopWorker();
    try {
      expect((await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({})).status).toBe(200);
      expect((await h.http.post('/v1/org/agents/pause').set('Cookie', cookie.security).send({ reason: 'drill' })).status).toBe(200);
      const epoch = async () => (await su.query(`SELECT epoch FROM tasks WHERE id = $1`, [t.id])).rows[0].epoch as number;
      expect(await runTask(agentDeps(), { orgId: org.id, taskId: t.id, epoch: await epoch() })).toBe('requeued');
      expect((await su.query(`SELECT state FROM tasks WHERE id = $1`, [t.id])).rows[0].state).toBe('queued');
      expect((await su.query(`SELECT state FROM approvals WHERE id = $1`, [a.id])).rows[0].state).toBe('approved');
      expect(existsSync(join(workspace(org.users.owner.id), 'numbers/last-week.csv'))).toBe(true);
      expect((await h.http.post('/v1/org/agents/resume').set('Cookie', cookie.owner).send({})).status).toBe(200);
      expect(await runTask(agentDeps(), { orgId: org.id, taskId: t.id, epoch: await epoch() })).toBe('completed');
      expect(existsSync(join(workspace(org.users.owner.id), 'numbers/last-week.csv'))).toBe(false);
      expect((await su.query(`SELECT state FROM approvals WHERE id = $1`, [a.id])).rows[0].state).toBe('used');
    } finally {
      await startWorker();
    }
  });

  it('the same job delivered twice to one worker process (as BullMQ does with a stalled job) runs once', async () => {
    await stopWorker();
    try {
      const t = await create(cookie.member, '[script:read-only] only once');
      const job = { orgId: org.id, taskId: t.id, epoch: 1 };
      expect((await Promise.all([runTask(agentDeps(), job), runTask(agentDeps(), job)])).sort()).toEqual(['completed', 'skipped']);
      expect((await actions(t.id)).map((a) => a.tool)).toEqual(['files.read']);
    } finally {
      await startWorker();
    }
  });

  it('a cancel requested while the turn that asks for an approval runs: the task ends cancelled, it does not wait', async () => {
    // The cancel lands while the gate writes the approval request (as from the API at that moment).
    await su.query(`CREATE FUNCTION test_cancel_on_approval() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE tasks SET cancel_requested_at = now() WHERE org_id = NEW.org_id AND id = NEW.task_id; RETURN NEW; END $$`);
    await su.query(`CREATE TRIGGER cancel_on_approval AFTER INSERT ON approvals FOR EACH ROW EXECUTE FUNCTION test_cancel_on_approval()`);
    try {
      const t = await create(cookie.member, '[script:cleanup] cancelled meanwhile');
      expect((await waitFor(t.id, ['cancelled', 'awaiting_approval', 'failed', 'completed'])).state).toBe('cancelled');
      expect(existsSync(join(workspace(org.users.member.id), 'numbers/last-week.csv'))).toBe(true);
    } finally {
      await su.query(`DROP TRIGGER cancel_on_approval ON approvals`);
      await su.query(`DROP FUNCTION test_cancel_on_approval()`);
    }
  });

  it('a cancel that meets a worker just leaving the task to wait for a person cancels it (it does not go on waiting)', async () => {
    await stopWorker();
    try {
      const t = await create(cookie.member, '[script:read-only] cancel while it turns');
      await su.query(`UPDATE tasks SET state = 'running', lease_holder = 'worker-x', lease_until = now() + interval '1 minute' WHERE id = $1`, [t.id]);
      // The worker's last write (waiting for an approval) is in progress when the cancel comes.
      const [res] = await atOnce(`UPDATE tasks SET state = 'awaiting_approval', lease_holder = NULL, lease_until = NULL WHERE id = $1`, [t.id], '%FROM tasks WHERE org_id = $1 AND id = $2 FOR UPDATE%', () => [
        h.http.post(`/v1/tasks/${t.id}/cancel`).set('Cookie', cookie.member).then((r) => r),
      ]);
      expect(res.status).toBe(200);
      expect(res.body.state).toBe('cancelled');
    } finally {
      await startWorker();
    }
  });

  it('an approval decided just as the worker leaves the task to wait for it: the task is resumed, it does not wait for nobody', async () => {
    // The owner's task (each member has 20 deletions an hour: the member's are this suite's other tests').
    seedFiles(org.users.owner.id);
    const t = await create(cookie.owner, '[script:cleanup] approved as the turn ends');
    expect((await waitFor(t.id, ['awaiting_approval', 'failed', 'completed'])).state).toBe('awaiting_approval');
    const approval = (await approvalOf(t.id))!;
    await stopWorker();
    try {
      // As if the worker's turn were still running: its last write (leaving the task to wait) is in progress when the approval comes.
      await su.query(`UPDATE tasks SET state = 'running', lease_holder = 'worker-x', lease_until = now() + interval '1 minute' WHERE id = $1`, [t.id]);
      const [res] = await atOnce(`UPDATE tasks SET state = 'awaiting_approval', lease_holder = NULL, lease_until = NULL WHERE id = $1`, [t.id], '%FROM tasks WHERE org_id = $1 AND id = (SELECT task_id FROM approvals%', () => [
        h.http.post(`/v1/approvals/${approval.id}/approve`).set('Cookie', cookie.approver).send({}).then((r) => r),
      ]);
      expect(res.status).toBe(200);
      expect((await su.query(`SELECT state FROM tasks WHERE id = $1`, [t.id])).rows[0].state).toBe('queued');
    } finally {
      await startWorker();
    }
    expect((await waitFor(t.id, ['completed', 'failed'])).state).toBe('completed');
  });

  it('while Redis does not answer, the Postgres timers go on: a waiting approval still expires on time', async () => {
    await stopWorker();
    const own = await startOwnRedis();
    const pauser = new Redis(own.url);
    let rt: WorkerRuntime | undefined;
    try {
      const t = await create(cookie.member, '[script:cleanup] while Redis sleeps');
      expect(await runTask({ ...agentDeps(), holder: 'worker-r' }, { orgId: org.id, taskId: t.id, epoch: 1 })).toBe('awaiting_approval');
      rt = await startWorkerRuntime({ redisUrl: own.url, prefix: 'away', concurrency: 1, log: quiet, agentTasks: { ...agentDeps(), listen: false } });
      // Redis stops answering for 5 s; meanwhile a new task waits in the outbox and the approval's time runs out.
      await pauser.call('CLIENT', 'PAUSE', '5000', 'ALL');
      await create(cookie.member, '[script:hello] queued while Redis sleeps');
      const a = (await approvalOf(t.id))!;
      await su.query(`UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1`, [a.id]);
      let state = '';
      for (let i = 0; i < 30 && state !== 'expired'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        state = (await su.query(`SELECT state FROM approvals WHERE id = $1`, [a.id])).rows[0].state;
      }
      expect(state).toBe('expired');
    } finally {
      await new Promise((r) => setTimeout(r, 2_500)); // the pause ends
      await rt?.close();
      pauser.disconnect();
      await own.stop();
      await startWorker();
    }
  });

  it('outcome unknown: a claim left executing by a crash is never re-run; a person settles it and the model is told', async () => {
    await stopWorker();
    const t = await create(cookie.member, 'Weekly exec brief (crash)');
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    const briefs = () => readdirSync(join(workspace(org.users.member.id), 'briefs')).filter((f) => !f.startsWith('.')).length;
    mkdirSync(join(workspace(org.users.member.id), 'briefs'), { recursive: true });
    const before = briefs();
    // Worker A writes the brief (turn 1); at turn 2 it "dies" as if right after the claim: the
    // outcome and the turn's results are gone, and the sweeper gave the task a new epoch.
    const crashed: AgentDeps = {
      ...agentDeps(),
      holder: 'worker-a',
      beforeTurn: crashAfterClaim(su, keys, org.id, 'files.write'),
    };
    expect(await runTask(crashed, { orgId: org.id, taskId: t.id, epoch: 1 })).toBe('lease_lost');
    expect(briefs()).toBe(before + 1);
    expect(await runTask({ ...agentDeps(), holder: 'worker-b' }, { orgId: org.id, taskId: t.id, epoch: 2 })).toBe('awaiting_approval');
    expect(briefs()).toBe(before + 1);
    const write = (await actions(t.id)).find((x) => x.tool === 'files.write')!;
    expect(write.state).toBe('outcome_unknown');
    const a = (await approvalOf(t.id))!;
    expect(a.kind).toBe('outcome_unknown');
    expect((await h.http.post(`/v1/approvals/${a.id}/approve`).set('Cookie', cookie.approver).send({})).status).toBe(409);
    const settled = await h.http.post(`/v1/approvals/${a.id}/settle`).set('Cookie', cookie.approver).send({ done: true, reason: 'the brief is in the folder' });
    expect(settled.status).toBe(200);
    expect(settled.body.state).toBe('settled');
    expect(await runTask({ ...agentDeps(), holder: 'worker-b' }, { orgId: org.id, taskId: t.id, epoch: 3 })).toBe('completed');
    expect(briefs()).toBe(before + 1);
    expect(await output(t.id)).toBe('The weekly brief is written and waits for your review.');
    expect((await actions(t.id)).find((x) => x.tool === 'files.write')!.state).toBe('settled_done');
    await startWorker();
  });

  it('outcome unknown in a task that ended meanwhile (cancelled while requeued after its worker died): the sweeper sends it to a person', async () => {
    await stopWorker();
    // An approver's own task: another approver settles its outcome.
    const t = await create(cookie.approver, 'Weekly exec brief (crash, then cancelled)');
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    mkdirSync(join(workspace(org.users.approver.id), 'briefs'), { recursive: true });
    // Worker A dies right after claiming the brief's write; the task waits, requeued, and its owner cancels it.
    expect(await runTask({ ...agentDeps(), holder: 'worker-a', beforeTurn: crashAfterClaim(su, keys, org.id, 'files.write') }, { orgId: org.id, taskId: t.id, epoch: 1 })).toBe('lease_lost');
    const cancelled = await h.http.post(`/v1/tasks/${t.id}/cancel`).set('Cookie', cookie.approver).send({});
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');
    const write = (await actions(t.id)).find((x) => x.tool === 'files.write')!;
    expect(write.state).toBe('executing');
    const keyring = new AuditKeyring(keys);
    // Within the time a call may take, nothing happens; past it, a person is asked.
    expect(await sweepOutcomesUnknown(h.ds, keyring, quiet, outcomeUnknownAfterSeconds(h.config))).toBe(0);
    await su.query(`UPDATE task_actions SET created_at = now() - interval '2 hours' WHERE id = $1`, [write.id]);
    expect(await sweepOutcomesUnknown(h.ds, keyring, quiet, outcomeUnknownAfterSeconds(h.config))).toBe(1);
    expect((await actions(t.id)).find((x) => x.tool === 'files.write')!.state).toBe('outcome_unknown');
    const a = (await approvalOf(t.id))!;
    expect(a.kind).toBe('outcome_unknown');
    // Not by the one whose agent acted.
    const own = await h.http.post(`/v1/approvals/${a.id}/settle`).set('Cookie', cookie.approver).send({ done: false });
    expect(own.status).toBe(403);
    expect(own.body.detail).toMatch(/Nobody settles the outcome of their own agent action/);
    const settled = await h.http.post(`/v1/approvals/${a.id}/settle`).set('Cookie', cookie.approver2).send({ done: false, reason: 'no brief in the folder' });
    expect(settled.status).toBe(200);
    // The task stays cancelled; the action is settled.
    expect((await h.http.get(`/v1/tasks/${t.id}`).set('Cookie', cookie.owner)).body.state).toBe('cancelled');
    expect((await actions(t.id)).find((x) => x.tool === 'files.write')!.state).toBe('settled_not_done');
    await startWorker();
  });

  it('every executed action of this suite had its decision, claim and audit event committed before it ran', async () => {
    const executed = (await su.query(`SELECT id, tool, args_digest, created_at, finished_at FROM task_actions WHERE org_id = $1 AND connector = 'workspace-files' AND state = 'succeeded'`, [org.id])).rows;
    expect(executed.length).toBeGreaterThan(8);
    for (const a of executed) {
      const ev = (
        await su.query(`SELECT txid, occurred_at, canonical::jsonb->>'decision' AS d FROM audit_events WHERE canonical::jsonb->'payload'->>'actionId' = $1 ORDER BY txid, id`, [a.id])
      ).rows;
      // The decision (and, for Watched, the redeemed approval) in an earlier transaction than the outcome.
      const decision = ev.find((e) => ['allowed', 'allowed_reversible', 'approved'].includes(e.d));
      const outcome = ev.find((e) => e.d === 'executed');
      expect(decision).toBeDefined();
      expect(outcome).toBeDefined();
      expect(BigInt(decision.txid)).toBeLessThan(BigInt(outcome.txid));
      expect(new Date(decision.occurred_at).getTime()).toBeLessThanOrEqual(new Date(a.finished_at).getTime());
    }
    // What the connector left on disk (briefs written) is no older than the decision of the write that made it.
    const writes = (await su.query(`SELECT a.id, a.created_at FROM task_actions a WHERE a.org_id = $1 AND a.tool = 'files.write' AND a.state = 'succeeded' AND a.review_state IS DISTINCT FROM 'reverted'`, [org.id])).rows;
    const dir = join(workspace(org.users.member.id), 'briefs');
    const mtimes = readdirSync(dir).filter((f) => !f.startsWith('.')).map((f) => statSync(join(dir, f)).mtimeMs);
    const earliestDecision = Math.min(...writes.map((w) => new Date(w.created_at).getTime()));
    for (const m of mtimes) expect(m).toBeGreaterThanOrEqual(earliestDecision - 5);
  });
});
