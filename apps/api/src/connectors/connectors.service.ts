import { isIP } from 'node:net';
import { Inject, Injectable } from '@nestjs/common';
import { AppError, assertEgressAllowed, classifyAddress, type Config, EgressRefusedError, ErrorCode, inEgressRanges, isEgressAllowlisted, newId } from '@steward/common';
import {

  CATALOG,
  catalogEntry,
  ConnectorError,
  type ConnectorManifest,
  definitionDiff,
  scanToolDefinition,
  type ToolDefinition,
  toolDefinitionHash,
} from '@steward/connectors';
import { type EntityManager, orgAllowHosts } from '@steward/db';
import { hubIdOf, resumeWaitingTask } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import type { ApproveToolBody, AuthInput, ConnectorView, EgressHosts, HoldToolBody, InstallConnectorBody, MapToolBody, ToolView, UpdateConnectorBody } from './connectors.schemas';
import { ConnectorChanges } from './connector-changes';
import { type AuthConfig, type ConnectorRow, CredentialsService } from './credentials.service';
import { listRemoteTools, upstreamProblem } from './upstream';

interface ToolRow {
  name: string;
  definition: ToolDefinition;
  definition_hash: string;
  action: string;
  extract: Record<string, unknown> | null;
  status: 'pending' | 'approved' | 'held' | 'removed';
  approved_hash: string | null;
  approved_definition: ToolDefinition | null;
  approved_by: string | null;
  approved_at: Date | null;
  flags: { where: string; reason: string; excerpt: string }[];
  updated_at: Date;
}

const MAX_CONNECTORS = 200;
const MAX_TOOLS = 1000;
const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
const clip = (s: string | null | undefined, n: number) => (s && s.length > n ? `${s.slice(0, n)}…` : (s ?? ''));

/** Whether a JSON pointer ("/message/to", "/people/*\/email") names a place an input schema describes (through properties and items). */
function describes(schema: unknown, path: string): boolean {
  let at = schema as { properties?: Record<string, unknown>; items?: unknown } | undefined;
  for (const raw of path.split('/').slice(1)) {
    if (!at || typeof at !== 'object') return false;
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const next = seg === '*' || /^\d+$/.test(seg) ? (at.items ?? (at.properties && Object.hasOwn(at.properties, seg) ? at.properties[seg] : undefined)) : at.properties && Object.hasOwn(at.properties, seg) ? at.properties[seg] : undefined;
    at = next as typeof at;
  }
  return at !== undefined;
}

/**
 * Whether a JSON pointer names a place an input schema rules out: on the way, an object that lists
 * its properties, allows no others (`additionalProperties: false`) and does not name this one. A
 * schema that composes (`$ref`, `anyOf` …) or allows other properties is not judged (false).
 */
function refuses(schema: unknown, path: string): boolean {
  let at = schema as Record<string, unknown> | undefined;
  for (const raw of path.split('/').slice(1)) {
    if (!at || typeof at !== 'object' || ['$ref', 'anyOf', 'oneOf', 'allOf', 'patternProperties', 'if'].some((k) => k in at!)) return false;
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const props = at.properties as Record<string, unknown> | undefined;
    if (props && Object.hasOwn(props, seg)) at = props[seg] as Record<string, unknown>;
    else if (seg === '*' || /^\d+$/.test(seg)) at = at.items as Record<string, unknown> | undefined;
    else return !!props && at.additionalProperties === false;
  }
  return false;
}

/** The paths of a mapping's selectors the definition rules out (its arguments can never hold them: the policy would see nothing there). */
function fieldsRefused(extract: Record<string, unknown> | null, schema: unknown): string[] {
  if (!extract) return [];
  const out = new Set<string>();
  for (const list of Object.values(extract)) {
    for (const s of Array.isArray(list) ? list : []) {
      const path = typeof s === 'string' ? s : typeof s === 'object' && s && typeof (s as { path?: unknown }).path === 'string' ? (s as { path: string }).path : null;
      if (path && refuses(schema, path)) out.add(path);
    }
  }
  return [...out].sort();
}

/**
 * The paths a mapping's selectors read that the approved definition described and the new one no
 * longer does (renamed at any depth, or moved behind a $ref or anyOf the mapping cannot follow).
 */
