import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Client } from 'pg';
import { AuditKeyring } from '@steward/audit';
import { createLogger } from '@steward/common';
import { type AgentDeps, deliverIncidentNotifications, orgEgressReader, runTask, type ScriptedModelServer, startScriptedModelServer, sweepIncidents } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { IncidentsService } from '../src/incidents/incidents.service';
import { addUser, type Harness, login, type SeededOrg, type SeededUser, seedOrg, startHarness } from './support/harness';
import { type FakeSmtp, type Hook, type HookReceiver, mailSubject as subject, type ReceivedMail, startFakeSmtp, startHookReceiver } from './support/receivers';

/**
 * Incidents end to end: a Forbidden attempt (through the real gate, run by the agent loop) opens
 * an incident; unacknowledged it escalates on time — the test drives the sweeper's clock — to the
 * next contact and then to the org's executive, through a signed webhook and SMTP e-mail, both
 * received on loopback servers that check what arrived. Acknowledged ones stop escalating.
 */
describe('incidents and 24-hour escalation', () => {
  let h: Harness;
  let org: SeededOrg;
  let su: Client;
  let model: ScriptedModelServer;
  let cto: SeededUser;
  let cookie: Record<'owner' | 'security' | 'member' | 'auditor', string>;
  let hookServer: HookReceiver;
  let smtp: FakeSmtp;
  let hooks: Hook[] = [];
  let mails: ReceivedMail[] = [];
  const WEBHOOK_SECRET = 'whsec-incidents-test-3f9a1c';
  const SMTP_PASSWORD = 'smtp-pass-incidents-77d2e0';
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
  const deps = () => {
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    return { ds: h.ds, keys, keyring: new AuditKeyring(keys), log: quiet, egress: orgEgressReader(h.ds, h.config) };
  };
  const agentDeps = (): AgentDeps => ({
    ...deps(),
    redis: h.redis,
    redisPrefix: h.config.REDIS_PREFIX,
    dataDir: h.config.STEWARD_DATA_DIR,
    model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: false, maxTokens: 1024, offline: true, retry: { attempts: 2, baseDelayMs: 10 } },
    leaseSeconds: 5,
  });
  const sweep = (at: Date) => sweepIncidents(deps(), at, { timeoutMs: 5000 });
  const events = async (action: string) => (await su.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = $2 ORDER BY occurred_at, id`, [org.id, action])).rows.map((r) => JSON.parse(r.canonical));

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'incidents');
    cto = await addUser(h.ds, org, 'auditor', 'cto');
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
    hookServer = await startHookReceiver();
    hooks = hookServer.hooks;
    smtp = await startFakeSmtp('steward', SMTP_PASSWORD);
    mails = smtp.mails;
  });
  afterAll(async () => {
    await smtp?.close();
    await hookServer?.close();
    await model?.close();
    await su?.end();
    await h?.close();
  });

  const settingsBody = () => ({
    ownerUserId: org.users.security.id,
    escalationChain: [org.users.admin.id],
    executiveUserId: cto.id,
    executiveTitle: 'CTO',
    ackMinutes: 1440,
    stepMinutes: 120,
    channels: ['webhook', 'email'],
    webhookUrl: hookServer.url('/incident-hook'),
    smtp: { host: '127.0.0.1', port: smtp.port, secure: false, user: 'steward', from: 'steward@incidents.example' },
    secrets: { webhookSigningSecret: WEBHOOK_SECRET, smtpPassword: SMTP_PASSWORD },
  });

  it('channel settings: validated, owner only, secrets kept in the vault and never returned or audited', async () => {
    const bad = await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ ...settingsBody(), secrets: undefined });
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(JSON.stringify(bad.body.errors)).toContain('webhookUrl');
    const stranger = await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ ...settingsBody(), escalationChain: ['00000000-0000-4000-8000-000000000000'] });
    expect(stranger.status).toBe(400);
    expect((await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ ...settingsBody(), unknown: 1 })).status).toBe(400);
    const sec = await h.http.put('/v1/incident-settings').set('Cookie', cookie.security).send(settingsBody());
    expect(sec.status).toBe(403);
    expect((await su.query(`SELECT count(*)::int AS n FROM incident_settings WHERE org_id = $1`, [org.id])).rows[0].n).toBe(0);

    const res = await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send(settingsBody());
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ownerUserId: org.users.security.id, escalationChain: [org.users.admin.id], executiveUserId: cto.id, channels: ['webhook', 'email'], secrets: { webhookSigningSecret: true, smtpPassword: true, slackWebhookUrl: false } });
    const got = await h.http.get('/v1/incident-settings').set('Cookie', cookie.security);
    expect(got.body).toEqual(res.body);
    for (const text of [JSON.stringify(res.body), JSON.stringify(got.body), JSON.stringify(await events('incident_settings.update'))]) {
      expect(text).not.toContain(WEBHOOK_SECRET);
      expect(text).not.toContain(SMTP_PASSWORD);
    }
    const stored = (await su.query(`SELECT name, sealed FROM incident_secrets WHERE org_id = $1 ORDER BY name`, [org.id])).rows;
    expect(stored.map((r) => r.name)).toEqual(['smtp_password', 'webhook_signing_secret']);
    for (const r of stored) expect(Buffer.from(r.sealed).toString('latin1')).not.toMatch(/whsec|smtp-pass/);
    expect((await events('incident_settings.update'))).toHaveLength(1);
    // The loopback receivers are allowlisted like any private host an org's connectors may reach.
    expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', cookie.owner).send({ hosts: ['127.0.0.1'] })).status).toBe(200);
  });

  it('a Forbidden attempt opens an incident; unacknowledged it escalates on time to the next contact, then to the CTO, by signed webhook and e-mail', async () => {
    const policy = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows[0].document;
    const doc = { ...policy, rules: [...policy.rules, { id: 'org.no-payroll', scope: { type: 'org' }, actions: ['file.create', 'file.update'], level: 'forbidden', when: { resources: ['payroll/**'] }, reason: 'payroll data stays off agents' }] };
    await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(doc)]);
    const task = await h.http.post('/v1/tasks').set('Cookie', cookie.member).send({ prompt: '[script:payroll] raise the bonus' });
    expect(task.status).toBe(201);
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: task.body.id, epoch: 1 })).toBe('failed');
    await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(policy)]);

    const t0 = new Date();
    const first = await sweep(t0);
    expect(first).toEqual({ opened: 1, escalated: 0, delivered: 2, sanctioned: 0 });
    expect(await sweep(t0)).toEqual({ opened: 0, escalated: 0, delivered: 0, sanctioned: 0 });
    const list = await h.http.get('/v1/incidents?state=open').set('Cookie', cookie.auditor);
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(1);
    const inc = list.body.items[0];
    expect(inc).toMatchObject({ source: 'violation', severity: 'high', taskId: task.body.id, subjectUserId: org.users.member.id, actionType: 'file.create', ownerId: org.users.security.id, escalationLevel: 0 });
    expect(new Date(inc.ackDueAt).getTime()).toBe(t0.getTime() + 24 * 3600_000);
    // The owner was told at once, on both channels.
    expect(mails.map((m) => m.to)).toEqual([[org.users.security.email]]);
    expect(hooks.map((x) => JSON.parse(x.body).event)).toEqual(['incident.opened']);

    // One minute before the deadline nothing happens; just after it, the next contact is told.
    const due = new Date(inc.ackDueAt);
    expect(await sweep(new Date(due.getTime() - 60_000))).toEqual({ opened: 0, escalated: 0, delivered: 0, sanctioned: 0 });
    const at1 = new Date(due.getTime() + 1000);
    expect(await sweep(at1)).toEqual({ opened: 0, escalated: 1, delivered: 2, sanctioned: 0 });
    const hook1 = hooks[1];
    const body1 = JSON.parse(hook1.body);
    expect(body1).toMatchObject({ event: 'incident.escalated', incidentId: inc.id, severity: 'high', level: 1, recipient: { userId: org.users.admin.id, email: org.users.admin.email, role: 'contact' } });
    const ts = Math.floor(at1.getTime() / 1000);
    expect(hook1.headers['x-steward-signature']).toBe(`t=${ts},v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${ts}.${hook1.body}`).digest('hex')}`);
    expect(hook1.headers['x-steward-signature']).not.toBe(`t=${ts},v1=${createHmac('sha256', 'another-secret').update(`${ts}.${hook1.body}`).digest('hex')}`);
    expect(mails[1]).toMatchObject({ from: 'steward@incidents.example', to: [org.users.admin.email], user: 'steward' });
    expect(subject(mails[1].raw)).toBe(`[Steward] Incident escalated to you: ${inc.title} (high)`);

    // Then the CTO, one step (120 min) later — not before.
    expect(await sweep(new Date(at1.getTime() + 119 * 60_000))).toEqual({ opened: 0, escalated: 0, delivered: 0, sanctioned: 0 });
    const at2 = new Date(at1.getTime() + 120 * 60_000);
    expect(await sweep(at2)).toEqual({ opened: 0, escalated: 1, delivered: 2, sanctioned: 0 });
    expect(JSON.parse(hooks[2].body)).toMatchObject({ level: 2, recipient: { userId: cto.id, email: cto.email, role: 'executive', title: 'CTO' } });
    expect(mails[2].to).toEqual([cto.email]);
    expect(subject(mails[2].raw)).toContain('escalated to you');
    // Nobody is left: later sweeps send nothing more.
    expect(await sweep(new Date(at2.getTime() + 7 * 86_400_000))).toEqual({ opened: 0, escalated: 0, delivered: 0, sanctioned: 0 });
    expect(hooks).toHaveLength(3);
    expect(mails).toHaveLength(3);

    const detail = await h.http.get(`/v1/incidents/${inc.id}`).set('Cookie', cookie.security);
    expect(detail.body).toMatchObject({ escalationLevel: 2, nextEscalationAt: null, state: 'open' });
    expect(detail.body.notifications.map((n: { level: number; channel: string; state: string }) => `${n.level}:${n.channel}:${n.state}`).sort()).toEqual(
      ['0:email:sent', '0:webhook:sent', '1:email:sent', '1:webhook:sent', '2:email:sent', '2:webhook:sent'],
    );
    expect((await events('incident.open')).map((e) => e.target.id)).toEqual([inc.id]);
    expect((await events('incident.escalate')).map((e) => e.payload.level)).toEqual([1, 2]);
    // Acknowledged late: recorded as late, and no further escalation.
    const ack = await h.http.post(`/v1/incidents/${inc.id}/acknowledge`).set('Cookie', cookie.security).send({ note: 'on it' });
    expect(ack.status).toBe(200);
    expect((await events('incident.acknowledge'))[0].payload).toMatchObject({ late: true, from: 'open' });
  });

  it('a refused delivery (wrong SMTP password) is retried with backoff, never marked sent, and goes out once fixed', async () => {
    expect((await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ ...settingsBody(), secrets: { smtpPassword: 'not-the-password' } })).status).toBe(200);
    const res = await h.http.post('/v1/incidents').set('Cookie', cookie.security).send({ title: 'Vault check', severity: 'low' });
    expect(res.status).toBe(201);
    const now = new Date();
    const r = await sweep(now);
    // The SMTP server refuses the login: the e-mail stays pending; the webhook still goes.
    expect(r.delivered).toBe(1);
    const [n] = (await su.query(`SELECT state, attempts, last_error, next_attempt_at FROM incident_notifications WHERE incident_id = $1 AND channel = 'email'`, [res.body.id])).rows;
    expect(n).toMatchObject({ state: 'pending', attempts: 1 });
    expect(new Date(n.next_attempt_at).getTime()).toBe(now.getTime() + 2000);
    expect(n.last_error).toMatch(/auth|Invalid/i);
    expect(n.last_error).not.toContain('not-the-password');
    // Put the real password back (through the route): the retry delivers.
    expect((await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ ...settingsBody(), secrets: { smtpPassword: SMTP_PASSWORD } })).status).toBe(200);
    expect((await sweep(new Date(now.getTime() + 2000))).delivered).toBe(1);
    expect(mails[mails.length - 1].to).toEqual([org.users.security.email]);
  });

  it('by hand: open, comment, acknowledge (stops escalation), resolve, close — each audited; bad input and wrong states refused', async () => {
    expect((await h.http.post('/v1/incidents').set('Cookie', cookie.member).send({ title: 'x', severity: 'low' })).status).toBe(403);
    const bad = await h.http.post('/v1/incidents').set('Cookie', cookie.security).send({ title: '', severity: 'huge' });
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/application\/problem\+json/);
    expect((await h.http.post('/v1/incidents').set('Cookie', cookie.security).send({ title: 'x', severity: 'low', ownerId: '00000000-0000-4000-8000-000000000000' })).status).toBe(400);
    const created = await h.http.post('/v1/incidents').set('Cookie', cookie.security).send({ title: 'Shared drive link sent outside', description: 'Spotted by IR', severity: 'medium', ownerId: org.users.admin.id });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body).toMatchObject({ source: 'manual', state: 'open', ownerId: org.users.admin.id, openedBy: org.users.security.id });
    const c = await h.http.post(`/v1/incidents/${id}/comments`).set('Cookie', cookie.security).send({ body: 'Link revoked at 10:02.' });
    expect(c.status).toBe(201);
    expect((await h.http.post(`/v1/incidents/${id}/acknowledge`).set('Cookie', cookie.auditor).send({})).status).toBe(403);
    expect((await h.http.post(`/v1/incidents/${id}/acknowledge`).set('Cookie', cookie.security).send({})).body).toMatchObject({ state: 'acknowledged', acknowledgedBy: org.users.security.id, nextEscalationAt: null });
    expect((await h.http.post(`/v1/incidents/${id}/acknowledge`).set('Cookie', cookie.security).send({})).status).toBe(409);
    // Two days on, an acknowledged incident does not escalate.
    await sweep(new Date(Date.now() + 2 * 86_400_000));
    expect((await h.http.get(`/v1/incidents/${id}`).set('Cookie', cookie.security)).body.escalationLevel).toBe(0);
    expect((await h.http.post(`/v1/incidents/${id}/assign`).set('Cookie', cookie.security).send({ ownerId: org.users.security.id })).body.ownerId).toBe(org.users.security.id);
    expect((await h.http.post(`/v1/incidents/${id}/resolve`).set('Cookie', cookie.security).send({ resolution: 'Link revoked; user retrained.' })).body).toMatchObject({ state: 'resolved', resolution: 'Link revoked; user retrained.' });
    expect((await h.http.post(`/v1/incidents/${id}/close`).set('Cookie', cookie.security).send({})).body.state).toBe('closed');
    expect((await h.http.post(`/v1/incidents/${id}/resolve`).set('Cookie', cookie.security).send({ resolution: 'again' })).status).toBe(409);
    const detail = (await h.http.get(`/v1/incidents/${id}`).set('Cookie', cookie.auditor)).body;
    expect(detail.comments.map((x: { body: string }) => x.body)).toEqual(['Link revoked at 10:02.']);
    const trail = (await su.query(`SELECT canonical::jsonb->>'action' AS a FROM audit_events WHERE org_id = $1 AND canonical::jsonb->'target'->>'id' = $2 ORDER BY occurred_at, id`, [org.id, id])).rows.map((r) => r.a);
    expect(trail).toEqual(['incident.open', 'incident.comment', 'incident.acknowledge', 'incident.assign', 'incident.resolve', 'incident.close']);
    expect((await h.http.get(`/v1/incidents/00000000-0000-4000-8000-000000000000`).set('Cookie', cookie.security)).status).toBe(404);
    expect((await h.http.get(`/v1/incidents/not-a-uuid`).set('Cookie', cookie.security)).status).toBe(404);
  });

  it('the person an incident is about cannot acknowledge, resolve, close or reassign it (its escalation goes on); another responder can', async () => {
    const created = await h.http.post('/v1/incidents').set('Cookie', cookie.owner).send({ title: 'Payment attempted by an agent', severity: 'high' });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    // As a violation's incident names its member: here, the security lead's own agent.
    await su.query(`UPDATE incidents SET subject_user_id = $3 WHERE org_id = $1 AND id = $2`, [org.id, id, org.users.security.id]);
    for (const [path, body] of [['acknowledge', {}], ['resolve', { resolution: 'nothing to see' }], ['close', {}], ['assign', { ownerId: org.users.security.id }]] as const) {
      const refused = await h.http.post(`/v1/incidents/${id}/${path}`).set('Cookie', cookie.security).send(body);
      expect(refused.status).toBe(403);
      expect(refused.body.detail).toMatch(/about themself/);
    }
    expect((await h.http.post(`/v1/incidents/${id}/comments`).set('Cookie', cookie.security).send({ body: 'My agent read an injected mail.' })).status).toBe(201);
    expect((await h.http.get(`/v1/incidents/${id}`).set('Cookie', cookie.owner)).body.state).toBe('open');
    expect((await h.http.post(`/v1/incidents/${id}/acknowledge`).set('Cookie', cookie.owner).send({})).body.state).toBe('acknowledged');
  });

  it('a member who is not active is sent no incident notice, even as its owner', async () => {
    const away = await addUser(h.ds, org, 'security', 'suspended-owner');
    expect((await h.http.post(`/v1/members/${away.id}/suspend`).set('Cookie', await login(h, org.users.owner.email)).send({ reason: 'on leave, access paused' })).status).toBe(200);
    const created = await h.http.post('/v1/incidents').set('Cookie', cookie.security).send({ title: 'Payroll export seen outside', severity: 'high', ownerId: away.id });
    expect(created.status).toBe(201);
    const notices = (await su.query(`SELECT count(*)::int AS n FROM notifications WHERE org_id = $1 AND subject_id = $2`, [org.id, created.body.id])).rows[0].n;
    expect(notices).toBe(0);
    expect((await events('incident.open')).find((e) => e.target.id === created.body.id).payload).toMatchObject({ ownerId: away.id, notices: 0 });
  });

  it('openIncidentFromFinding: one incident per high or critical finding, none below', async () => {
    const svc = h.app.get(IncidentsService);
    const finding = { key: 'report-2026-10/volume-spike/alice', title: 'Volume spike: 40× email.send', severity: 'high' as const, evidence: { events: ['e1', 'e2'], baseline: { median: 3 } }, actionType: 'email.send', subjectUserId: org.users.member.id };
    const a = await svc.openIncidentFromFinding({ orgId: org.id }, finding);
    expect(a).toMatchObject({ created: true });
    expect(await svc.openIncidentFromFinding({ orgId: org.id }, finding)).toEqual({ id: a!.id, created: false });
    expect(await svc.openIncidentFromFinding({ orgId: org.id }, { ...finding, key: 'other', severity: 'medium' })).toBeNull();
    const got = (await h.http.get(`/v1/incidents/${a!.id}`).set('Cookie', cookie.security)).body;
    expect(got).toMatchObject({ source: 'finding', sourceRef: finding.key, severity: 'high', actionType: 'email.send', evidence: finding.evidence, openedBy: null });
  });

  it("a notice taken by a pass that began long ago is leased from the database's clock: another worker does not take it again meanwhile", async () => {
    await sweep(new Date()); // what earlier tests left pending
    let arrived = 0;
    const holding = createServer((req) => {
      arrived++;
      req.resume(); // read, never answered
    });
    await new Promise<void>((r) => holding.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(holding.address() as AddressInfo).port}/held`;
      expect((await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ ...settingsBody(), channels: ['webhook'], webhookUrl: url })).status).toBe(200);
      const res = await h.http.post('/v1/incidents').set('Cookie', cookie.security).send({ title: 'Long pass', severity: 'low' });
      expect(res.status).toBe(201);
      // Due for ten minutes; the first worker's pass began nine minutes ago (it has been delivering other notices since).
      await su.query(`UPDATE incident_notifications SET next_attempt_at = now() - interval '10 minutes' WHERE incident_id = $1`, [res.body.id]);
      const first = deliverIncidentNotifications(deps(), new Date(Date.now() - 9 * 60_000), { timeoutMs: 3000 });
      for (let i = 0; i < 100 && !arrived; i++) await new Promise((r) => setTimeout(r, 50));
      expect(arrived).toBe(1);
      // While it waits on the server, a second worker's pass (now) finds the notice leased.
      expect(await deliverIncidentNotifications(deps(), new Date(), { timeoutMs: 3000 })).toBe(0);
      expect(arrived).toBe(1);
      await first;
    } finally {
      holding.closeAllConnections();
      holding.close();
      expect((await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send(settingsBody())).status).toBe(200);
      await su.query(`UPDATE incident_notifications SET state = 'failed' WHERE state = 'pending'`);
    }
  });

  it('two workers sweeping at once deliver each notice once; Slack gets an incoming-webhook post (its URL kept secret)', async () => {
    await sweep(new Date()); // what earlier tests left pending
    const [h0, m0] = [hooks.length, mails.length];
    const res = await h.http.post('/v1/incidents').set('Cookie', cookie.security).send({ title: 'Concurrent sweep', severity: 'low' });
    expect(res.status).toBe(201);
    const now = new Date();
    const [a, b] = await Promise.all([deliverIncidentNotifications(deps(), now), deliverIncidentNotifications(deps(), now)]);
    expect(a + b).toBe(2);
    expect(hooks.length - h0).toBe(1);
    expect(mails.length - m0).toBe(1);

    const slackUrl = hookServer.url('/services/T000/B000/slack-secret-path');
    const put = await h.http.put('/v1/incident-settings').set('Cookie', cookie.owner).send({ ...settingsBody(), channels: ['slack'], secrets: { slackWebhookUrl: slackUrl } });
    expect(put.status).toBe(200);
    expect(put.body.secrets.slackWebhookUrl).toBe(true);
    expect(JSON.stringify(put.body)).not.toContain('slack-secret-path');
    const inc = await h.http.post('/v1/incidents').set('Cookie', cookie.security).send({ title: 'Slack channel check', severity: 'critical' });
    expect((await sweep(new Date())).delivered).toBe(1);
    const last = hooks[hooks.length - 1];
    expect(last.path).toBe('/services/T000/B000/slack-secret-path');
    expect(JSON.parse(last.body).text).toContain('*Slack channel check* (critical)');
    expect(JSON.parse(last.body).text).toContain(inc.body.id);
  });
});
