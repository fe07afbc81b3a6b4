import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { z } from 'zod';
import { AuditKeyring } from '@steward/audit';
import { newId } from '@steward/common';
import { ConnectorHub, type ConnectorManifest, createSlackServer, createWorkspaceFilesServer, slackManifest, workspaceFilesManifest } from '@steward/connectors';
import { fakeApi } from '@steward/connectors/test-support/fake-api';
import { createDataSource, type DataSource, inOrg, Membership, Org, PolicyVersion, User } from '@steward/db';
import { type PolicyDocument, seedPolicy } from '@steward/policy';
import { ConfigKeyProvider } from '@steward/vault';
import { redisUrl } from '../../../test/support/db-urls';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { replayPolicy } from '@steward/oversight';
import { type ActionRequest, ClaimFenced, ContextCache, gateAction, type GateDeps, OutcomeWriter } from './gate';
import { reserve } from './rate-limits';
import { PolicySource } from './policy-source';

/**
 * The gate against real PostgreSQL and Redis, with the built-in workspace-files connector and a
 * "probe" connector whose tool looks, at the moment it runs, for its own committed claim and
 * audit event through another database connection.
 */
const probeManifest: ConnectorManifest = {
  id: 'probe',
  name: 'Probe',
  vendor: 'Steward tests',
  runtime: { kind: 'builtin' },
  auth: { kind: 'none' },
  credentialScope: 'org',
  tools: [
    { name: 'probe.read', description: 'Read something.', inputSchema: { type: 'object', properties: { q: { type: 'string' } } }, action: 'file.read', readOnly: true },
    { name: 'probe.pay', description: 'Pay an invoice.', inputSchema: { type: 'object', properties: { amount: { type: 'number' } } }, action: 'payment.execute', extract: { amount: ['/amount'] } },
    { name: 'probe.send', description: 'Send mail.', inputSchema: { type: 'object', properties: { to: { type: 'string' } } }, action: 'email.send', extract: { recipients: ['/to'] } },
    { name: 'probe.search', description: 'Search the web.', inputSchema: { type: 'object', properties: { url: { type: 'string' } } }, action: 'web.read', readOnly: true, extract: { urls: ['/url'] } },
    // A CMS: at Batched a publish becomes a draft; the reviewer's accept publishes that draft, a revert discards it.
    {
      name: 'probe.publish', description: 'Publish a post.', inputSchema: { type: 'object', properties: { title: { type: 'string' } } }, action: 'saas.write',
      reversible: { tool: 'probe.draft', undo: { tool: 'probe.discard', args: { id: '/result/id' } }, finalize: { tool: 'probe.publish_draft', args: { id: '/result/id' } } },
    },
    { name: 'probe.draft', description: 'Save a draft post.', inputSchema: { type: 'object', properties: { title: { type: 'string' } } }, action: 'saas.write' },
    { name: 'probe.discard', description: 'Discard a draft.', inputSchema: { type: 'object', properties: { id: { type: 'string' } } }, action: 'saas.write' },
    { name: 'probe.publish_draft', description: 'Publish a draft.', inputSchema: { type: 'object', properties: { id: { type: 'string' } } }, action: 'saas.write' },
  ],
};

/** A connector whose calls fail the first `fail` times per action id (a 503, or refused arguments). */
const flakyManifest: ConnectorManifest = {
  id: 'flaky',
  name: 'Flaky',
  vendor: 'Steward tests',
  runtime: { kind: 'builtin' },
  auth: { kind: 'none' },
  credentialScope: 'org',
  tools: [
    { name: 'flaky.read', description: 'Read.', inputSchema: { type: 'object' }, action: 'saas.read', readOnly: true },
    { name: 'flaky.post', description: 'Post (no idempotency key upstream).', inputSchema: { type: 'object' }, action: 'saas.write' },
    { name: 'flaky.post_idem', description: 'Post (the upstream honours the idempotency key).', inputSchema: { type: 'object' }, action: 'saas.write', idempotent: true },
  ],
};

