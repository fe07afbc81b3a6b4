import type { AddressInfo } from 'node:net';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueName } from '@steward/common';
import { relayOutbox } from '@steward/jobs';
import { newApiKey } from './support/fixtures';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Prometheus metrics of the API after real actions: gateway calls through the gate (decisions per
 * trust level, a Watched call leaving a pending approval, a connector error), an admin mutation
 * (audit write latency), a task relayed to BullMQ by the worker's own relay (queue depth and age),
 * and the token that protects /metrics.
 */
const TOKEN = 'metrics-token-0123456789abcdef0123456789';

/** The value of one sample in Prometheus text format (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(/,(?=[a-zA-Z_]+=")/).filter(Boolean);
    if (want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}

describe('Prometheus metrics (/metrics after real actions)', () => {
  let h: Harness;
  let org: SeededOrg;
  let base: string;
  let member: string;
  let redis: Redis;
  let queue: Queue;

  beforeAll(async () => {
    h = await startHarness({ env: { METRICS_TOKEN: TOKEN, GATEWAY_APPROVAL_WAIT_SECONDS: '0' } });
    await new Promise<void>((r) => h.app.getHttpServer().listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(h.app.getHttpServer().address() as AddressInfo).port}`;
    org = await seedOrg(h.ds, 'metrics');
    member = await login(h, org.users.member.email);
    redis = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
    queue = new Queue(QueueName.AgentTasks, { connection: redis, prefix: `${h.config.REDIS_PREFIX}:bull` });
  });
  afterAll(async () => {
    await queue?.close();
    redis?.disconnect();
    await h?.close();
  });

  const scrape = async () => {
    const res = await h.http.get('/metrics').set('Authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    return res.text;
  };

  it('refuses a scrape without the token, or with another one', async () => {
    const none = await h.http.get('/metrics');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="metrics"');
    expect(none.headers['content-type']).toMatch(/application\/problem\+json/);
    expect((await h.http.get('/metrics').set('Authorization', `Bearer ${TOKEN}x`)).status).toBe(401);
    expect(none.text).not.toContain('steward_');
  });

  it('counts decisions per level, connector errors, pending approvals, audit writes and queued tasks', async () => {
    const before = await scrape();
    const key = (await newApiKey(h, member, ['*'])).secret; // an audited mutation through the API
    const client = new McpClient({ name: 'metrics-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
    try {
      // Autonomous (file.read): runs. A read of a file that is not there: the connector fails.
      expect((await client.callTool({ name: 'workspace-files__files_list', arguments: {} })).isError).toBeFalsy();
      expect((await client.callTool({ name: 'workspace-files__files_read', arguments: { path: 'missing.txt' } })).isError).toBe(true);
      // Watched (file.delete): waits for a person (no wait here: the pending approval is answered at once).
      const watched = await client.callTool({ name: 'workspace-files__files_delete', arguments: { path: 'old.txt' } });
      expect(JSON.stringify(watched)).toMatch(/approv/i);
    } finally {
      await (client.transport as StreamableHTTPClientTransport).terminateSession().catch(() => undefined);
      await client.close();
    }
    // A task, relayed to the agent-tasks queue by the worker's relay (no worker consumes it here).
    expect((await h.http.post('/v1/tasks').set('Cookie', member).send({ prompt: 'Summarise the Q3 board deck' })).status).toBe(201);
    expect(await relayOutbox(h.ds, queue)).toBe(1);

    const after = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels);
    expect(moved('steward_gate_decisions_total', { level: 'autonomous', refusal: 'none', client: 'mcp' })).toBe(2);
    expect(moved('steward_gate_decisions_total', { level: 'watched', refusal: 'none', client: 'mcp' })).toBe(1);
    expect(moved('steward_connector_errors_total', { code: 'not_found' })).toBe(1);
    expect(moved('steward_audit_write_seconds_count', { source: 'gate' })).toBe(3);
    expect(moved('steward_audit_write_seconds_count', { source: 'api' })).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'steward_approvals_pending')).toBe(1);
    expect(sample(after, 'steward_approvals_oldest_pending_seconds')).toBeGreaterThanOrEqual(0);
    expect(after).toMatch(/^steward_approvals_oldest_pending_seconds \d/m);
    expect(moved('steward_queue_jobs', { queue: 'agent-tasks', state: 'waiting' })).toBe(1);
    expect(sample(after, 'steward_queue_jobs', { queue: 'maintenance', state: 'waiting' })).toBe(0);
    expect(after).toMatch(/^steward_queue_oldest_waiting_seconds\{queue="agent-tasks"\} \d/m);
    expect(after).toMatch(/^steward_audit_sealing_lag_seconds \d/m);
    // Nothing of the key or the arguments in the scrape.
    expect(after).not.toContain(key);
    expect(after).not.toContain('missing.txt');
  });

  it('reports how long the job at the head of the queue has waited', async () => {
    await queue.drain(); // the task relayed above
    expect(sample(await scrape(), 'steward_queue_oldest_waiting_seconds', { queue: 'agent-tasks' })).toBe(0);
    // A job enqueued 90 s ago by the clock it carries (BullMQ's own timestamp), nobody consuming.
    const job = await queue.add('run-task', { probe: true }, { jobId: 'metrics-age-probe', timestamp: Date.now() - 90_000 });
    try {
      expect(sample(await scrape(), 'steward_queue_oldest_waiting_seconds', { queue: 'agent-tasks' })).toBeGreaterThanOrEqual(90);
    } finally {
      await job.remove();
    }
  });
});
