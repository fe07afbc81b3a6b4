import { join } from 'node:path';
import { type EgressOptions, type Logger } from '@steward/common';
import {
  calendarManifest,
  catalogEntry,
  type ConnectorHub,
  type ClientOffer,
  type ConnectorManifest,
  createCalendarServer,
  createDriveServer,
  createGmailServer,
  createSlackServer,
  createWebServer,
  createWorkspaceFilesServer,
  driveManifest,
  gmailManifest,
  slackManifest,
  type ToolSpec,
  webManifest,
  workspaceFilesManifest,
} from '@steward/connectors';
import { type DataSource, inOrg } from '@steward/db';
import { ACTION_TYPES, type ActionTypeSpec, isActionType } from '@steward/policy';
import type { CredentialBroker, CredentialTarget } from '@steward/gate';

/**
 * The connectors of one task run, in its hub: the workspace folder (always available), and the
 * org's installed connectors the task asked for by name — built-in ones in process, remote MCP
 * servers over Streamable HTTP with their approved tool definitions pinned. Every credential is
 * fetched from the broker at the moment of the call, for that action alone (decrypt audited);
 * a remote server's session set-up asks for it under the task's own scope.
 */
export interface TaskConnectorDeps {
  ds: DataSource;
  dataDir: string;
  broker?: CredentialBroker;
  /** Base URLs of the built-in connectors' APIs (STEWARD_CONNECTOR_BASE_URLS). */
  baseUrls?: Record<string, string>;
  /** The org's egress rules (operator allowlist plus the hosts its admins allowed). */
  egress?: (orgId: string) => Promise<EgressOptions>;
  log: Logger;
}

interface ConnectorRow {
  id: string;
  catalog_id: string | null;
  kind: 'builtin' | 'remote';
  name: string;
  url: string | null;
  auth: CredentialTarget['auth'];
  credential_scope: 'org' | 'user';
  relay_sampling: boolean;
  relay_elicitation: boolean;
}

/** Built-ins the worker runs (DocuSign and Salesforce need per-org account settings Steward does not store yet). */
const BUILTINS: Record<string, { manifest: ConnectorManifest; create: (o: { baseUrl?: string; getCredential: () => Promise<{ accessToken: string } | { apiKey: string }>; orgDomains: string[]; egress: EgressOptions }) => ReturnType<typeof createGmailServer> }> = {
  gmail: { manifest: gmailManifest, create: (o) => createGmailServer(o) },
  'google-drive': { manifest: driveManifest, create: (o) => createDriveServer(o) },
  'google-calendar': { manifest: calendarManifest, create: (o) => createCalendarServer(o) },
  slack: { manifest: slackManifest, create: (o) => createSlackServer(o) },
  // The hosts an agent may read are the org's allowlist, but reading them only at public addresses: a
  // listed name whose DNS points inside (169.254.169.254, the intranet) would turn a prompt into a
  // read of internal services. (The allowlist's other meaning, reaching private addresses, serves
  // connectors and notifications an admin set up, never URLs a model chose.)
  web: { manifest: webManifest, create: (o) => createWebServer({ allowHosts: [...(o.egress.allowHosts ?? []), ...(o.egress.orgAllowHosts ?? [])], egress: o.egress.resolver ? { resolver: o.egress.resolver } : {} }) },
};

/** A connector's id in the hub and in tool names (`<id>__<tool>`: letters, digits, "_" and "-"). */
export const hubIdOf = (name: string) => name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'connector';

/** Catalog ids of the built-in connectors agent tasks can use (any remote MCP server can be used too). */
export const TASK_BUILTIN_CONNECTORS: readonly string[] = Object.keys(BUILTINS);

export interface TaskConnectors {
  /** Hub id → manifest (how its tools map to action types). */
  manifests: Record<string, ConnectorManifest>;
  /** Hub id → what the credential broker needs (connectors that take a credential). */
  targets: Record<string, CredentialTarget>;
  /**
   * Hub id → the installed connector (row id, name; the workspace folder is not one), whether its
   * upstream may ask the MCP client's user for input (elicitation offered), and whether it may send
   * the client any request at all (sampling or elicitation offered).
   */
  connectors: Record<string, { id: string; name: string; elicits: boolean; asks: boolean }>;
}

/** The catalog's reversible form of a remote tool, when every tool it calls is approved on this connector. */
function reversibleOf(base: ConnectorManifest | undefined, name: string, approved: { name: string }[]): { reversible?: NonNullable<ToolSpec['reversible']> } {
  const r = base?.tools.find((x) => x.name === name)?.reversible;
  if (!r) return {};
  const needed = [r.tool, r.undo.tool, r.finalize?.tool].filter((x): x is string => !!x);
  return needed.every((n) => approved.some((a) => a.name === n)) ? { reversible: r } : {};
}