function fieldsGone(extract: Record<string, unknown> | null, approved: unknown, now: unknown): string[] {
  if (!extract) return [];
  const gone = new Set<string>();
  for (const list of Object.values(extract)) {
    for (const s of Array.isArray(list) ? list : []) {
      const path = typeof s === 'string' ? s : typeof s === 'object' && s && typeof (s as { path?: unknown }).path === 'string' ? (s as { path: string }).path : null;
      if (path && describes(approved, path) && !describes(now, path)) gone.add(path);
    }
  }
  return [...gone].sort();
}

function toolView(t: ToolRow): z.infer<typeof ToolView> {
  const changed = t.approved_definition && t.approved_hash !== t.definition_hash;
  return {
    name: t.name,
    title: t.definition.title ? clip(t.definition.title, 200) : null,
    description: clip(t.definition.description, 20_000),
    inputSchema: t.definition.inputSchema ?? {},
    hash: t.definition_hash,
    action: t.action,
    extract: t.extract,
    status: t.status,
    approvedHash: t.approved_hash,
    approvedAt: iso(t.approved_at),
    approvedBy: t.approved_by,
    diff: changed ? definitionDiff(t.approved_definition!, t.definition).slice(0, 500) : [],
    flags: t.flags.slice(0, 100),
    updatedAt: iso(t.updated_at)!,
  };
}

function authView(a: AuthConfig, hasClientSecret: boolean): z.infer<typeof ConnectorView>['auth'] {
  if (a.kind === 'oauth2') return { kind: 'oauth2', authorizationUrl: a.authorizationUrl, tokenUrl: a.tokenUrl, revocationUrl: a.revocationUrl ?? null, clientId: a.clientId, scopes: a.scopes, hasClientSecret };
  if (a.kind === 'api_key') return { kind: 'api_key', header: a.header, scheme: a.scheme };
  return { kind: 'none' };
}

