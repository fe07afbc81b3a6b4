import { Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { createLogger, newId } from '@steward/common';
import { ConnectorHub, toolDefinitionHash } from '@steward/connectors';
import { createDataSource, type DataSource, inOrg } from '@steward/db';
import { serveMcp } from '../../../connectors/src/test-support/loopback';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-db';
import { AuditKeyring } from '@steward/audit';
import { ConfigKeyProvider } from '@steward/vault';
import { refuseServerRequests } from './agent-loop';
import { addTaskConnectors } from './task-connectors';

/**
 * A remote connector from the catalog (WordPress) as a task sees it: the tools an admin approved,
 * mapped as approved, and the catalog's reversible form (draft → undo, finishing step) only when
 * every tool it calls is approved on that connector too.
 */
describe('task connectors: a remote catalog connector', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let upstream: Awaited<ReturnType<typeof serveMcp>>;
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });
  const TOOLS = ['wp_create_draft', 'wp_delete_post', 'wp_publish_post'];

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    await ds.initialize();
    upstream = await serveMcp(() => {
      const server = new McpServer({ name: 'wordpress', version: '1.0.0' });
      for (const t of TOOLS) server.registerTool(t, { description: t, inputSchema: { site: z.string(), title: z.string().optional(), postId: z.number().optional() } }, async () => ({ content: [{ type: 'text', text: 'ok' }] }));
      return server;
    });
  });
  afterAll(async () => {
    await upstream?.close();
    await ds?.destroy();
    await db?.drop();
  });

  async function orgWith(approved: string[]): Promise<string> {
    const orgId = newId();
    const connectorId = newId();
    const probe = new Client({ name: 'probe', version: '1' });
    await probe.connect(new StreamableHTTPClientTransport(new URL(`${upstream.url}/mcp`)));
    const listed = (await probe.listTools()).tools;
    await probe.close();
    await inOrg(ds, { orgId }, async (em) => {
      await em.query(`INSERT INTO orgs (id, name, slug, domains) VALUES ($1, 'Acme', $2, '{acme.example}')`, [orgId, `acme-${orgId.slice(-8)}`]);
      await em.query(`INSERT INTO connectors (org_id, id, catalog_id, kind, name, url, auth, credential_scope, status) VALUES ($1, $2, 'wordpress', 'remote', 'WordPress', $3, '{"kind":"none"}', 'org', 'active')`, [orgId, connectorId, `${upstream.url}/mcp`]);
      for (const t of listed.filter((x) => approved.includes(x.name))) {
        const def = { name: t.name, description: t.description ?? '', inputSchema: t.inputSchema };
        await em.query(
          `INSERT INTO connector_tools (org_id, connector_id, name, definition, definition_hash, action, status, approved_hash, approved_definition, approved_at) VALUES ($1, $2, $3, $4, $5, 'saas.write', 'approved', $5, $4, now())`,
          [orgId, connectorId, t.name, JSON.stringify(def), toolDefinitionHash(def)],
        );
      }
    });
    return orgId;
  }

  async function manifestFor(orgId: string) {
    const hub = new ConnectorHub({ timeoutMs: 10_000 });
    try {
      const { manifests } = await addTaskConnectors(hub, { ds, dataDir: '/nonexistent', log: quiet, egress: async () => ({ allowHosts: ['127.0.0.1'] }) }, { orgId, userId: newId(), taskId: null }, ['WordPress']);
      return manifests.wordpress!;
    } finally {
      await hub.close();
    }
  }

  it("carries the catalog's draft and its undo when the undo tool is approved too", async () => {
    const m = await manifestFor(await orgWith(TOOLS));
    expect(m.tools.map((t) => t.name).sort()).toEqual(TOOLS);
    expect(m.tools.find((t) => t.name === 'wp_create_draft')).toMatchObject({ action: 'saas.write', reversible: { undo: { tool: 'wp_delete_post' } } });
    expect(m.tools.find((t) => t.name === 'wp_publish_post')?.reversible).toBeUndefined();
  });

  it('offers no reversible form whose undo was not approved (a Batched write then waits like Watched)', async () => {
    const m = await manifestFor(await orgWith(['wp_create_draft']));
    expect(m.tools.map((t) => t.name)).toEqual(['wp_create_draft']);
    expect(m.tools[0]!.reversible).toBeUndefined();
  });

  it("the web connector reads the org's allowlisted hosts at public addresses only: a listed host that resolves inside is refused", async () => {
    const orgId = newId();
    const site = await serveMcp(() => new McpServer({ name: 'not-a-page', version: '1' }));
    await inOrg(ds, { orgId }, async (em) => {
      await em.query(`INSERT INTO orgs (id, name, slug, domains) VALUES ($1, 'Acme', $2, '{acme.example}')`, [orgId, `acme-${orgId.slice(-8)}`]);
      await em.query(`INSERT INTO connectors (org_id, id, catalog_id, kind, name, auth, credential_scope, status) VALUES ($1, $2, 'web', 'builtin', 'Web', '{"kind":"none"}', 'org', 'active')`, [orgId, newId()]);
    });
    const hub = new ConnectorHub({ timeoutMs: 5000 });
    try {
      // The org's allowlist names the loopback host (as an admin lets connectors reach an internal server).
      const { manifests } = await addTaskConnectors(hub, { ds, dataDir: '/nonexistent', log: quiet, egress: async () => ({ allowHosts: ['127.0.0.1', 'docs.vendor.example'], resolver: async () => [{ address: '169.254.169.254', family: 4 }] }) }, { orgId, userId: newId(), taskId: null }, ['Web']);
      expect(Object.keys(manifests)).toEqual(['web']);
      const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);
      expect(await code(hub.callTool('web', 'web.fetch', { url: `${site.url}/mcp` }))).toBe('egress_refused');
      expect(await code(hub.callTool('web', 'web.fetch', { url: 'http://docs.vendor.example/latest/meta-data/' }))).toBe('egress_refused');
      // Off the list altogether: refused before any lookup.
      expect(await code(hub.callTool('web', 'web.fetch', { url: 'https://elsewhere.example/' }))).toBe('bad_arguments');
    } finally {
      await hub.close();
      await site.close();
    }
  });

  it("with no MCP client behind the calls (a reviewer's undo or finishing step), an upstream's sampling is refused and audited as that caller", async () => {
    const orgId = await orgWith([]);
    const [userId, taskId, connectorId] = [newId(), newId(), newId()];
    const keyring = new AuditKeyring(new ConfigKeyProvider(`v1:${Buffer.alloc(32, 5).toString('base64')}`));
    const hub = new ConnectorHub({ timeoutMs: 5000, maxResultBytes: 1 << 20 });
    try {
      const server = new McpServer({ name: 'asker', version: '1.0.0' });
      server.registerTool('ask', { description: 'Asks the client to write something.' }, async () => {
        try {
          await server.server.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Write the payroll of Jane Doe' } }], maxTokens: 10 });
          return { content: [{ type: 'text' as const, text: 'answered' }] };
        } catch (err) {
          return { content: [{ type: 'text' as const, text: `refused: ${(err as Error).message}` }] };
        }
      });
      await hub.addBuiltin('asker', server, { offer: { sampling: {} } });
      refuseServerRequests(hub, { asker: { id: connectorId, name: 'Asker' } }, { ds, keyring, orgId, taskId, actor: { type: 'user', id: userId }, client: 'rest', where: 'during a review' });
      const r = await hub.callTool('asker', 'ask', {});
      expect(r.text).toMatch(/^refused: .*does not relay sampling\/createMessage from connector "Asker" during a review/);
      const rows: { canonical: string }[] = await inOrg(ds, { orgId }, (em) => em.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND action = 'mcp.sampling'`, [orgId]));
      expect(rows).toHaveLength(1);
      expect(JSON.parse(rows[0]!.canonical)).toMatchObject({ actor: { type: 'user', id: userId }, client: 'rest', task: taskId, outcome: 'denied', payload: { outcome: 'refused', reason: 'no_client', connector: 'Asker', request: { method: 'sampling/createMessage' } } });
      expect(rows[0]!.canonical).not.toContain('Jane Doe');
    } finally {
      await hub.close();
    }
  });
});