describe('the action gate (real PostgreSQL and Redis)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let observer: Client;
  let redis: Redis;
  /** This run's Redis namespace (REDIS_PREFIX): the rate-limit counters live under it. */
  const redisPrefix = `steward-test-gate-${process.pid}-${Date.now()}`;
  let hub: ConnectorHub;
  let folder: string;
  const calls: { tool: string; claimState: string | null; decisionEvents: number; idempotencyKey: unknown }[] = [];
  const keyring = new AuditKeyring(new ConfigKeyProvider(`v1:${Buffer.alloc(32, 4).toString('base64')}`));
  const policies = new PolicySource();
  let deps: GateDeps;

  let observerQueue: Promise<unknown> = Promise.resolve();
  const observed = <T,>(fn: () => Promise<T>): Promise<T> => {
    const next = observerQueue.then(fn, fn);
    observerQueue = next.catch(() => undefined);
    return next;
  };

  async function probeServer(): Promise<McpServer> {
    const server = new McpServer({ name: 'probe', version: '1.0.0' });
    const handler = (tool: string) => async (args: Record<string, unknown>, extra: { _meta?: Record<string, unknown> }) => {
      const key = extra._meta?.['steward/idempotency-key'];
      // Through another connection (a superuser, outside any transaction of the gate): only committed rows are visible.
      // One query at a time on the observer's connection (tools run concurrently in some tests).
      const [claim, events] = await observed(async () => [
        await observer.query('SELECT state FROM task_actions WHERE id = $1', [key]),
        await observer.query(`SELECT count(*)::int AS n FROM audit_events WHERE canonical::jsonb->'payload'->>'actionId' = $1`, [key]),
      ]);
      calls.push({ tool, claimState: claim.rows[0]?.state ?? null, decisionEvents: events.rows[0].n, idempotencyKey: key });
      return { content: [{ type: 'text' as const, text: `ok ${JSON.stringify(args)}` }], structuredContent: { ok: true } };
    };
    server.registerTool('probe.read', { description: 'Read something.', inputSchema: { q: z.string().optional() } }, handler('probe.read'));
    server.registerTool('probe.pay', { description: 'Pay.', inputSchema: { amount: z.number().optional() } }, handler('probe.pay'));
    server.registerTool('probe.send', { description: 'Send.', inputSchema: { to: z.string().optional() } }, handler('probe.send'));
    server.registerTool('probe.search', { description: 'Search.', inputSchema: { url: z.string().optional() } }, handler('probe.search'));
    server.registerTool('probe.draft', { description: 'Draft.', inputSchema: { title: z.string().optional() } }, async (args, extra) => {
      await handler('probe.draft')(args, extra);
      // A title "id:<x>" makes the draft's id <x> (what an upstream answers is the upstream's).
      const id = typeof args.title === 'string' && args.title.startsWith('id:') ? args.title.slice(3) : 'post-7';
      return { content: [{ type: 'text' as const, text: 'draft saved' }], structuredContent: { id, status: 'draft' } };
    });
    for (const t of ['probe.publish', 'probe.discard', 'probe.publish_draft']) server.registerTool(t, { description: t, inputSchema: { title: z.string().optional(), id: z.string().optional() } }, handler(t));
    return server;
  }

  const flakyCalls: { tool: string; key: unknown }[] = [];
  function flakyServer(): McpServer {
    const server = new McpServer({ name: 'flaky', version: '1.0.0' });
    const handler = (tool: string) => async (args: { fail?: number; bad?: boolean }, extra: { _meta?: Record<string, unknown> }) => {
      const key = extra._meta?.['steward/idempotency-key'];
      flakyCalls.push({ tool, key });
      const n = flakyCalls.filter((c) => c.key === key).length;
      if (args.bad) return { isError: true, content: [{ type: 'text' as const, text: 'bad input' }], _meta: { 'steward/error': { code: 'bad_arguments', message: 'the amount is not a number' } } };
      if (n <= (args.fail ?? 0)) return { isError: true, content: [{ type: 'text' as const, text: 'unavailable' }], _meta: { 'steward/error': { code: 'upstream_error', message: 'flaky: HTTP 503', details: { status: 503 } } } };
      return { content: [{ type: 'text' as const, text: `ok after ${n}` }], structuredContent: { attempts: n } };
    };
    for (const t of ['flaky.read', 'flaky.post', 'flaky.post_idem']) server.registerTool(t, { description: t, inputSchema: { fail: z.number().optional(), bad: z.boolean().optional() } }, handler(t));
    return server;
  }

  let slackApi: Awaited<ReturnType<typeof fakeApi>>;

  async function newOrg(document: PolicyDocument = seedPolicy()): Promise<{ orgId: string; userId: string }> {
    const orgId = newId();
    const userId = newId();
    await inOrg(ds, { orgId, userId }, async (em) => {
      await em.insert(Org, { id: orgId, name: 'Acme', slug: `acme-${orgId.slice(-8)}`, domains: ['acme.example'], requireStepUp: false });
      await em.insert(User, { id: userId, email: `analyst-${orgId.slice(-8)}@acme.example`, name: 'Analyst', passwordHash: 'x', totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
      await em.insert(Membership, { id: newId(), orgId, userId, status: 'active', suspendedAt: null, suspendedReason: null });
      await em.insert(PolicyVersion, {
        id: newId(), orgId, version: 1, status: 'active', document: document as unknown as Record<string, unknown>, note: 'seed', authorId: userId,
        basedOn: null, activatedAt: new Date(), activatedBy: userId, archivedAt: null, reviewDueAt: null,
      });
    });
    return { orgId, userId };
  }

  const request = (o: { orgId: string; userId: string }, connector: string, tool: string, args: Record<string, unknown>, step = calls.length + Math.floor(Math.random() * 1e9)): ActionRequest => ({
    orgId: o.orgId,
    userId: o.userId,
    claim: { taskId: newId(), step },
    connector,
    tool,
    args,
    tainted: false,
    client: 'worker',
  });

  async function row(orgId: string, id: string) {
    const [r] = await inOrg(ds, { orgId }, (em) => em.query('SELECT * FROM task_actions WHERE org_id = $1 AND id = $2', [orgId, id]));
    return r;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 10 });
    await ds.initialize();
    const su = new URL(process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    su.pathname = `/${db.name}`;
    observer = new Client({ connectionString: su.toString() });
    await observer.connect();
    redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
    folder = mkdtempSync(join(tmpdir(), 'steward-gate-'));
    hub = new ConnectorHub({ timeoutMs: 10_000 });
    await hub.addBuiltin('workspace-files', createWorkspaceFilesServer({ folder }));
    await hub.addBuiltin('probe', await probeServer());
    await hub.addBuiltin('flaky', flakyServer());
    // Slack on a loopback fake of its Web API: C0VENDOR is shared with another company (Slack Connect), C0TEAM is the org's own.
    slackApi = await fakeApi((c) => {
      const id = new URLSearchParams(c.body).get('channel');
      if (c.path === '/api/conversations.info') return { json: { ok: true, channel: { id, is_ext_shared: id === 'C0VENDOR' } } };
      if (c.path === '/api/chat.postMessage') return { json: { ok: true, channel: id, ts: '1700000000.0001' } };
      return undefined;
    });
    await hub.addBuiltin('slack', createSlackServer({ baseUrl: slackApi.url, getCredential: async () => ({ accessToken: 'xoxp-test' }) }));
    const manifests: Record<string, ConnectorManifest> = { 'workspace-files': workspaceFilesManifest, probe: probeManifest, flaky: flakyManifest, slack: slackManifest };
    deps = { ds, redis, redisPrefix, keyring, policies, hub, manifest: (id) => manifests[id], outcomes: new OutcomeWriter(ds, keyring), retry: { attempts: 3, baseDelayMs: 5 } };
  });
  afterAll(async () => {
    await deps?.outcomes.flush();
    await hub?.close();
    await slackApi?.close();
    const left = redis ? await redis.keys(`${redisPrefix}:*`) : [];
    if (left.length) await redis.del(...left);
    await redis?.quit();
    await observer?.end();
    await ds?.destroy();
    await db?.drop();
  });

  it('Autonomous: executes only after its decision, claim and audit event are committed, with the action id as idempotency key', async () => {
    const org = await newOrg();
    const r = await gateAction(deps, request(org, 'probe', 'probe.read', { q: 'Q3 revenue' }));
    expect(r).toMatchObject({ status: 'executed', level: 'autonomous', reversible: false });
    const call = calls.at(-1)!;
    expect(call).toEqual({ tool: 'probe.read', claimState: 'executing', decisionEvents: 1, idempotencyKey: r.actionId });
    await deps.outcomes.flush();
    expect(await row(org.orgId, r.actionId)).toMatchObject({ state: 'succeeded', level: 'autonomous', action_type: 'file.read', policy_version: 1 });
    const events = await observer.query(`SELECT canonical::jsonb AS e FROM audit_events WHERE canonical::jsonb->'payload'->>'actionId' = $1 ORDER BY occurred_at, id`, [r.actionId]);
    expect(events.rows.map((x) => [x.e.decision, x.e.outcome])).toEqual([['allowed', 'success'], ['executed', 'success']]);
    // The arguments are sealed (under the employee's key), never in clear.
    expect(JSON.stringify(events.rows)).not.toContain('Q3 revenue');
  });

  it('Batched: a write runs in its reversible form and records its undo; Watched: waits, nothing runs', async () => {
    const org = await newOrg();
    const created = await gateAction(deps, request(org, 'workspace-files', 'files.write', { path: 'brief.md', content: '# Weekly brief' }));
    expect(created).toMatchObject({ status: 'executed', level: 'batched', reversible: true, undo: { tool: 'files.delete', args: { path: 'brief.md' } } });
    expect(readFileSync(join(folder, 'brief.md'), 'utf8')).toBe('# Weekly brief');
    await deps.outcomes.flush();
    expect((await row(org.orgId, created.actionId)).undo).toEqual({ tool: 'files.delete', args: { path: 'brief.md' } });

    const del = await gateAction(deps, request(org, 'workspace-files', 'files.delete', { path: 'brief.md' }));
    expect(del).toMatchObject({ status: 'awaiting_approval', level: 'watched' });
    expect(existsSync(join(folder, 'brief.md'))).toBe(true);
    expect(await row(org.orgId, del.actionId)).toMatchObject({ state: 'awaiting_approval' });
  });

  it("Batched with a finishing step: a publish runs as a draft and records how to publish it (the reviewer's accept) and how to discard it", async () => {
    const doc = seedPolicy();
    doc.baseline['saas.write'] = 'batched';
    const org = await newOrg(doc);
    const r = await gateAction(deps, request(org, 'probe', 'probe.publish', { title: 'Q3 results' }));
    expect(r).toMatchObject({ status: 'executed', level: 'batched', reversible: true, undo: { tool: 'probe.discard', args: { id: 'post-7' } } });
    expect(calls.at(-1)).toMatchObject({ tool: 'probe.draft', claimState: 'executing' });
    expect(calls.some((c) => c.tool === 'probe.publish' || c.tool === 'probe.publish_draft')).toBe(false);
    await deps.outcomes.flush();
    expect(await row(org.orgId, r.actionId)).toMatchObject({ state: 'succeeded', finalize: { tool: 'probe.publish_draft', args: { id: 'post-7' } }, undo: { tool: 'probe.discard', args: { id: 'post-7' } } });
  });

  it("a Slack post carrying customer personal data to a channel shared outside the org never goes: the connector posts there only when the call says so, and such a call is Forbidden", async () => {
    const doc = seedPolicy();
    doc.baseline['chat.send'] = 'autonomous';
    const org = await newOrg(doc);
    const text = 'Refunds due: jane.doe@customer.example, IBAN DE89370400440532013000';
    const posts = () => slackApi.calls.filter((c) => c.path === '/api/chat.postMessage').map((c) => new URLSearchParams(c.body).get('channel'));
    const before = posts().length;
    // Not said: decided as a post inside the org, and refused by the connector before anything is posted.
    const unsaid = await gateAction(deps, request(org, 'slack', 'slack.post_message', { channel: 'C0VENDOR', text }));
    expect(unsaid).toMatchObject({ status: 'failed', level: 'autonomous', error: { code: 'bad_arguments', message: expect.stringContaining('shared with people outside the org') } });
    // Said: decided as reaching outside the org with personal data — the company policy's forbidden area.
    const said = await gateAction(deps, request(org, 'slack', 'slack.post_message', { channel: 'C0VENDOR', text, sharedOutside: true }));
    expect(said).toMatchObject({ status: 'refused', refusal: 'forbidden', level: 'forbidden', ruleIds: expect.arrayContaining(['fa.pii-external-write']) });
    expect(posts().length).toBe(before);
    // The org's own channel, and a shared one without personal data, get their posts.
    expect(await gateAction(deps, request(org, 'slack', 'slack.post_message', { channel: 'C0TEAM', text }))).toMatchObject({ status: 'executed' });
    expect(await gateAction(deps, request(org, 'slack', 'slack.post_message', { channel: 'C0VENDOR', text: 'Shipment left the warehouse', sharedOutside: true }))).toMatchObject({ status: 'executed' });
    expect(posts().slice(before)).toEqual(['C0TEAM', 'C0VENDOR']);
  });

  it('an undo step that cannot be stored (U+0000 from the upstream) is left out, and the outcome is written all the same; one refused outcome does not lose the others', async () => {
    const doc = seedPolicy();
    doc.baseline['saas.write'] = 'batched';
    const org = await newOrg(doc);
    const r = await gateAction(deps, request(org, 'probe', 'probe.publish', { title: 'id:post\u00008' }));
    expect(r).toMatchObject({ status: 'executed', level: 'batched', reversible: true, undo: null });
    await deps.outcomes.flush();
    expect(await row(org.orgId, r.actionId)).toMatchObject({ state: 'succeeded', undo: null, finalize: null });

    // Two outcomes in one batch, one of which the database refuses (a state longer than its column): the other is written.
    const writer = new OutcomeWriter(ds, keyring, () => undefined, 60_000);
    const held = new OutcomeWriter(ds, keyring, () => undefined, 60_000);
    const a = await gateAction({ ...deps, outcomes: writer }, request(org, 'probe', 'probe.read', { q: 'first' }));
    const c = await gateAction({ ...deps, outcomes: held }, request(org, 'probe', 'probe.read', { q: 'third' }));
    const b = await gateAction({ ...deps, outcomes: writer }, request(org, 'probe', 'probe.read', { q: 'second' }));
    expect([a.status, b.status, c.status]).toEqual(['executed', 'executed', 'executed']);
    writer.add(request(org, 'probe', 'probe.read', {}), c.actionId, 'file.read', { state: 'x'.repeat(500), resultDigest: null, bytes: null, ms: 1, undo: null, finalize: null, errorCode: null });
    await expect(writer.flush()).rejects.toThrow();
    expect([(await row(org.orgId, a.actionId)).state, (await row(org.orgId, b.actionId)).state, (await row(org.orgId, c.actionId)).state]).toEqual(['succeeded', 'succeeded', 'executing']);
    await held.flush();
  });

  it('Forbidden: refused with its reason, nothing executed, the refusal audited', async () => {
    const org = await newOrg();
    const before = calls.length;
    const r = await gateAction(deps, request(org, 'probe', 'probe.pay', { amount: 1200 }));
    expect(r).toMatchObject({ status: 'refused', refusal: 'forbidden', level: 'forbidden' });
    expect(r.status !== 'duplicate' && r.reason).toMatch(/^Forbidden/);
    expect(calls.length).toBe(before);
    const [e] = (await observer.query(`SELECT canonical::jsonb AS e FROM audit_events WHERE canonical::jsonb->'payload'->>'actionId' = $1`, [r.actionId])).rows;
    expect(e.e).toMatchObject({ action: 'payment.execute', level: 'forbidden', decision: 'denied', outcome: 'denied' });
  });

  it("a web read carrying customer personal data is decided as data.egress_pii: Forbidden by the company policy, nothing sent, a violation opened", async () => {
    const org = await newOrg();
    const plain = await gateAction(deps, request(org, 'probe', 'probe.search', { url: 'https://search.example/?q=quarterly+results' }));
    expect(plain).toMatchObject({ status: 'executed', level: 'autonomous' });
    const before = calls.length;
    for (const q of ['jane.doe%40customer.example', 'jane.doe@customer.example', 'jane.doe%40customer.example&x=%FF&y=%', 'DE89370400440532013000']) {
      const r = await gateAction(deps, request(org, 'probe', 'probe.search', { url: `https://search.example/?q=${q}` }));
      expect({ q, status: r.status, level: r.status !== 'duplicate' ? r.level : null }).toEqual({ q, status: 'refused', level: 'forbidden' });
      expect(await row(org.orgId, r.actionId)).toMatchObject({ action_type: 'data.egress_pii', state: 'refused', rule_ids: expect.arrayContaining(['fa.pii-egress']) });
    }
    expect(calls.length).toBe(before);
    // Not personal data leaving: a long numeric id (it passes a card number's check), and an address sent to the org's own site.
    for (const url of ['https://social.example/u/status/4111111111111111', 'https://intranet.acme.example/?q=jane.doe@customer.example']) {
      const r = await gateAction(deps, request(org, 'probe', 'probe.search', { url }));
      expect({ url, status: r.status }).toEqual({ url, status: 'executed' });
    }
    const violations = await inOrg(ds, { orgId: org.orgId }, (em) => em.query(`SELECT count(*)::int AS n FROM violations WHERE org_id = $1`, [org.orgId]));
    expect(violations[0].n).toBeGreaterThanOrEqual(2);
  });

  it('a claim runs once: the same task step again executes nothing', async () => {
    const org = await newOrg();
    const req = request(org, 'probe', 'probe.read', { q: 'once' }, 7);
    const [a, b] = await Promise.all([gateAction(deps, req), gateAction(deps, req)]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual(['duplicate', 'executed']);
    expect(calls.filter((c) => c.idempotencyKey === (a.status === 'executed' ? a.actionId : b.actionId))).toHaveLength(1);
  });

  it('the kill switch and a suspension stop the next action (read inside the write-ahead transaction)', async () => {
    const org = await newOrg();
    const before = calls.length;
    await inOrg(ds, { orgId: org.orgId }, (em) => em.query('UPDATE orgs SET agents_paused_at = now() WHERE id = $1', [org.orgId]));
    expect(await gateAction(deps, request(org, 'probe', 'probe.read', {}))).toMatchObject({ status: 'refused', refusal: 'paused' });
    await inOrg(ds, { orgId: org.orgId }, (em) => em.query('UPDATE orgs SET agents_paused_at = NULL WHERE id = $1', [org.orgId]));
    await inOrg(ds, { orgId: org.orgId }, (em) => em.query(`UPDATE memberships SET status = 'suspended', suspended_at = now() WHERE org_id = $1 AND user_id = $2`, [org.orgId, org.userId]));
    expect(await gateAction(deps, request(org, 'probe', 'probe.read', {}))).toMatchObject({ status: 'refused', refusal: 'suspended' });
    expect(calls.length).toBe(before);
  });

  it("a workflow's rules apply only to the members it is open to: outside its groups every action is refused, and a cached context that still shows it open is caught by the write-ahead", async () => {
    const doc = seedPolicy();
    // The workflow lowers SaaS writes (Watched by default) to Autonomous: for the finance team only.
    doc.rules.push({ id: 'close-publish', scope: { type: 'workflow', id: 'finance-close' }, actions: ['saas.write'], level: 'autonomous', reason: 'the month-end close publishes the results' });
    const org = await newOrg(doc);
    const groupId = newId();
    await inOrg(ds, { orgId: org.orgId }, async (em) => {
      await em.query(`INSERT INTO groups (id, org_id, name) VALUES ($1, $2, 'Finance')`, [groupId, org.orgId]);
      await em.query(`INSERT INTO workflows (id, org_id, key, name, action_types, allowed_groups) VALUES ($1, $2, 'finance-close', 'Month-end close', '{saas.write}', $3)`, [newId(), org.orgId, [groupId]]);
    });
    const send = (d: GateDeps = deps) => gateAction(d, { ...request(org, 'probe', 'probe.publish', { title: 'November close' }), workflow: 'finance-close' });
    const before = calls.length;

    // Not in Finance: refused before its level counts, recorded as such, and no violation opened.
    const refused = await send();
    expect(refused).toMatchObject({ status: 'refused', refusal: 'workflow_not_permitted' });
    expect(refused.status === 'refused' && refused.reason).toMatch(/may not run tasks under the workflow "finance-close"/);
    expect(await row(org.orgId, refused.actionId)).toMatchObject({ state: 'refused', refusal: 'workflow_not_permitted' });
    const [{ n }] = await inOrg(ds, { orgId: org.orgId }, (em) => em.query('SELECT count(*)::int AS n FROM violations WHERE org_id = $1', [org.orgId]));
    expect(n).toBe(0);
    // What the policy forbids anyway is refused as Forbidden, with its violation, workflow or not.
    const pay = await gateAction(deps, { ...request(org, 'probe', 'probe.pay', { amount: 10 }), workflow: 'finance-close' });
    expect(pay).toMatchObject({ status: 'refused', refusal: 'forbidden' });
    const [{ v }] = await inOrg(ds, { orgId: org.orgId }, (em) => em.query('SELECT count(*)::int AS v FROM violations WHERE org_id = $1', [org.orgId]));
    expect(v).toBe(1);
    expect(calls.length).toBe(before);
    // Without the workflow the org's own rules decide (the publish waits for a person): the restriction is the workflow's alone.
    expect(await gateAction(deps, request(org, 'probe', 'probe.publish', { title: 'November close' }))).toMatchObject({ status: 'awaiting_approval' });

    // In Finance: the workflow's rule decides.
    await inOrg(ds, { orgId: org.orgId }, (em) => em.query('INSERT INTO group_members (id, org_id, group_id, user_id) VALUES ($1, $2, $3, $4)', [newId(), org.orgId, groupId, org.userId]));
    const cached: GateDeps = { ...deps, contexts: new ContextCache(60_000) };
    expect(await send(cached)).toMatchObject({ status: 'executed', level: 'autonomous' });
    expect(calls.length).toBe(before + 1);

    // Closed to Finance while the context cache (here a minute) still says open: the write-ahead
    // answers `changed`, the gate reads again and refuses; nothing runs.
    await inOrg(ds, { orgId: org.orgId }, (em) => em.query(`UPDATE workflows SET allowed_groups = '{}' WHERE org_id = $1`, [org.orgId]));
    expect(await send(cached)).toMatchObject({ status: 'refused', refusal: 'workflow_not_permitted' });
    // Open to every member again, then deleted: a task under a workflow that no longer exists is refused too.
    await inOrg(ds, { orgId: org.orgId }, (em) => em.query(`UPDATE workflows SET allowed_groups = NULL WHERE org_id = $1`, [org.orgId]));
    expect(await send()).toMatchObject({ status: 'executed' });
    await inOrg(ds, { orgId: org.orgId }, (em) => em.query(`DELETE FROM workflows WHERE org_id = $1`, [org.orgId]));
    expect(await send(cached)).toMatchObject({ status: 'refused', refusal: 'workflow_not_permitted' });
    expect(calls.length).toBe(before + 2);
  });

  it('rate limits are reserved atomically across concurrent calls, and fail safe when Redis is gone', async () => {
    const doc = seedPolicy();
    doc.rateLimits.push({ id: 'reads-per-hour', actions: ['file.read'], max: 3, per: 'hour', by: 'user', then: 'forbidden', reason: 'At most 3 reads an hour in this test' });
    const org = await newOrg(doc);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => gateAction(deps, request(org, 'probe', 'probe.read', { q: `r${i}` }))));
    expect(results.filter((r) => r.status === 'executed')).toHaveLength(3);
    expect(results.filter((r) => r.status === 'refused' && r.refusal === 'forbidden')).toHaveLength(5);
    // Counted under the deployment's Redis prefix, per org, limit and user.
    expect(await redis.keys(`${redisPrefix}:rls:${org.orgId}:reads-per-hour:u:*`)).toHaveLength(1);

    const org2 = await newOrg(doc);
    // A client whose connection is gone: every command fails at once.
    const down = new Redis(redisUrl(), { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    down.on('error', () => undefined);
    await new Promise((resolve) => down.once('ready', resolve));
    await down.quit();
    const r = await gateAction({ ...deps, redis: down }, request(org2, 'probe', 'probe.read', { q: 'no redis' }));
    expect(r).toMatchObject({ status: 'refused', refusal: 'forbidden' });
    expect(r.status !== 'duplicate' && r.ruleIds).toContain('reads-per-hour');
    // Said as it is, and no violation against the member: the outage made it Forbidden, not what they asked.
    expect(r.status !== 'duplicate' && r.reason).toMatch(/^Rate-limit counters unavailable \(Redis did not answer\)/);
    const violations = (await observer.query(`SELECT action_id FROM violations WHERE org_id = $1`, [org2.orgId])).rows;
    expect(violations).toEqual([]);
    // Whereas the reads over the limit while Redis answered each opened one for triage.
    expect((await observer.query(`SELECT count(*)::int AS n FROM violations WHERE org_id = $1`, [org.orgId])).rows[0].n).toBe(5);
    // Action types without a limit do not need Redis.
    expect(await gateAction({ ...deps, redis: down }, request(org2, 'workspace-files', 'files.write', { path: 'no-redis.md', content: 'x' }))).toMatchObject({ status: 'executed', level: 'batched' });
  });

  it('a rate limit counts over a sliding window: a full window just before the hour turns still counts just after it', async () => {
    const limit = { id: 'deletes-per-hour', actions: ['file.delete'], max: 20, per: 'hour', by: 'user', then: 'forbidden', reason: 'at most 20 deletes an hour' } as const;
    const orgId = newId();
    const hour = Date.UTC(2026, 11, 7, 11, 0, 0);
    const at = (ms: number) => new Date(hour + ms);
    // 20 at 10:59:40: all within the limit.
    for (let i = 0; i < 20; i++) expect((await reserve(redis, orgId, 'u1', [limit], at(-20_000), 250, redisPrefix)).exceeded).toEqual([]);
    // At 11:00:05 the previous hour still weighs almost whole (20 · 0.9986, rounded up: 20): no room.
    expect((await reserve(redis, orgId, 'u1', [limit], at(5_000), 250, redisPrefix)).exceeded).toEqual(['deletes-per-hour']);
    // Late in the hour the previous one weighs little: there is room again.
    expect((await reserve(redis, orgId, 'u1', [limit], at(3_300_000), 250, redisPrefix)).exceeded).toEqual([]);
  });

  it('a rate limit counts actions, not decisions: the same action reserved again (in its window or the next) takes no second slot', async () => {
    const limit = { id: 'sends-per-hour', actions: ['email.send'], max: 2, per: 'hour', by: 'user', then: 'forbidden', reason: 'at most 2 sends an hour' } as const;
    const orgId = newId();
    const hour = Date.UTC(2026, 11, 7, 11, 0, 0);
    const at = (ms: number) => new Date(hour + ms);
    const sendOnce = (unit: string, ms: number) => reserve(redis, orgId, 'u1', [limit], at(ms), 250, redisPrefix, unit);
    expect((await sendOnce('t:task-1:3', -20_000)).exceeded).toEqual([]);
    // Decided again (its approval redeemed) in the same window, then in the next: still one action.
    for (const ms of [-10_000, 5_000, 10_000]) expect((await sendOnce('t:task-1:3', ms)).exceeded).toEqual([]);
    expect((await sendOnce('t:task-1:4', 12_000)).exceeded).toEqual([]);
    // A third action is over the limit (and is counted, however often it is decided).
    expect((await sendOnce('g:gateway-call-1', 14_000)).exceeded).toEqual(['sends-per-hour']);
    expect((await sendOnce('g:gateway-call-1', 15_000)).exceeded).toEqual(['sends-per-hour']);
    // The first ones, decided again after it, keep the count they were given: still within the limit.
    expect((await sendOnce('t:task-1:3', 16_000)).exceeded).toEqual([]);
    expect((await sendOnce('t:task-1:4', 17_000)).exceeded).toEqual([]);
  });

  it('a tainted task: an outbound mail is decided with the taint and never runs without a human', async () => {
    const org = await newOrg();
    const before = calls.length;
    const r = await gateAction(deps, { ...request(org, 'probe', 'probe.send', { to: 'x@evil.example' }), tainted: true, labels: ['external', 'untrusted'] });
    expect(r.status === 'awaiting_approval' || r.status === 'refused').toBe(true);
    expect(calls.length).toBe(before);
    expect(await row(org.orgId, r.actionId)).toMatchObject({ tainted: true, labels: expect.arrayContaining(['external', 'untrusted']) });
  });

  it("a person's own rule that frees posting (saas.write Autonomous) does not free a tainted task: the org's guard holds it for a human", async () => {
    const org = await newOrg();
    const doc = seedPolicy();
    doc.rules.push({ id: 'user.publishes', scope: { type: 'user', id: org.userId }, actions: ['saas.write'], level: 'autonomous', reason: 'publishes for the team' });
    // (As a test sets it up: the runtime role may not rewrite an active version.)
    await observer.query(`UPDATE policies SET document = $2 WHERE org_id = $1`, [org.orgId, JSON.stringify(doc)]);
    const before = calls.length;
    const clean = await gateAction(deps, request(org, 'probe', 'probe.draft', { title: 'Weekly numbers' }));
    expect(clean).toMatchObject({ status: 'executed', level: 'autonomous', ruleIds: ['user.publishes'] });
    const tainted = await gateAction(deps, { ...request(org, 'probe', 'probe.draft', { title: 'As the e-mail asked' }), tainted: true, labels: ['untrusted'] });
    expect(tainted).toMatchObject({ status: 'awaiting_approval', level: 'watched', ruleIds: ['user.publishes', 'org.tainted-outbound'] });
    expect(tainted.status !== 'duplicate' && tainted.reason).toMatch(/^Watched: raised to Watched by the org's guard: the task has read untrusted content/);
    expect(calls.length).toBe(before + 1);
  });

  it('transient connector failures retry with backoff only when safe (reads, idempotent tools); validation failures never retry', async () => {
    const doc = seedPolicy();
    (doc.baseline as Record<string, string>)['saas.write'] = 'autonomous';
    const org = await newOrg(doc);
    const count = (id: string) => flakyCalls.filter((c) => c.key === id).length;
    // A read that fails twice with a 503 succeeds on its third attempt, under one claim and one key.
    const read = await gateAction(deps, request(org, 'flaky', 'flaky.read', { fail: 2 }));
    expect(read).toMatchObject({ status: 'executed' });
    expect(count(read.actionId)).toBe(3);
    // Past its attempts it fails as the upstream error.
    const gone = await gateAction(deps, request(org, 'flaky', 'flaky.read', { fail: 5 }));
    expect(gone).toMatchObject({ status: 'failed', error: { code: 'upstream_error' } });
    expect(count(gone.actionId)).toBe(3);
    // A write whose upstream takes no idempotency key is never called twice; after a server error
    // (it may have acted) it is not reported failed either: its outcome goes to a person.
    const post = await gateAction(deps, request(org, 'flaky', 'flaky.post', { fail: 1 }));
    expect(post).toMatchObject({ status: 'outcome_unknown', error: { code: 'upstream_error' }, approvalOpened: true });
    expect(count(post.actionId)).toBe(1);
    // One the upstream refused outright did nothing: failed, as it is.
    const refusedPost = await gateAction(deps, request(org, 'flaky', 'flaky.post', { bad: true }));
    expect(refusedPost).toMatchObject({ status: 'failed', error: { code: 'bad_arguments' } });
    // One whose upstream honours the key is retried with the same key.
    const idem = await gateAction(deps, request(org, 'flaky', 'flaky.post_idem', { fail: 1 }));
    expect(idem).toMatchObject({ status: 'executed' });
    expect(count(idem.actionId)).toBe(2);
    // Past its attempts it may still have acted: not reported failed (the model's next try would be another
    // action, with another key), its outcome goes to a person.
    const idemGone = await gateAction(deps, request(org, 'flaky', 'flaky.post_idem', { fail: 5 }));
    expect(idemGone).toMatchObject({ status: 'outcome_unknown', error: { code: 'upstream_error' } });
    expect(count(idemGone.actionId)).toBe(3);
    // Refused arguments are not transient: one call, even for a read.
    const bad = await gateAction(deps, request(org, 'flaky', 'flaky.read', { bad: true }));
    expect(bad).toMatchObject({ status: 'failed', error: { code: 'bad_arguments' } });
    expect(count(bad.actionId)).toBe(1);
    await deps.outcomes.flush();
    expect(await row(org.orgId, post.actionId)).toMatchObject({ state: 'outcome_unknown' });
    const [settle] = (await observer.query(`SELECT kind, state FROM approvals WHERE org_id = $1 AND action_id = $2`, [org.orgId, post.actionId])).rows;
    expect(settle).toEqual({ kind: 'outcome_unknown', state: 'pending' });
    expect(await row(org.orgId, refusedPost.actionId)).toMatchObject({ state: 'failed', error_code: 'bad_arguments' });
    expect(await row(org.orgId, idem.actionId)).toMatchObject({ state: 'succeeded' });
  });

  it('a fenced claim (a task step of a worker whose lease was taken over) claims and runs nothing', async () => {
    const org = await newOrg();
    const taskId = newId();
    // The task is now held by worker-b under epoch 2 (worker-a's epoch 1 was taken over).
    await inOrg(ds, { orgId: org.orgId }, (em) =>
      em.query(
        `INSERT INTO tasks (org_id, id, user_id, prompt_sealed, prompt_key, prompt_digest, prompt_bytes, max_steps, state, epoch, lease_holder, lease_until)
         VALUES ($1, $2, $3, '\\x00', 'k', repeat('0', 64), 0, 10, 'running', 2, 'worker-b', now() + interval '1 minute')`,
        [org.orgId, taskId, org.userId],
      ),
    );
    const before = calls.length;
    const req = (epoch: number, holder: string, step: number): ActionRequest => ({ ...request(org, 'probe', 'probe.read', { q: 'fenced' }), claim: { taskId, step }, fence: { epoch, holder } });
    await expect(gateAction(deps, req(1, 'worker-a', 1))).rejects.toBeInstanceOf(ClaimFenced);
    await expect(gateAction(deps, req(2, 'worker-a', 1))).rejects.toBeInstanceOf(ClaimFenced);
    expect(calls.length).toBe(before);
    expect((await observer.query('SELECT count(*)::int AS n FROM task_actions WHERE task_id = $1', [taskId])).rows[0].n).toBe(0);
    // The holder of the current epoch claims and runs the step.
    expect(await gateAction(deps, req(2, 'worker-b', 1))).toMatchObject({ status: 'executed' });
    expect(calls.length).toBe(before + 1);
  });

  it('an outcome that could not be written is never reported written: flush() rejects, the claim stays `executing` (outcome unknown, never re-run)', async () => {
    const org = await newOrg();
    const outcomes = new OutcomeWriter(ds, keyring, () => undefined, 1);
    // The database refuses this org's outcome updates (a full disk, a lost connection mid-batch).
    await observer.query(`CREATE FUNCTION refuse_outcome() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$`);
    await observer.query(`CREATE TRIGGER refuse_outcome BEFORE UPDATE ON task_actions FOR EACH ROW WHEN (OLD.org_id = '${org.orgId}') EXECUTE FUNCTION refuse_outcome()`);
    try {
      const r = await gateAction({ ...deps, outcomes }, request(org, 'probe', 'probe.read', { q: 'lost outcome' }));
      expect(r.status).toBe('executed');
      // The background batch fails first; the caller's flush must still hear of it.
      await new Promise((done) => setTimeout(done, 50));
      await expect(outcomes.flush()).rejects.toThrow('disk full');
      expect(await row(org.orgId, r.actionId)).toMatchObject({ state: 'executing' });
      // Reported once: later flushes, with nothing lost since, succeed.
      await expect(outcomes.flush()).resolves.toBeUndefined();
    } finally {
      await observer.query(`DROP TRIGGER refuse_outcome ON task_actions; DROP FUNCTION refuse_outcome()`);
    }
  });

  it('outcomes of several orgs finishing together are written in one batch, each under its own org, each with its outcome event', async () => {
    const orgs = [await newOrg(), await newOrg(), await newOrg()];
    // A longer delay: the twelve outcomes go as one batch.
    const outcomes = new OutcomeWriter(ds, keyring, () => undefined, 200);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => gateAction({ ...deps, outcomes }, request(orgs[i % 3]!, 'probe', 'probe.read', { q: `batch ${i}` }))));
    expect(results.every((r) => r.status === 'executed')).toBe(true);
    await outcomes.flush();
    for (const [k, org] of orgs.entries()) {
      const mine = results.filter((_, i) => i % 3 === k).map((r) => r.actionId);
      const rows: { id: string; state: string; result_digest: string | null; finished_at: Date | null; events: number }[] = await inOrg(ds, { orgId: org.orgId }, (em) =>
        em.query(
          `SELECT t.id, t.state, t.result_digest, t.finished_at,
                  (SELECT count(*)::int FROM audit_events a WHERE a.org_id = t.org_id AND a.canonical::jsonb->>'decision' = 'executed' AND a.canonical::jsonb->'payload'->>'actionId' = t.id::text) AS events
             FROM task_actions t WHERE t.org_id = $1 AND t.id = ANY($2::uuid[])`,
          [org.orgId, mine],
        ),
      );
      expect(rows).toHaveLength(4);
      for (const r of rows) expect(r).toMatchObject({ state: 'succeeded', result_digest: expect.stringMatching(/^[0-9a-f]{64}$/), finished_at: expect.any(Date), events: 1 });
    }
  });

  it('records every input of its decisions: a replay of the policy decides each one the same, and a draft exactly where it differs', async () => {
    const org = await newOrg();
    await inOrg(ds, { orgId: org.orgId }, (em) => em.query(`INSERT INTO workflows (id, org_id, key, name) VALUES ($1, $2, 'crm', 'CRM sync')`, [newId(), org.orgId]));
    const requests = [
      request(org, 'probe', 'probe.read', { q: 'pipeline' }),
      request(org, 'workspace-files', 'files.write', { path: 'replay.md', content: 'x' }),
      request(org, 'workspace-files', 'files.delete', { path: 'replay.md' }),
      request(org, 'probe', 'probe.pay', { amount: 90 }),
      request(org, 'probe', 'probe.send', { to: 'cfo@acme.example' }),
      request(org, 'probe', 'probe.send', { to: 'someone@elsewhere.example' }),
      { ...request(org, 'flaky', 'flaky.post', {}), tainted: true, labels: ['confidential'], workflow: 'crm' },
      { ...request(org, 'workspace-files', 'files.write', { path: 'tainted.md', content: 'y' }), tainted: true },
    ];
    const decided = [];
    for (const r of requests) decided.push(await gateAction(deps, r));
    await deps.outcomes.flush();
    const now = new Date(Date.now() + 60_000);
    const same = await replayPolicy(ds, { orgId: org.orgId, policy: seedPolicy(), days: 1, now });
    expect({ replayed: same.replayed, notReplayable: same.notReplayable, changed: same.changed, otherRules: same.sameLevelOtherRules }).toEqual({ replayed: requests.length, notReplayable: 0, changed: 0, otherRules: 0 });
    // A draft that lets the CRM workflow post Batched: its post (no reversible form) would still wait like Watched;
    // one that lets the user delete files Autonomously changes exactly the delete.
    const draft = seedPolicy();
    draft.rules.push({ id: 'wf.crm-batched', scope: { type: 'workflow', id: 'crm' }, actions: ['saas.write'], level: 'batched', reason: 'crm posts in batches' });
    draft.rules.push({ id: 'user.deletes', scope: { type: 'user', id: org.userId }, actions: ['file.delete'], level: 'autonomous', reason: 'trusted' });
    const diff = await replayPolicy(ds, { orgId: org.orgId, policy: draft, days: 1, now, listChanged: true });
    const deleteEvent = (await observer.query(`SELECT id FROM audit_events WHERE canonical::jsonb->'payload'->>'actionId' = $1 AND decision IS NOT NULL`, [decided[2].actionId])).rows[0].id;
    expect(diff.changedEventIds).toEqual([deleteEvent]);
    expect(diff.transitions).toEqual([{ from: 'watched', to: 'autonomous', count: 1 }]);
    expect(diff.sameLevelOtherRules).toBe(1); // the CRM post: still Watched, now by the workflow rule
  });
});
