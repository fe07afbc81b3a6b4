import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { Client } from 'pg';
import { AuditKeyring } from '@steward/audit';
import { createLogger } from '@steward/common';
import { type AgentDeps, deliverNotifications, orgEgressReader, runTask, type ScriptedModelServer, sendMails, startScriptedModelServer } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { crashAfterClaim } from './support/crash';
import { addUser, type Harness, login, type SeededOrg, type SeededUser, seedOrg, startHarness } from './support/harness';
import { type FakeSmtp, type HookReceiver, mailSubject, mailText, startFakeSmtp, startHookReceiver } from './support/receivers';

/**
 * Approval notices that really go out: a Watched action (the scripted "cleanup" task's delete,
 * through the real gate and its write-ahead) makes the worker's notifier send one e-mail to each
 * routed approver over the org's SMTP server (the incident settings) — never to the requester —
 * and one post to the org's Slack incoming webhook, both received on loopback. The notices name
 * the tool, the action type, the requester and the reason, link to the approval in the console,
 * and carry neither the arguments nor any secret. Without SMTP or Slack the row is the record.
 */
describe('approval notifications (SMTP e-mail and Slack)', () => {
  let h: Harness;
  let org: SeededOrg;
  let bare: SeededOrg;
  let approver2: SeededUser;
  let su: Client;
  let model: ScriptedModelServer;
  let smtp: FakeSmtp;
  let slack: HookReceiver;
  let owner: string;
  const SMTP_PASSWORD = 'smtp-pass-approvals-5c1e9b';
  const SLACK_PATH = '/services/T000/B000/approval-slack-secret';
  const CONSOLE = 'https://console.acme.example';
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
  const keys = () => new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
  const agentDeps = (): AgentDeps => ({
    ds: h.ds,
    keys: keys(),
    keyring: new AuditKeyring(keys()),
    log: quiet,
    redis: h.redis,
    redisPrefix: h.config.REDIS_PREFIX,
    dataDir: h.config.STEWARD_DATA_DIR,
    model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: false, maxTokens: 1024, offline: true, retry: { attempts: 2, baseDelayMs: 10 } },
    leaseSeconds: 5,
  });
  const deliver = () => deliverNotifications({ ds: h.ds, keys: keys(), log: quiet, egress: orgEgressReader(h.ds, h.config) }, { consoleUrl: CONSOLE, timeoutMs: 5000 });
  /** A cleanup task by `who`, run by the agent loop until its delete waits for approval; its approval. */
  const watchedDelete = async (o: SeededOrg, who: string) => {
    const task = await h.http.post('/v1/tasks').set('Cookie', who).send({ prompt: '[script:cleanup] tidy the numbers folder' });
    expect(task.status).toBe(201);
    expect(await runTask(agentDeps(), { orgId: o.id, taskId: task.body.id, epoch: 1 })).toBe('awaiting_approval');
    const [a] = (await su.query(`SELECT id, reason FROM approvals WHERE org_id = $1 AND task_id = $2`, [o.id, task.body.id])).rows as { id: string; reason: string }[];
    return a;
  };
  const rows = async (o: SeededOrg, approvalId: string) =>
    (await su.query(`SELECT channel, state, attempts, last_error, payload FROM notifications WHERE org_id = $1 AND subject_id = $2 ORDER BY channel`, [o.id, approvalId])).rows;
  /** Due again now (the backoff is two seconds and more). */
  const dueNow = (o: SeededOrg, approvalId: string) => su.query(`UPDATE notifications SET next_attempt_at = now() WHERE org_id = $1 AND subject_id = $2`, [o.id, approvalId]);

  beforeAll(async () => {
    h = await startHarness();
    org = await seedOrg(h.ds, 'notify');
    bare = await seedOrg(h.ds, 'notify-bare');
    approver2 = await addUser(h.ds, org, 'approver', 'second');
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    model = await startScriptedModelServer();
    smtp = await startFakeSmtp('steward', SMTP_PASSWORD);
    slack = await startHookReceiver();
    owner = await login(h, org.users.owner.email);
    const put = await h.http.put('/v1/incident-settings').set('Cookie', owner).send({
      channels: ['email', 'slack'],
      smtp: { host: '127.0.0.1', port: smtp.port, secure: false, user: 'steward', from: 'steward@notify.example' },
      secrets: { smtpPassword: SMTP_PASSWORD, slackWebhookUrl: slack.url(SLACK_PATH) },
    });
    expect(put.status).toBe(200);
    expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', owner).send({ hosts: ['127.0.0.1'] })).status).toBe(200);
  });
  afterAll(async () => {
    await smtp?.close();
    await slack?.close();
    await model?.close();
    await su?.end();
    await h?.close();
  });

  it('a request mails each approver once (never the requester) and posts once to Slack, naming tool, type, requester and reason — not the arguments', async () => {
    const member = await login(h, org.users.member.email);
    const a = await watchedDelete(org, member);
    // The write-ahead queued an e-mail and a Slack notice (no org webhook is set).
    expect((await rows(org, a.id)).map((r) => [r.channel, r.state])).toEqual([['email', 'pending'], ['slack', 'pending']]);

    expect(await deliver()).toBe(2);
    expect(smtp.mails.map((m) => m.to).sort()).toEqual([[org.users.approver.email], [approver2.email]].sort());
    for (const m of smtp.mails) {
      expect(m).toMatchObject({ from: 'steward@notify.example', user: 'steward' });
      expect(mailSubject(m.raw)).toBe('[Steward] Approval needed: file.delete through files.delete');
      const text = mailText(m.raw);
      expect(text).toContain('Tool: files.delete');
      expect(text).toContain('Action type: file.delete');
      expect(text).toContain(`Requested by: member of notify`);
      expect(text).toContain(`Reason: ${a.reason}`);
      expect(text).toContain(`${CONSOLE}/approvals?id=${a.id}`);
      expect(m.raw).not.toContain('last-week.csv');
      expect(m.raw).not.toContain(SMTP_PASSWORD);
    }
    expect(slack.hooks).toHaveLength(1);
    expect(slack.hooks[0].path).toBe(SLACK_PATH);
    const post = JSON.parse(slack.hooks[0].body) as { text: string };
    expect(post.text).toContain('*file.delete* through `files.delete`');
    expect(post.text).toContain('requested by member of notify');
    expect(post.text).toContain(`<${CONSOLE}/approvals?id=${a.id}|Open the approval in Steward>`);
    expect(post.text).not.toContain('last-week.csv');

    const done = await rows(org, a.id);
    expect(done.map((r) => [r.channel, r.state, r.last_error])).toEqual([['email', 'sent', null], ['slack', 'sent', null]]);
    expect(done[0].payload).toMatchObject({ sender: 'smtp', to: [approver2.email, org.users.approver.email].sort() });
    // Nothing goes twice: the next sweep finds nothing due.
    expect(await deliver()).toBe(0);
    expect(smtp.mails).toHaveLength(2);
    expect(slack.hooks).toHaveLength(1);
    // Secrets stay out of the outbox rows.
    expect(JSON.stringify(done)).not.toMatch(/approval-slack-secret|smtp-pass/);
  });

  it("mail goes to the SMTP server's address as checked by the egress rules (a second lookup by the mail client could point elsewhere)", async () => {
    // A name only the egress check can resolve: were the mail client to look it up again itself, it would fail.
    const resolver = async (host: string) => (host === 'mail.acme-approvals.example' ? [{ address: '127.0.0.1', family: 4 as const }] : Promise.reject(new Error(`unknown host ${host}`)));
    const before = smtp.mails.length;
    await sendMails(
      { smtp_host: 'mail.acme-approvals.example', smtp_port: smtp.port, smtp_secure: false, smtp_user: 'steward', smtp_from: 'steward@acme.example' },
      SMTP_PASSWORD,
      { allowHosts: ['mail.acme-approvals.example'], resolver },
      [{ to: 'it@acme.example', subject: 'Checked address', text: 'hello' }],
    );
    expect(smtp.mails.slice(before).map((m) => m.to)).toEqual([['it@acme.example']]);
  });

  it('a mail server that answers each step just in time is cut off at the delivery\'s deadline, every recipient included', async () => {
    // Answers every command 200 ms late: each step is within its limit, the whole never ends in time.
    const sockets: Socket[] = [];
    let recipients = 0;
    const slow = createNetServer((socket) => {
      sockets.push(socket);
      socket.write('220 slow.acme.example ESMTP\r\n');
      socket.on('data', (chunk: Buffer) => {
        const line = chunk.toString('latin1').toUpperCase();
        if (line.startsWith('RCPT')) recipients++;
        const reply = line.startsWith('DATA') ? '354 go on\r\n' : line.startsWith('QUIT') ? '221 bye\r\n' : '250 ok\r\n';
        setTimeout(() => !socket.destroyed && socket.write(reply), 200);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    try {
      const port = (slow.address() as AddressInfo).port;
      const sending = sendMails(
        { smtp_host: '127.0.0.1', smtp_port: port, smtp_secure: false, smtp_user: null, smtp_from: 'steward@acme.example' },
        undefined,
        { allowHosts: ['127.0.0.1'], timeoutMs: 5_000, deadlineMs: 1_000 },
        Array.from({ length: 20 }, (_, i) => ({ to: `person${i}@acme.example`, subject: 'Slow', text: 'hello' })),
      );
      await expect(sending).rejects.toThrow(/took longer than 1 s in all/);
      // Cut off midway (each mail takes five 200 ms steps), its connection closed.
      expect(recipients).toBeGreaterThan(0);
      expect(recipients).toBeLessThan(20);
      for (let i = 0; i < 50 && !sockets.every((x) => x.destroyed); i++) await new Promise((r) => setTimeout(r, 20));
      expect(sockets.every((x) => x.destroyed)).toBe(true);
    } finally {
      for (const x of sockets) x.destroy();
      slow.close();
    }
  });

  it("one org's webhook that never answers holds up its own notices only: another org's go out meanwhile", async () => {
    const slowOrg = await seedOrg(h.ds, 'notify-slow');
    const quickOrg = await seedOrg(h.ds, 'notify-quick');
    let slowArrived = 0;
    const slow = createHttpServer((req) => {
      slowArrived++;
      req.resume(); // read, never answered
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const quick = await startHookReceiver();
    try {
      for (const [o, url] of [[slowOrg, `http://127.0.0.1:${(slow.address() as AddressInfo).port}/hook`], [quickOrg, quick.url('/hook')]] as const) {
        const c = await login(h, o.users.owner.email);
        expect((await h.http.put('/v1/egress/allow-hosts').set('Cookie', c).send({ hosts: ['127.0.0.1'] })).status).toBe(200);
        expect((await h.http.put('/v1/incident-settings').set('Cookie', c).send({ channels: ['webhook'], webhookUrl: url, secrets: { webhookSigningSecret: 'fairness-signing-secret-0123456789abcdef' } })).status).toBe(200);
        expect((await h.http.patch('/v1/org').set('Cookie', c).send({ notifyWebhookUrl: url })).status).toBe(200);
      }
      // Three notices of the slow org fell due first, then one of the quick org.
      for (const [o, ago] of [[slowOrg, 40], [slowOrg, 30], [slowOrg, 20], [quickOrg, 10]] as const) {
        await su.query(`INSERT INTO notifications (org_id, id, channel, kind, payload, next_attempt_at) VALUES ($1, gen_random_uuid(), 'webhook', 'approval.requested', $2, now() - make_interval(secs => $3))`, [o.id, JSON.stringify({ approvalId: randomUUID(), tool: 'files.delete' }), ago]);
      }
      const pass = deliverNotifications({ ds: h.ds, keys: keys(), log: quiet, egress: orgEgressReader(h.ds, h.config) }, { consoleUrl: CONSOLE, timeoutMs: 3000 });
      for (let i = 0; i < 100 && !quick.hooks.length; i++) await new Promise((r) => setTimeout(r, 50));
      // The quick org's notice went out while the slow org's first was still waiting on its server.
      expect({ quick: quick.hooks.length, slowArrived }).toEqual({ quick: 1, slowArrived: 1 });
      await pass;
    } finally {
      slow.closeAllConnections();
      slow.close();
      await quick.close();
      await su.query(`UPDATE notifications SET state = 'failed' WHERE org_id = ANY ($1) AND state = 'pending'`, [[slowOrg.id, quickOrg.id]]);
    }
  });

  it('an approver who asks is not mailed about their own request', async () => {
    const before = smtp.mails.length;
    await watchedDelete(org, await login(h, org.users.approver.email));
    await deliver();
    expect(smtp.mails.slice(before).map((m) => m.to)).toEqual([[approver2.email]]);
  });

  it('routed to a group: its members are mailed (not the requester, not approvers outside it), with the quorum', async () => {
    const group = await h.http.post('/v1/groups').set('Cookie', owner).send({ name: 'Finance approvers' });
    expect(group.status).toBe(201);
    for (const u of [approver2, org.users.security, org.users.member]) expect((await h.http.put(`/v1/groups/${group.body.id}/members/${u.id}`).set('Cookie', owner)).status).toBeLessThan(300);
    const [{ document }] = (await su.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [org.id])).rows;
    const routed = { ...document, approvals: [{ id: 'route.deletes', actions: ['file.delete'], approverGroup: group.body.id, quorum: 2 }] };
    await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(routed)]);
    try {
      const before = smtp.mails.length;
      await watchedDelete(org, await login(h, org.users.member.email));
      await deliver();
      const got = smtp.mails.slice(before);
      expect(got.map((m) => m.to).sort()).toEqual([[approver2.email], [org.users.security.email]].sort());
      for (const m of got) expect(mailText(m.raw)).toContain('Approvals needed: 2');
    } finally {
      await su.query(`UPDATE policies SET document = $2, updated_at = now() WHERE org_id = $1 AND status = 'active'`, [org.id, JSON.stringify(document)]);
    }
  });

  it('a refused SMTP login is recorded and retried with backoff; each approver still gets exactly one mail once it is fixed', async () => {
    expect((await h.http.put('/v1/incident-settings').set('Cookie', owner).send({ channels: ['email'], smtp: { host: '127.0.0.1', port: smtp.port, secure: false, user: 'steward', from: 'steward@notify.example' }, secrets: { smtpPassword: 'not-the-password' } })).status).toBe(200);
    try {
      const before = smtp.mails.length;
      const a = await watchedDelete(org, await login(h, org.users.member.email));
      await deliver();
      const [mail] = (await rows(org, a.id)).filter((r) => r.channel === 'email');
      expect(mail).toMatchObject({ state: 'pending', attempts: 1 });
      expect(mail.last_error).toMatch(/auth|invalid|password/i);
      expect(mail.last_error).not.toContain('not-the-password');
      expect(smtp.mails.length).toBe(before);
      // Not due again before its backoff.
      await deliver();
      expect((await rows(org, a.id)).find((r) => r.channel === 'email').attempts).toBe(1);
      expect((await h.http.put('/v1/incident-settings').set('Cookie', owner).send({ channels: ['email'], smtp: { host: '127.0.0.1', port: smtp.port, secure: false, user: 'steward', from: 'steward@notify.example' }, secrets: { smtpPassword: SMTP_PASSWORD } })).status).toBe(200);
      await dueNow(org, a.id);
      await deliver();
      expect(smtp.mails.slice(before).map((m) => m.to).sort()).toEqual([[org.users.approver.email], [approver2.email]].sort());
      expect((await rows(org, a.id)).find((r) => r.channel === 'email')).toMatchObject({ state: 'sent', attempts: 2, last_error: null });
    } finally {
      await h.http.put('/v1/incident-settings').set('Cookie', owner).send({
        channels: ['email', 'slack'],
        smtp: { host: '127.0.0.1', port: smtp.port, secure: false, user: 'steward', from: 'steward@notify.example' },
        secrets: { smtpPassword: SMTP_PASSWORD, slackWebhookUrl: slack.url(SLACK_PATH) },
      });
    }
  });

  it('a recipient the server refuses and a Slack outage are recorded and retried; the retry mails only the approver still missing', async () => {
    smtp.refuse.add(org.users.approver.email);
    slack.status = 500;
    try {
      const [mailsBefore, hooksBefore] = [smtp.mails.length, slack.hooks.length];
      const a = await watchedDelete(org, await login(h, org.users.member.email));
      await deliver();
      const first = await rows(org, a.id);
      expect(first.map((r) => [r.channel, r.state, r.attempts])).toEqual([['email', 'pending', 1], ['slack', 'pending', 1]]);
      expect(first[0].last_error).toMatch(/unavailable|550/);
      expect(first[0].payload.delivered).toEqual([approver2.email]);
      expect(first[1].last_error).toBe('Slack answered 500');
      expect(smtp.mails.slice(mailsBefore).map((m) => m.to)).toEqual([[approver2.email]]);
      smtp.refuse.clear();
      slack.status = 204;
      await dueNow(org, a.id);
      await deliver();
      expect((await rows(org, a.id)).map((r) => [r.channel, r.state, r.attempts, r.last_error])).toEqual([['email', 'sent', 2, null], ['slack', 'sent', 2, null]]);
      expect(smtp.mails.slice(mailsBefore).map((m) => m.to)).toEqual([[approver2.email], [org.users.approver.email]]);
      expect(slack.hooks.length - hooksBefore).toBe(2);
    } finally {
      smtp.refuse.clear();
      slack.status = 204;
    }
  });

  it('an action whose outcome is unknown after a crash is announced like a request: e-mail to the approvers and a Slack post', async () => {
    const member = await login(h, org.users.member.email);
    const task = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: 'Weekly exec brief (crash)' });
    expect(task.status).toBe(201);
    const taskId = task.body.id as string;
    // The worker "dies" right after the brief's write was claimed: its outcome and the turn's results are gone, and the task got a new epoch.
    const crashed: AgentDeps = {
      ...agentDeps(),
      holder: 'worker-a',
      beforeTurn: crashAfterClaim(su, keys(), org.id, 'files.write'),
    };
    expect(await runTask(crashed, { orgId: org.id, taskId, epoch: 1 })).toBe('lease_lost');
    expect(await runTask({ ...agentDeps(), holder: 'worker-b' }, { orgId: org.id, taskId, epoch: 2 })).toBe('awaiting_approval');
    const [a] = (await su.query(`SELECT id FROM approvals WHERE org_id = $1 AND task_id = $2 AND kind = 'outcome_unknown'`, [org.id, taskId])).rows as { id: string }[];
    expect(a).toBeDefined();
    expect((await rows(org, a!.id)).map((r) => [r.channel, r.state])).toEqual([['email', 'pending'], ['slack', 'pending']]);
    const [mailsBefore, hooksBefore] = [smtp.mails.length, slack.hooks.length];
    expect(await deliver()).toBe(2);
    const mails = smtp.mails.slice(mailsBefore);
    expect(mails.map((m) => m.to).sort()).toEqual([[org.users.approver.email], [approver2.email]].sort());
    expect(mailSubject(mails[0]!.raw)).toBe('[Steward] Outcome unknown: file.create through files.write');
    const posts = slack.hooks.slice(hooksBefore);
    expect(posts).toHaveLength(1);
    const post = JSON.parse(posts[0]!.body) as { text: string };
    expect(post.text).toMatch(/Outcome unknown/);
    expect(post.text).toContain(`${CONSOLE}/approvals?id=${a!.id}`);
  });

  it('with no SMTP server and no Slack configured the e-mail is recorded only (recipients resolved, marked as not sent by SMTP) and no Slack notice is queued', async () => {
    const [mailsBefore, hooksBefore] = [smtp.mails.length, slack.hooks.length];
    const a = await watchedDelete(bare, await login(h, bare.users.member.email));
    expect((await rows(bare, a.id)).map((r) => r.channel)).toEqual(['email']);
    await deliver();
    const [mail] = await rows(bare, a.id);
    expect(mail.state).toBe('sent');
    expect(mail.payload).toMatchObject({ sender: 'outbox-only (no SMTP configured)', to: [bare.users.approver.email] });
    expect(smtp.mails.length).toBe(mailsBefore);
    expect(slack.hooks.length).toBe(hooksBefore);
  });
});