export async function addTaskConnectors(
  hub: ConnectorHub,
  deps: TaskConnectorDeps,
  task: {
    orgId: string;
    userId: string;
    taskId: string | null;
    client?: 'worker' | 'mcp';
    /**
     * The MCP gateway: what its client declared (sampling, elicitation); each connector's upstream
     * client offers the part the org allows for that connector. A worker task offers nothing.
     */
    clientOffer?: ClientOffer;
  },
  names: string[],
): Promise<TaskConnectors> {
  const manifests: Record<string, ConnectorManifest> = {};
  const targets: Record<string, CredentialTarget> = {};
  const connectors: Record<string, { id: string; name: string; elicits: boolean; asks: boolean }> = {};
  const wanted = names.filter((n) => n !== 'workspace-files');
  if (names.includes('workspace-files')) {
    await hub.addBuiltin('workspace-files', createWorkspaceFilesServer({ folder: join(deps.dataDir, 'workspaces', task.orgId, task.userId) }));
    manifests['workspace-files'] = workspaceFilesManifest;
  }
  if (!wanted.length) return { manifests, targets, connectors };
  const { rows, tools, domains } = await inOrg(deps.ds, { orgId: task.orgId }, async (em) => ({
    rows: (await em.query('SELECT id, catalog_id, kind, name, url, auth, credential_scope, relay_sampling, relay_elicitation FROM connectors WHERE org_id = $1 AND name = ANY($2)', [task.orgId, wanted])) as ConnectorRow[],
    tools: (await em.query(
      `SELECT connector_id, name, action, extract, approved_hash, approved_definition FROM connector_tools
        WHERE org_id = $1 AND status = 'approved' AND connector_id IN (SELECT id FROM connectors WHERE org_id = $1 AND name = ANY($2))`,
      [task.orgId, wanted],
    )) as { connector_id: string; name: string; action: string; extract: ToolSpec['extract'] | null; approved_hash: string; approved_definition: { description?: string; inputSchema?: ToolSpec['inputSchema']; annotations?: { readOnlyHint?: boolean } } }[],
    domains: ((await em.query('SELECT domains FROM orgs WHERE id = $1', [task.orgId]))[0]?.domains ?? []) as string[],
  }));
  const egress = (await deps.egress?.(task.orgId)) ?? {};
  for (const row of rows) {
    const id = hubIdOf(row.name);
    if (manifests[id]) continue;
    const target: CredentialTarget = { id: row.id, name: row.name, credentialScope: row.credential_scope, auth: row.auth };
    const offer: ClientOffer = {
      ...(row.relay_sampling && task.clientOffer?.sampling ? { sampling: task.clientOffer.sampling } : {}),
      ...(row.relay_elicitation && task.clientOffer?.elicitation ? { elicitation: task.clientOffer.elicitation } : {}),
    };
    if (row.auth.kind !== 'none') targets[id] = target;
    const credential = async () => {
      if (!deps.broker) throw new Error('no credential broker in this worker');
      return deps.broker.forCall(target, { orgId: task.orgId, userId: task.userId, actionId: null, taskId: task.taskId, client: task.client ?? 'worker' });
    };
    try {
      if (row.kind === 'builtin') {
        const builtin = row.catalog_id ? BUILTINS[row.catalog_id] : undefined;
        if (!builtin) {
          deps.log.warn({ connector: row.name, catalogId: row.catalog_id }, 'this built-in connector does not run in agent tasks yet; its tools are not offered');
          continue;
        }
        await hub.addBuiltin(id, builtin.create({ baseUrl: deps.baseUrls?.[row.catalog_id!], getCredential: credential, orgDomains: domains, egress }), { offer });
        manifests[id] = { ...builtin.manifest, id };
      } else {
        const mine = tools.filter((t) => t.connector_id === row.id);
        await hub.addRemote(id, {
          url: row.url!,
          egress,
          pins: Object.fromEntries(mine.map((t) => [t.name, t.approved_hash])),
          offer,
          headers: async () => {
            if (row.auth.kind === 'none') return {};
            const c = await credential();
            if (row.auth.kind === 'api_key') {
              const secret = 'apiKey' in c ? c.apiKey : c.accessToken;
              return { [row.auth.header]: row.auth.scheme ? `${row.auth.scheme} ${secret}` : secret };
            }
            return { authorization: `Bearer ${'accessToken' in c ? c.accessToken : c.apiKey}` };
          },
        });
        const base = row.catalog_id ? catalogEntry(row.catalog_id) : undefined;
        manifests[id] = {
          ...(base ?? { id, name: row.name, vendor: 'remote', auth: { kind: 'none' }, credentialScope: row.credential_scope, runtime: { kind: 'remote', url: row.url! } }),
          id,
          tools: mine.map((t) => ({
            name: t.name,
            description: t.approved_definition?.description ?? '',
            inputSchema: t.approved_definition?.inputSchema ?? { type: 'object' },
            action: t.action as ToolSpec['action'],
            ...(t.extract ? { extract: t.extract } : {}),
            // A catalog connector's reversible form (draft, undo, finishing step) for a tool of that name whose
            // steps were approved too; otherwise a Batched write of it waits like Watched.
            ...reversibleOf(base, t.name, mine),
            // A read is what the admin's mapping says (an action type that sends nothing out), not the
            // server's own readOnlyHint: the hint is not covered by the pinned hash.
            ...(isActionType(t.action) && (ACTION_TYPES[t.action] as ActionTypeSpec).outbound === false ? { readOnly: true } : {}),
          })),
        } as ConnectorManifest;
      }
      connectors[id] = { id: row.id, name: row.name, elicits: offer.elicitation !== undefined, asks: offer.elicitation !== undefined || offer.sampling !== undefined };
    } catch (err) {
      // An unreachable upstream or a refused credential leaves its tools out of this run, not the task.
      deps.log.warn({ connector: row.name, err: (err as Error).message }, 'connector not available to this task');
    }
  }
  return { manifests, targets, connectors };
}
