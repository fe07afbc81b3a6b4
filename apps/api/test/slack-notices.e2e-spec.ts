import { Client } from 'pg';
import { AuditKeyring } from '@steward/audit';
import { newId } from '@steward/common';
import { CredentialBroker } from '@steward/gate';
import { deliverNotifications, orgEgressReader, runTask, type ScriptedModelServer, startScriptedModelServer, sweepIncidents } from '@steward/jobs';
import { ConfigKeyProvider, credentialAad, sealSecret } from '@steward/vault';
import { fakeApi } from '../../../libs/connectors/src/test-support/fake-api';
import { agentDepsFor, quietLogger } from './support/agent';
import { login, type Harness, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Slack notices through the org's Slack connector: the incident settings name a channel and the
 * member whose connected Slack account posts there; approval requests and incidents then go out as
 * chat.postMessage calls of the built-in Slack connector (the official @slack/web-api client, against
 * a fake of the Web API on loopback) with that member's OAuth token, released by the credential
 * broker for this post alone — the decrypt audited as the system's notice, refused while the org's
 * agents are paused. Settings that could not post (no connector, a member who has not connected
 * Slack, someone outside the org) are refused with the field at fault.
 */
describe('Slack notices through the Slack connector', () => {
  let h: Harness;
  let org: SeededOrg;
  let su: Client;
  let model: ScriptedModelServer;
  let slack: Awaited<ReturnType<typeof fakeApi>>;
  let owner: string;
  const connectorId = newId();
  const credentialId = newId();
  const OWNER_TOKEN = 'xoxp-owner-notices-7d2f';
  const quiet = quietLogger();
  const keys = () => new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
  const connectors = () => ({ broker: new CredentialBroker(h.ds, keys(), new AuditKeyring(keys()), async () => ({ allowHosts: ['127.0.0.1'] })), baseUrls: { slack: slack.url } });
  const agentDeps = () => agentDepsFor(h, model.url);
  const deliver = () => deliverNotifications({ ds: h.ds, keys: keys(), log: quiet, connectors: connectors(), egress: orgEgressReader(h.ds, h.config) }, { consoleUrl: 'https://console.slack-notices.example', timeoutMs: 5000 });
  const posts = () => slack.calls.filter((c) => c.path === '/api/chat.postMessage').map((c) => ({ authorization: c.authorization, ...Object.fromEntries(new URLSearchParams(c.body)) }));
  const slackRow = async (approvalId: string) =>
    (await su.query(`SELECT state, attempts, last_error, payload FROM notifications WHERE org_id = $1 AND subject_id = $2 AND channel = 'slack'`, [org.id, approvalId])).rows[0];

  beforeAll(async () => {
    model = await startScriptedModelServer();
    slack = await fakeApi((c) => {
      if (c.path === '/api/chat.postMessage') {
        const p = new URLSearchParams(c.body);
        if (p.get('channel') === 'C404') return { json: { ok: false, error: 'channel_not_found' } };
        return { json: { ok: true, channel: p.get('channel'), ts: `1700000000.${slack.calls.length}` } };
      }
      return undefined;
    });
    h = await startHarness();
    org = await seedOrg(h.ds, 'slacknotice');
    const url = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    url.pathname = `/${h.db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    owner = await login(h, org.users.owner.email);
  });
  afterAll(async () => {
    await slack?.close();
    await model?.close();
    await su?.end();
    await h?.close();
  });

  it('settings that could not post are refused with the field at fault; valid ones are kept and shown', async () => {
    const put = (body: Record<string, unknown>) => h.http.put('/v1/incident-settings').set('Cookie', owner).send(body);
    // No connector installed yet.
    const none = await put({ channels: ['slack'], slack: { channel: 'C0APPROVALS', postAs: org.users.owner.id } });
    expect(none.status).toBe(400);
    expect(none.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(JSON.stringify(none.body.errors)).toContain('install the Slack connector first');
    // The Slack connector (per-user OAuth), installed; the owner has not connected their Slack account yet.
    await su.query(
      `INSERT INTO connectors (org_id, id, catalog_id, kind, name, auth, credential_scope, status) VALUES ($1, $2, 'slack', 'builtin', 'Slack', $3, 'user', 'active')`,
      [org.id, connectorId, JSON.stringify({ kind: 'oauth2', authorizationUrl: `${slack.url}/authorize`, tokenUrl: `${slack.url}/token`, clientId: 'steward-test', scopes: ['chat:write'] })],
    );
    const unconnected = await put({ channels: ['slack'], slack: { channel: 'C0APPROVALS', postAs: org.users.owner.id } });
    expect(unconnected.status).toBe(400);
    expect(JSON.stringify(unconnected.body.errors)).toContain('has not connected their Slack account');
    const s = await sealSecret(keys(), JSON.stringify({ accessToken: OWNER_TOKEN, refreshToken: 'refresh-1', tokenType: 'Bearer', expiresAt: Date.now() + 3600_000 }), credentialAad(org.id, connectorId, credentialId, org.users.owner.id));
    await su.query(
      `INSERT INTO credentials (org_id, id, connector_id, user_id, kind, status, sealed, wrapped_key, expires_at) VALUES ($1, $2, $3, $4, 'oauth2', 'active', $5, $6, $7)`,
      [org.id, credentialId, connectorId, org.users.owner.id, s.sealed, s.wrappedKey, new Date(Date.now() + 3600_000)],
    );
    // Neither the connector nor a webhook: the Slack channel has no way out.
    const neither = await put({ channels: ['slack'] });
    expect(neither.status).toBe(400);
    expect(JSON.stringify(neither.body.errors)).toContain('needs the Slack connector');
    // Another member's Slack account is theirs to offer, not the owner's; a channel that is not one.
    const other = await put({ channels: ['slack'], slack: { channel: 'C0APPROVALS', postAs: org.users.approver.id } });
    expect(other.status).toBe(400);
    expect(JSON.stringify(other.body.errors)).toContain('post as the owner who sets them up');
    expect((await put({ channels: ['slack'], slack: { channel: 'approvals channel <!here>', postAs: org.users.owner.id } })).status).toBe(400);
    // Nothing of the refused ones was kept.
    expect((await h.http.get('/v1/incident-settings').set('Cookie', owner)).body.slack).toBeNull();

    const ok = await put({ channels: ['slack'], slack: { channel: 'C0APPROVALS', postAs: org.users.owner.id } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ channels: ['slack'], slack: { channel: 'C0APPROVALS', postAs: org.users.owner.id }, secrets: { slackWebhookUrl: false } });
    expect((await h.http.get('/v1/incident-settings').set('Cookie', owner)).body.slack).toEqual({ channel: 'C0APPROVALS', postAs: org.users.owner.id });
    // The audit event says who posts where.
    const [event] = (await su.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND action = 'incident_settings.update' ORDER BY occurred_at DESC LIMIT 1`, [org.id])).rows;
    expect(event.p).toMatchObject({ changed: expect.arrayContaining(['slack', 'channels']), slack: { channel: 'C0APPROVALS', postAs: org.users.owner.id } });
  });

  it("an approval request is posted to the channel with the posting member's token, once; the decrypt is audited as the system's notice", async () => {
    const member = await login(h, org.users.member.email);
    const task = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:cleanup] tidy the numbers folder' });
    expect(task.status).toBe(201);
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: task.body.id, epoch: 1 })).toBe('awaiting_approval');
    const [a] = (await su.query(`SELECT id, tool, action_type FROM approvals WHERE org_id = $1 AND task_id = $2`, [org.id, task.body.id])).rows as { id: string; tool: string; action_type: string }[];
    expect((await slackRow(a.id)).state).toBe('pending');

    const before = posts().length;
    await deliver();
    const sent = posts().slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0].authorization).toBe(`Bearer ${OWNER_TOKEN}`);
    expect(sent[0].channel).toBe('C0APPROVALS');
    expect(sent[0].text).toContain('Approval needed');
    expect(sent[0].text).toContain(a.tool);
    expect(sent[0].text).toContain(`https://console.slack-notices.example/approvals?id=${a.id}`);
    const row = await slackRow(a.id);
    expect([row.state, row.attempts, row.last_error]).toEqual(['sent', 1, null]);
    expect(JSON.stringify(row)).not.toContain(OWNER_TOKEN);
    // Delivered once: the next sweep posts nothing more.
    await deliver();
    expect(posts().length - before).toBe(1);

    const events = (
      await su.query(`SELECT canonical::jsonb AS e FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'credential.decrypt' AND canonical::jsonb->'target'->>'id' = $2`, [org.id, credentialId])
    ).rows.map((r) => r.e);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor: { type: 'system' }, client: 'system', connector: 'Slack', payload: { purpose: 'notice', userId: org.users.owner.id, credentialOwner: org.users.owner.id } });
    expect(JSON.stringify(events)).not.toContain(OWNER_TOKEN);
  });

  it('while agents are paused the connector releases no credential: the notice waits and goes out once they resume; a refused channel is recorded', async () => {
    const member = await login(h, org.users.member.email);
    const task = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:cleanup] tidy the numbers folder again' });
    expect(await runTask(agentDeps(), { orgId: org.id, taskId: task.body.id, epoch: 1 })).toBe('awaiting_approval');
    const [a] = (await su.query(`SELECT id FROM approvals WHERE org_id = $1 AND task_id = $2`, [org.id, task.body.id])).rows as { id: string }[];
    const before = posts().length;
    await su.query(`UPDATE orgs SET agents_paused_at = now() WHERE id = $1`, [org.id]);
    try {
      await deliver();
    } finally {
      await su.query(`UPDATE orgs SET agents_paused_at = NULL WHERE id = $1`, [org.id]);
    }
    expect(posts().length).toBe(before);
    // Deferred, not failed: no attempt used up (a long pause does not exhaust the retries), tried again in a minute.
    const waiting = await slackRow(a.id);
    expect([waiting.state, waiting.attempts]).toEqual(['pending', 0]);
    expect(waiting.last_error).toBe('Slack connector: agents are paused in this org (kill switch); the notice waits until they resume');
    const [{ wait }] = (await su.query(`SELECT extract(epoch FROM next_attempt_at - now())::int AS wait FROM notifications WHERE org_id = $1 AND subject_id = $2 AND channel = 'slack'`, [org.id, a.id])).rows;
    expect(wait).toBeGreaterThan(50);

    await su.query(`UPDATE notifications SET next_attempt_at = now() WHERE org_id = $1 AND subject_id = $2`, [org.id, a.id]);
    await deliver();
    expect(posts().length - before).toBe(1);
    expect((await slackRow(a.id)).state).toBe('sent');

    // A channel Slack does not know: Slack's refusal is the notice's error (retried later).
    await su.query(`UPDATE incident_settings SET slack_channel = 'C404' WHERE org_id = $1`, [org.id]);
    try {
      const t2 = await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: '[script:cleanup] and once more' });
      expect(await runTask(agentDeps(), { orgId: org.id, taskId: t2.body.id, epoch: 1 })).toBe('awaiting_approval');
      const [b] = (await su.query(`SELECT id FROM approvals WHERE org_id = $1 AND task_id = $2`, [org.id, t2.body.id])).rows as { id: string }[];
      await deliver();
      const refused = await slackRow(b.id);
      expect([refused.state, refused.last_error]).toEqual(['pending', 'Slack connector: Slack: channel_not_found']);
    } finally {
      await su.query(`UPDATE incident_settings SET slack_channel = 'C0APPROVALS' WHERE org_id = $1`, [org.id]);
    }
  });

  it('an incident opened by hand is announced in the channel through the connector, its title escaped', async () => {
    const security = await login(h, org.users.security.email);
    const created = await h.http.post('/v1/incidents').set('Cookie', security).send({ title: 'Payroll export <!channel> attempt', severity: 'high', ownerId: org.users.admin.id });
    expect(created.status).toBe(201);
    const before = posts().length;
    await sweepIncidents({ ds: h.ds, keys: keys(), keyring: new AuditKeyring(keys()), log: quiet, connectors: connectors(), egress: orgEgressReader(h.ds, h.config) }, new Date(), { timeoutMs: 5000 });
    const sent = posts().slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ channel: 'C0APPROVALS', authorization: `Bearer ${OWNER_TOKEN}` });
    expect(sent[0].text).toContain(':rotating_light: Incident opened: *Payroll export &lt;!channel&gt; attempt* (high)');
    expect(sent[0].text).toContain(created.body.id);
  });
});