/** Installed connectors, discovery of remote tools, their mapping, pinning and review; the org's egress allowlist. */
@Injectable()
export class ConnectorsService {
  private readonly keys: ConfigKeyProvider;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    private readonly credentials: CredentialsService,
    private readonly changes: ConnectorChanges,
  ) {
    this.keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  }

  catalog() {
    return {
      items: CATALOG.map((m) => ({
        id: m.id,
        name: m.name,
        vendor: m.vendor,
        description: m.description ?? null,
        runtime: m.runtime.kind,
        url: m.runtime.kind === 'remote' ? (m.runtime.url ?? null) : null,
        auth: m.auth.kind,
        credentialScope: m.credentialScope,
        tools: m.tools.map((t) => ({ name: t.name, description: t.description, action: t.action })),
      })),
    };
  }

  private async view(em: EntityManager, orgId: string, c: ConnectorRow): Promise<z.infer<typeof ConnectorView>> {
    const [counts] = await em.query(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'approved')::int AS approved, count(*) FILTER (WHERE status = 'held')::int AS held, count(*) FILTER (WHERE status = 'pending')::int AS pending
       FROM connector_tools WHERE org_id = $1 AND connector_id = $2 AND status <> 'removed'`,
      [orgId, c.id],
    );
    const [secret] = c.auth.kind === 'oauth2' ? await em.query(`SELECT 1 FROM credentials WHERE org_id = $1 AND connector_id = $2 AND kind = 'oauth_client' AND status = 'active'`, [orgId, c.id]) : [];
    return {
      id: c.id,
      catalogId: c.catalog_id,
      kind: c.kind,
      name: c.name,
      url: c.url,
      auth: authView(c.auth, Boolean(secret)),
      credentialScope: c.credential_scope,
      status: c.status,
      lastError: c.last_error ? clip(c.last_error, 1000) : null,
      discoveredAt: iso(c.discovered_at),
      tools: counts,
      relaySampling: c.relay_sampling,
      relayElicitation: c.relay_elicitation,
      createdAt: iso(c.created_at)!,
      updatedAt: iso(c.updated_at)!,
    };
  }

  private async load(em: EntityManager, p: Principal, id: string): Promise<ConnectorRow> {
    const c = await this.credentials.connector(em, p.orgId, id);
    if (!c) throw AppError.notFound('connector');
    return c;
  }

  async list(p: Principal) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      const rows: ConnectorRow[] = await em.query('SELECT * FROM connectors WHERE org_id = $1 ORDER BY created_at LIMIT 200', [p.orgId]);
      const items = [];
      for (const r of rows) items.push(await this.view(em, p.orgId, r));
      return { items };
    });
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => this.view(em, p.orgId, await this.load(em, p, id)));
  }

  /** Refuses URLs that resolve to loopback, private, link-local or metadata addresses unless allowlisted. */
  /**
   * An admin's settings of a connector: whether the MCP gateway relays the upstream's sampling
   * and elicitation requests to the client. Audited as a config change (before and after).
   */
  /** Update: the MCP gateway's open sessions built on the connector learn of it at once (ConnectorChanges). */
  update(p: Principal, id: string, body: z.infer<typeof UpdateConnectorBody>) {
    return this.changes.after(p.orgId, () => this.doUpdate(p, id, body));
  }

  private async doUpdate(p: Principal, id: string, body: z.infer<typeof UpdateConnectorBody>) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      const c = await this.load(em, p, id);
      await this.access.authorize(p, 'update', 'Connector', { id });
      const [locked]: ConnectorRow[] = await em.query('SELECT * FROM connectors WHERE org_id = $1 AND id = $2 FOR UPDATE', [p.orgId, c.id]);
      const after = { relaySampling: body.relaySampling ?? locked.relay_sampling, relayElicitation: body.relayElicitation ?? locked.relay_elicitation };
      const before = { relaySampling: locked.relay_sampling, relayElicitation: locked.relay_elicitation };
      await em.query('UPDATE connectors SET relay_sampling = $3, relay_elicitation = $4, updated_at = now() WHERE org_id = $1 AND id = $2', [p.orgId, c.id, after.relaySampling, after.relayElicitation]);
      await this.audit.record(em, p, { action: 'connector.update', targetType: 'Connector', targetId: c.id, payload: { name: c.name, before, after } });
      return this.view(em, p.orgId, (await this.load(em, p, c.id)));
    });
  }

  private async checkUrl(em: EntityManager, orgId: string, url: string): Promise<void> {
    try {
      await assertEgressAllowed(url, await this.credentials.egressFor(em, orgId));
    } catch (err) {
      if (err instanceof EgressRefusedError) throw new AppError(400, ErrorCode.EgressRefused, 'Upstream address refused', clip(err.message, 500));
      throw err;
    }
  }

  async install(p: Principal, body: z.infer<typeof InstallConnectorBody>) {
    await this.access.authorize(p, 'create', 'Connector');
    let manifest: ConnectorManifest | undefined;
    if (body.catalogId !== undefined) {
      manifest = catalogEntry(body.catalogId);
      if (!manifest) throw AppError.validation([{ path: 'catalogId', message: 'no such catalog entry (GET /v1/catalog/connectors)' }]);
    }
    const kind = manifest?.runtime.kind ?? 'remote';
    const url = kind === 'remote' ? (body.url ?? (manifest?.runtime.kind === 'remote' ? manifest.runtime.url : undefined)) : undefined;
    if (kind === 'remote' && !url) throw AppError.validation([{ path: 'url', message: 'the remote MCP server URL is required' }]);
    if (kind === 'builtin' && body.url !== undefined) throw AppError.validation([{ path: 'url', message: 'built-in connectors take no URL' }]);
    const auth = this.authOf(body.auth, manifest);
    const clientSecret = body.auth?.kind === 'oauth2' ? body.auth.clientSecret : undefined;
    const name = body.name ?? manifest!.name;
    const scope = body.credentialScope ?? manifest?.credentialScope ?? 'org';
    const id = newId();
    const created = await this.db.inOrg(p, async (em) => {
      const [{ n }] = await em.query('SELECT count(*)::int AS n FROM connectors WHERE org_id = $1', [p.orgId]);
      if (n >= MAX_CONNECTORS) throw AppError.conflict(`An org may have at most ${MAX_CONNECTORS} connectors.`);
      const [dup] = await em.query('SELECT 1 FROM connectors WHERE org_id = $1 AND name = $2', [p.orgId, name]);
      if (dup) throw AppError.conflict(`A connector named "${clip(name, 100)}" is already installed.`);
      // Tools, decisions and approvals name a connector by its id in tool names ("acme-crm" for "Acme CRM"):
      // two names that come to the same id would be one connector to them.
      const hubId = hubIdOf(name);
      const others: { name: string }[] = await em.query('SELECT name FROM connectors WHERE org_id = $1', [p.orgId]);
      const clash = others.find((o) => hubIdOf(o.name) === hubId)?.name ?? (hubId === 'workspace-files' ? 'Workspace files (built in)' : undefined);
      if (clash) throw AppError.conflict(`"${clip(name, 100)}" would be named "${hubId}" in tool names, as "${clip(clash, 100)}" is: choose another name.`);
      // "__" parts a connector's id from its tools' and prompts' names: an id holding it ("acme__crm") would read as
      // another connector's ("acme") tool or prompt "crm__…", and a call or a prompt's arguments could go to the wrong one.
      if (hubId.includes('__')) throw AppError.validation([{ path: 'name', message: `would be named "${hubId}" in tool names: "__" separates a connector from its tools, so a name may not make one` }]);
      // A credential (an API key, a member's OAuth token) goes with every request: over plain http
      // anyone on the way reads it. Only a host an operator or admin allowlisted (their own network) may be http.
      if (url && auth.kind !== 'none' && new URL(url).protocol === 'http:' && !isEgressAllowlisted(new URL(url).hostname, await this.credentials.egressFor(em, p.orgId))) {
        throw AppError.validation([{ path: 'url', message: 'a connector that sends a credential must use https (http would send it in clear); http is only for a host on the egress allowlist' }]);
      }
      if (url) await this.checkUrl(em, p.orgId, url);
      await em.query(
        `INSERT INTO connectors (org_id, id, catalog_id, kind, name, url, auth, credential_scope, status, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [p.orgId, id, manifest?.id ?? null, kind, name, url ?? null, JSON.stringify(auth), scope, auth.kind === 'none' ? 'active' : 'needs_credential', p.userId],
      );
      if (clientSecret) {
        // A credential write: the org's step-up applies.
        await this.access.requireStepUp(em, p);
        await this.credentials.storeClientSecret(em, p, id, clientSecret);
      }
      if (kind === 'builtin') {
        // Built-in tools ship with Steward: mapped by their manifest and approved as they are.
        for (const t of manifest!.tools) {
          const def: ToolDefinition = { name: t.name, title: t.title, description: t.description, inputSchema: t.inputSchema };
          const hash = toolDefinitionHash(def);
          await em.query(
            `INSERT INTO connector_tools (org_id, connector_id, name, definition, definition_hash, action, extract, status, approved_hash, approved_definition, approved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'approved', $5, $4, now())`,
            [p.orgId, id, t.name, JSON.stringify(def), hash, t.action, t.extract ? JSON.stringify(t.extract) : null],
          );
        }
      }
      await this.audit.record(em, p, { action: 'connector.install', targetType: 'Connector', targetId: id, payload: { name, kind, url: url ?? null, catalogId: manifest?.id ?? null, auth: auth.kind, credentialScope: scope } });
      return (await this.credentials.connector(em, p.orgId, id))!;
    });
    if (kind === 'remote') {
      // Discovery right away when it can work; a failure is kept on the connector, not fatal here.
      await this.discoverRow(p, created).catch((err: unknown) => {
        if (!(err instanceof AppError)) throw err;
      });
    }
    return this.get(p, id);
  }

  private authOf(input: z.infer<typeof AuthInput> | undefined, manifest: ConnectorManifest | undefined): AuthConfig {
    if (input?.kind === 'oauth2') {
      const revocationUrl = input.revocationUrl ?? (manifest?.auth.kind === 'oauth2' ? manifest.auth.revocationUrl : undefined);
      return { kind: 'oauth2', authorizationUrl: input.authorizationUrl, tokenUrl: input.tokenUrl, clientId: input.clientId, scopes: input.scopes ?? [], ...(revocationUrl ? { revocationUrl } : {}) };
    }
    if (input?.kind === 'api_key') return { kind: 'api_key', header: (input.header ?? 'authorization').toLowerCase(), scheme: input.scheme ?? (input.header ? '' : 'Bearer') };
    if (input?.kind === 'none') return { kind: 'none' };
    const m = manifest?.auth;
    if (!m || m.kind === 'none') return { kind: 'none' };
    if (m.kind === 'api_key') return { kind: 'api_key', header: (m.header ?? 'authorization').toLowerCase(), scheme: m.scheme ?? (m.header ? '' : 'Bearer') };
    if (!m.authorizationUrl || !m.tokenUrl) throw AppError.validation([{ path: 'auth', message: 'this connector uses OAuth: give auth {kind: "oauth2", authorizationUrl, tokenUrl, clientId}' }]);
    throw AppError.validation([{ path: 'auth', message: 'this connector uses OAuth: give auth {kind: "oauth2", ...} with your OAuth client id' }]);
  }

  /** Remove: the MCP gateway's open sessions built on the connector learn of it at once (ConnectorChanges). */
  remove(p: Principal, id: string) {
    return this.changes.after(p.orgId, () => this.doRemove(p, id));
  }

  private async doRemove(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Connector');
    await this.db.inOrg(p, async (em) => {
      const c = await this.load(em, p, id);
      await this.access.authorize(p, 'delete', 'Connector', { id });
      const [{ n }] = await em.query(`SELECT count(*)::int AS n FROM credentials WHERE org_id = $1 AND connector_id = $2 AND status <> 'revoked'`, [p.orgId, id]);
      // Deleting the connector deletes its credentials (sealed material included).
      await em.query('DELETE FROM connectors WHERE org_id = $1 AND id = $2', [p.orgId, id]);
      // Its approvals go with it: a person approved a call to this server, and a connector installed
      // later under the same name is another. Waiting tasks are resumed and told the action was refused.
      const voided: { id: string; task_id: string | null; action_id: string; action_type: string }[] = await em.query(
        `WITH u AS (UPDATE approvals SET state = 'void', decided_at = now() WHERE org_id = $1 AND connector = $2 AND kind = 'action' AND state IN ('pending', 'approved')
           RETURNING id, task_id, action_id, action_type) SELECT * FROM u`,
        [p.orgId, hubIdOf(c.name)],
      );
      // Their actions are refused as well (not left waiting: a waiting task would count them as decided and go round again).
      if (voided.length) {
        await em.query(`UPDATE task_actions SET state = 'refused', refusal = 'approval_mismatch', finished_at = now() WHERE org_id = $1 AND id = ANY($2::uuid[]) AND state = 'awaiting_approval'`, [
          p.orgId,
          voided.map((a) => a.action_id),
        ]);
      }
      for (const a of voided) {
        await this.audit.record(em, p, { action: 'approval.void', targetType: 'Approval', targetId: a.id, payload: { actionId: a.action_id, actionType: a.action_type, why: 'the connector was uninstalled' } });
        if (a.task_id) await resumeWaitingTask(em, this.keys, p.orgId, a.task_id, 'connector_removed');
      }
      await this.audit.record(em, p, { action: 'connector.delete', targetType: 'Connector', targetId: id, payload: { name: c.name, url: c.url, credentialsDestroyed: n, approvalsVoided: voided.length } });
    });
  }

  /** Discover: the MCP gateway's open sessions built on the connector learn of it at once (ConnectorChanges). */
  discover(p: Principal, id: string) {
    return this.changes.after(p.orgId, () => this.doDiscover(p, id));
  }

  private async doDiscover(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Connector');
    const c = await this.db.inOrg(p, async (em) => {
      const row = await this.load(em, p, id);
      await this.access.authorize(p, 'update', 'Connector', { id });
      return row;
    });
    if (c.kind !== 'remote') throw AppError.conflict('Built-in connectors ship their tools with Steward; only remote MCP servers are discovered.');
    return this.discoverRow(p, c);
  }

  /** Lists the upstream's tools and reconciles them with what was approved (new → pending, changed → held). */
  private async discoverRow(p: Principal, c: ConnectorRow) {
    let tools: ToolDefinition[];
    try {
      const headers = await this.credentials.headersFor(p, c, 'discover');
      const egress = await this.db.inOrg(p, (em) => this.credentials.egressFor(em, p.orgId));
      tools = await listRemoteTools(c.id, c.url!, headers, egress);
      if (tools.length > MAX_TOOLS) throw new ConnectorError('result_too_large', `${c.name}: the server offers ${tools.length} tools, more than ${MAX_TOOLS}`);
    } catch (err) {
      const problem = upstreamProblem(err);
      const status = problem.code === ErrorCode.ReauthorizationRequired ? 'needs_credential' : 'unreachable';
      await this.db.inOrg(p, (em) => em.query(`UPDATE connectors SET status = $3, last_error = $4, updated_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, c.id, status, clip(problem.detail ?? problem.title, 1000)]));
      throw problem;
    }
    const proposed = c.catalog_id ? catalogEntry(c.catalog_id) : undefined;
    return this.db.inOrg(p, async (em) => {
      const existing: ToolRow[] = await em.query('SELECT * FROM connector_tools WHERE org_id = $1 AND connector_id = $2 FOR UPDATE', [p.orgId, c.id]);
      const byName = new Map(existing.map((t) => [t.name, t]));
      const out = { added: [] as string[], changed: [] as string[], removed: [] as string[], unchanged: [] as string[] };
      const seen = new Set<string>();
      for (const raw of tools) {
        if (seen.has(raw.name)) continue;
        seen.add(raw.name);
        const def: ToolDefinition = { name: raw.name, ...(raw.title ? { title: raw.title } : {}), description: raw.description ?? '', inputSchema: raw.inputSchema ?? {} };
        const hash = toolDefinitionHash(def);
        const flags = scanToolDefinition(def);
        const prev = byName.get(def.name);
        if (!prev) {
          const spec = proposed?.tools.find((t) => t.name === def.name);
          await em.query(
            `INSERT INTO connector_tools (org_id, connector_id, name, definition, definition_hash, action, extract, status, flags) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)`,
            [p.orgId, c.id, def.name, JSON.stringify(def), hash, spec?.action ?? 'unknown', spec?.extract ? JSON.stringify(spec.extract) : null, JSON.stringify(flags)],
          );
          out.added.push(def.name);
          continue;
        }
        let status = prev.status;
        if (prev.approved_hash) status = prev.approved_hash === hash ? 'approved' : 'held';
        else if (status === 'removed') status = 'pending';
        if (prev.definition_hash === hash && prev.status === status) {
          out.unchanged.push(def.name);
          continue;
        }
        await em.query(`UPDATE connector_tools SET definition = $4, definition_hash = $5, status = $6, flags = $7, updated_at = now() WHERE org_id = $1 AND connector_id = $2 AND name = $3`, [
          p.orgId,
          c.id,
          def.name,
          JSON.stringify(def),
          hash,
          status,
          JSON.stringify(flags),
        ]);
        if (prev.definition_hash !== hash) out.changed.push(def.name);
        else out.unchanged.push(def.name);
      }
      for (const t of existing) {
        if (!seen.has(t.name) && t.status !== 'removed') {
          await em.query(`UPDATE connector_tools SET status = 'removed', updated_at = now() WHERE org_id = $1 AND connector_id = $2 AND name = $3`, [p.orgId, c.id, t.name]);
          out.removed.push(t.name);
        }
      }
      await em.query(`UPDATE connectors SET status = 'active', last_error = NULL, discovered_at = now(), updated_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, c.id]);
      await this.audit.record(em, p, { action: 'connector.discover', targetType: 'Connector', targetId: c.id, payload: { added: out.added.slice(0, 200), changed: out.changed.slice(0, 200), removed: out.removed.slice(0, 200), total: seen.size } });
      return { connector: await this.view(em, p.orgId, (await this.credentials.connector(em, p.orgId, c.id))!), ...out };
    });
  }

  async tools(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      await this.load(em, p, id);
      const rows: ToolRow[] = await em.query('SELECT * FROM connector_tools WHERE org_id = $1 AND connector_id = $2 ORDER BY name LIMIT 1000', [p.orgId, id]);
      return { items: rows.map(toolView) };
    });
  }

  private async tool(em: EntityManager, p: Principal, id: string, name: string): Promise<{ c: ConnectorRow; t: ToolRow }> {
    const c = await this.load(em, p, id);
    await this.access.authorize(p, 'review_tools', 'Connector', { id });
    const [t] = await em.query('SELECT * FROM connector_tools WHERE org_id = $1 AND connector_id = $2 AND name = $3 FOR UPDATE', [p.orgId, id, name]);
    if (!t) throw AppError.notFound('tool');
    return { c, t };
  }

  /** The admin's mapping of a tool to an action type (and where its decision inputs are); audited. */
  /** MapTool: the MCP gateway's open sessions built on the connector learn of it at once (ConnectorChanges). */
  mapTool(p: Principal, id: string, name: string, body: z.infer<typeof MapToolBody>) {
    return this.changes.after(p.orgId, () => this.doMapTool(p, id, name, body));
  }

  private async doMapTool(p: Principal, id: string, name: string, body: z.infer<typeof MapToolBody>) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      const { c, t } = await this.tool(em, p, id, name);
      if (c.kind === 'builtin') throw AppError.conflict('Built-in tools are mapped by their manifest.');
      const action = body.action ?? t.action;
      const extract = body.extract !== undefined ? body.extract : t.extract;
      await em.query('UPDATE connector_tools SET action = $4, extract = $5, updated_at = now() WHERE org_id = $1 AND connector_id = $2 AND name = $3', [p.orgId, id, name, action, extract ? JSON.stringify(extract) : null]);
      await this.audit.record(em, p, { action: 'connector_tool.map', targetType: 'Connector', targetId: id, payload: { tool: name, before: { action: t.action, extract: t.extract }, after: { action, extract } } });
      const [row] = await em.query('SELECT * FROM connector_tools WHERE org_id = $1 AND connector_id = $2 AND name = $3', [p.orgId, id, name]);
      return toolView(row);
    });
  }

  /** Pins the definition the admin reviewed (by its hash); the gateway serves only pinned definitions. */
  /** ApproveTool: the MCP gateway's open sessions built on the connector learn of it at once (ConnectorChanges). */
  approveTool(p: Principal, id: string, name: string, body: z.infer<typeof ApproveToolBody>) {
    return this.changes.after(p.orgId, () => this.doApproveTool(p, id, name, body));
  }

  private async doApproveTool(p: Principal, id: string, name: string, body: z.infer<typeof ApproveToolBody>) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      const { t } = await this.tool(em, p, id, name);
      if (t.status === 'removed') throw AppError.conflict('The server no longer offers this tool.');
      if (t.definition_hash !== body.hash) throw AppError.conflict('The tool\'s definition is not the one you reviewed (its hash differs): list the tools again and review the diff.');
      // A mapping that reads fields the new definition no longer has would hand the policy nothing
      // (an upstream that renamed "to" would send mail the policy sees no recipient of).
      // Nor may it read fields the definition rules out (the catalog proposed "prospectEmail"; the server names it "email" and allows no other).
      const gone = [...new Set([...(t.approved_definition ? fieldsGone(t.extract, t.approved_definition.inputSchema, t.definition.inputSchema) : []), ...fieldsRefused(t.extract, t.definition.inputSchema)])].sort();
      if (gone.length) {
        throw AppError.conflict(
          `The tool's mapping reads ${gone.map((f) => `"${f}"`).join(', ')}, which its definition does not have (or no longer has): map it again (PATCH /v1/connectors/${id}/tools/${name} with "extract") so that the policy sees what the call names, then approve.`,
        );
      }
      const action = body.action ?? t.action;
      await em.query(
        `UPDATE connector_tools SET status = 'approved', approved_hash = definition_hash, approved_definition = definition, approved_by = $4, approved_at = now(), action = $5, updated_at = now()
         WHERE org_id = $1 AND connector_id = $2 AND name = $3`,
        [p.orgId, id, name, p.userId, action],
      );
      await this.audit.record(em, p, {
        action: 'connector_tool.approve',
        targetType: 'Connector',
        targetId: id,
        payload: { tool: name, hash: body.hash, previousHash: t.approved_hash, action, flags: t.flags.map((f) => f.reason).slice(0, 20) },
      });
      const [row] = await em.query('SELECT * FROM connector_tools WHERE org_id = $1 AND connector_id = $2 AND name = $3', [p.orgId, id, name]);
      return toolView(row);
    });
  }

  /** Holds a tool until it is approved again (the pin is dropped; the approved definition is kept for the diff). */
  /** HoldTool: the MCP gateway's open sessions built on the connector learn of it at once (ConnectorChanges). */
  holdTool(p: Principal, id: string, name: string, body: z.infer<typeof HoldToolBody>) {
    return this.changes.after(p.orgId, () => this.doHoldTool(p, id, name, body));
  }

  private async doHoldTool(p: Principal, id: string, name: string, body: z.infer<typeof HoldToolBody>) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      const { c, t } = await this.tool(em, p, id, name);
      // Built-in tools run as their manifest says wherever they are served: a hold here would be shown and never enforced.
      if (c.kind === 'builtin') throw AppError.conflict('Built-in tools are not held one by one: make their action type Forbidden in the policy, or uninstall the connector.');
      if (t.status === 'removed') throw AppError.conflict('The server no longer offers this tool.');
      await em.query(`UPDATE connector_tools SET status = 'held', approved_hash = NULL, updated_at = now() WHERE org_id = $1 AND connector_id = $2 AND name = $3`, [p.orgId, id, name]);
      await this.audit.record(em, p, { action: 'connector_tool.hold', targetType: 'Connector', targetId: id, payload: { tool: name, reason: body.reason, previousHash: t.approved_hash } });
      const [row] = await em.query('SELECT * FROM connector_tools WHERE org_id = $1 AND connector_id = $2 AND name = $3', [p.orgId, id, name]);
      return toolView(row);
    });
  }

  async egressHosts(p: Principal) {
    await this.access.authorize(p, 'read', 'Connector');
    return this.db.inOrg(p, async (em) => {
      return this.egressView(await orgAllowHosts(em, p.orgId));
    });
  }

  private egressView(hosts: string[]) {
    return { hosts, operatorHosts: [...this.config.STEWARD_EGRESS_ALLOW_HOSTS], orgRanges: [...this.config.STEWARD_EGRESS_ORG_RANGES] };
  }

  async setEgressHosts(p: Principal, body: z.infer<typeof EgressHosts>) {
    await this.access.authorize(p, 'update', 'Connector');
    // An address written out is judged now: one the operator's ceiling does not open would only fail later, at each call.
    const closed = body.hosts.flatMap((host, i) => {
      const raw = host.replace(/^\[|\]$/g, '');
      if (!isIP(raw) || classifyAddress(raw) === 'public' || inEgressRanges(raw, this.config.STEWARD_EGRESS_ORG_RANGES)) return [];
      return [{ path: `hosts.${i}`, message: `${host} is a ${classifyAddress(raw)} address outside the ranges the operator lets an org open (STEWARD_EGRESS_ORG_RANGES: ${this.config.STEWARD_EGRESS_ORG_RANGES.join(', ') || 'none'})` }];
    });
    // Open gateway sessions were checked against the allowlist they began with: told at once, they end (ConnectorChanges).
    return this.changes.after(p.orgId, () => this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      if (closed.length) throw AppError.validation(closed, 'An org allowlist opens non-public addresses only inside the ranges the operator set.');
      const before: { host: string }[] = await em.query('SELECT host FROM egress_allow_hosts WHERE org_id = $1', [p.orgId]);
      const hosts = [...new Set(body.hosts)].sort();
      await em.query('DELETE FROM egress_allow_hosts WHERE org_id = $1', [p.orgId]);
      for (const host of hosts) await em.query('INSERT INTO egress_allow_hosts (org_id, host, created_by) VALUES ($1, $2, $3)', [p.orgId, host, p.userId]);
      const prev = before.map((r) => r.host);
      await this.audit.record(em, p, { action: 'connector.egress_allow', targetType: 'Org', targetId: p.orgId, payload: { added: hosts.filter((h) => !prev.includes(h)), removed: prev.filter((h) => !hosts.includes(h)) } });
      return this.egressView(hosts);
    }));
  }
}


