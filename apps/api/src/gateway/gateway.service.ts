import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode as McpErrorCode,
  GetPromptRequestSchema,
  isInitializeRequest,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  type Prompt,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type Resource,
  type ResourceTemplate,
  type Tool,
  type JSONRPCRequest,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@modelcontextprotocol/sdk/types.js';
import { trace } from '@opentelemetry/api';
import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { AuditKeyring, canonical, recordEvent } from '@steward/audit';
import { AppError, type Config, type EgressOptions, type EgressResolver, ErrorCode, type Logger, newId, orgEgressOptions, SpanAttr, TokenPrefix } from '@steward/common';
import { type ClientOffer, ConnectorError, ConnectorHub, type ConnectorManifest } from '@steward/connectors';
import { type ActionRequest, ContextCache, CredentialBroker, gateAction, type GateDeps, type GateObserver, type GateResult, OutcomeWriter, PolicySource, reserve } from '@steward/gate';
import { addTaskConnectors, exposedToolNames, hubIdOf, toolNameOf } from '@steward/jobs';
import { type ActionType, authorize, buildAbility, type CompiledPolicy, decide, isActionType, type Level, rateLimitsFor, subjectOf, toFacts } from '@steward/policy';
import { type EntityManager, orgAllowHosts } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { AccessService } from '../access/access.service';
import { ConnectorChanges } from '../connectors/connector-changes';
import { AuthGuard } from '../auth/auth.guard';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { problem, sendProblem } from '../core/problem';
import { addressWindow, admitByAddress, apiRateLimit, countWindows } from '../core/rate-limit';
import type { ApiMetrics } from '../core/metrics';
import { CONFIG, EGRESS_RESOLVER, LOGGER, METRICS, REDIS } from '../core/tokens';
import { mcpChallenge, mcpResource, resolveMcpToken } from '../mcp-auth/mcp-tokens';
import { SessionEventStore } from './event-store';
import { JsonAnswers } from './json-answers';
import { ReadGenerations } from './read-generations';
import { ResourceOwners } from './resource-owners';
import { SessionDirectory } from './session-directory';
import { Lifecycle } from '../core/lifecycle';

/**
 * The MCP gateway: `/mcp` on the API, Streamable HTTP (sessions, resumable streams, the SDK's
 * protocol-version negotiation), an OAuth 2.1 protected resource per the MCP authorization spec:
 * the Bearer token is an OAuth access token a member granted an MCP client (audience-bound to
 * this endpoint, see mcp-auth) or the member's API key; either maps to the same caller (org,
 * user, roles). Without a valid token the answer is 401 with `WWW-Authenticate: Bearer
 * resource_metadata=...`, where MCP clients start discovery.
 *
 * A session holds a ConnectorHub of the org's installed connectors (built the way the worker
 * builds a task's: built-in ones in process, remote MCP servers with their approved tool
 * definitions pinned, credentials decrypted per call by the broker). `tools/list` offers the
 * tools the active policy does not make Forbidden for this user, named `<connector>__<tool>`;
 * `tools/call` goes through `gateAction` exactly as the worker's calls do, with the claim
 * `{ gatewayKey }`: an id derived from the session, the connector and tool and the digest of the
 * arguments — so a client that retries with a new JSON-RPC id does not act twice. Watched calls
 * wait for their approval (progress notifications meanwhile, the approval's state read from
 * PostgreSQL) up to a limit, then answer with the pending approval; the same call made again
 * once it is approved runs, once (the gate redeems the approval).
 *
 * Resources and prompts of the upstreams pass through (namespaced like tools). Sampling and
 * elicitation requests an upstream sends during a call are relayed to the client on that call's
 * stream only where the org allows it for that connector (`relay_sampling`, `relay_elicitation`)
 * and the client declared the capability; each one, relayed or refused, is audited
 * (`mcp.sampling`, `mcp.elicitation`: digest and size of the request, never its text).
 */

/** The gateway's paths: `/mcp` (null: every connector) or `/mcp/<connector>`; undefined: not the gateway's. */
export function gatewayScope(path: string): string | null | undefined {
  const m = /^\/mcp(?:\/([a-z0-9_-]{1,40}))?\/?$/.exec(path);
  return m ? (m[1] ?? null) : undefined;
}

type Notify = (n: { method: string; params: Record<string, unknown> }) => Promise<void>;

/** A tools/call in progress: where an upstream's log messages, sampling and elicitation requests go. */
interface ActiveCall {
  connector: string;
  notify: Notify;
  /** A request to the client related to this call (it travels on the call's stream). */
  request: <T extends typeof CreateMessageResultSchema | typeof ElicitResultSchema>(r: { method: string; params?: Record<string, unknown> }, schema: T, o: { signal: AbortSignal; timeout: number }) => Promise<unknown>;
}

/** The call whose upstream work is running (async context of the hub's call, for requests the upstream sends). */
const callScope = new AsyncLocalStorage<ActiveCall>();

/** How long a relayed sampling or elicitation request may wait for the client (a person may be answering). */
const RELAY_TIMEOUT_MS = 10 * 60_000;

interface GatewaySession {
  id: string;
  /** `/mcp/<connector>`: one connector's tools and prompts under their own names; null: all, namespaced. */
  scope: string | null;
  /** The calls in progress (an upstream's log messages go to the latest). */
  active: ActiveCall[];
  /** Hub id → the installed connector (row id, name). */
  connectors: Record<string, { id: string; name: string; elicits: boolean; asks: boolean }>;
  /** The protocol version negotiated at initialize. */
  protocolVersion: string;
  orgId: string;
  userId: string;
  /** The API key or access token of the session's latest request (revoked or expired: the sweeper ends the session). */
  keyId: string;
  /** The OAuth client the member authorised (null for an API key). */
  oauthClientId: string | null;
  transport: StreamableHTTPServerTransport;
  /** The transport the session's server is connected to: the SDK's, plus calls answered in one JSON body. */
  json: JsonAnswers;
  server: Server;
  hub: ConnectorHub;
  manifests: Record<string, ConnectorManifest>;
  gate: GateDeps;
  lastSeen: number;
  /** Once a session read untrusted content its outbound actions are decided as tainted (as a task's). */
  tainted: boolean;
  labels: string[];
  /** Whose taint outlives the session (mcp_client_taint): the member's credential (API key, or OAuth client) and the client's name; when it was last saved. */
  taintOf: { holder: string; clientName: string; saved: { labels: string; at: number } | null };
  /** Resource URIs this session subscribed to, and the connectors the subscription went to (their updates are relayed). */
  subscribed: Map<string, Set<string>>;
  /** The connectors whose logs reach the session's own stream: those the member could read at the client's last logging/setLevel. */
  logging: Set<string>;
  /** Each tool's name in this session (`connector\ntool` → name; fixed with the manifests at initialize). */
  toolNames: Map<string, string>;
  /** Watched calls of this session waiting for their approval now (at most GATEWAY_MAX_WAITING_CALLS_PER_SESSION). */
  waiting: number;
  /** Completed identical read-only calls (a read may run again; a write may not). */
  generations: ReadGenerations;
  /** Writes' generations, apart: only a refusal that passes moves one on, and the reads' roll-over never does (a retried write stays one action). */
  writeGenerations: ReadGenerations;
  /** Which connector served a resource URI (filled when resources are listed; the first to list a URI keeps it; bounded). */
  resourceOwner: ResourceOwners;
  /** What the session was last shown of each list it asked for (tools: their digest; resources and prompts: the connectors listed). */
  listed: Partial<Record<ListKind, string>>;
  /** What the lists were last checked against (the policy, the member's groups, the org's domains, the session's taint). */
  checkedUnder?: string;
  /** List changes an upstream told of, sent to the client shortly (several connectors telling at once make one notification). */
  changing?: Set<ListKind>;
  /** When the session was opened (its open audit event written), and how many tool calls it made. */
  openedAt?: number;
  calls: number;
  /**
   * Each installed connector's configuration as the session was built from it (status, settings,
   * its tools' mappings, approvals and holds): once an admin changes any of it, the session is
   * ended, since its tools' action types and pins were fixed at initialize.
   */
  prints: Record<string, string>;
  /** The session is about to end (its connectors changed): scheduled once. */
  ending?: boolean;
}

/** Why a session ended (its `mcp.session_close` audit event says): closed by its client, idle, its key or member no longer valid, the process stopping; or its opening could not be recorded (then nothing is recorded of it). */
type CloseReason = 'closed' | 'idle' | 'revoked' | 'shutdown' | 'not_recorded' | 'connectors_changed';

/** The lists a session is told about when they change (notifications/<kind>/list_changed). */
type ListKind = 'tools' | 'resources' | 'prompts';

/** Why a read of resources or prompts is refused: the kill switch, the member's suspension, or the policy. */
type ReadRefusal = 'paused' | 'suspended' | 'no_policy' | 'forbidden' | 'not_authorized' | 'watched';

/** What a read of a connector's resources or prompts is decided as: the action type of its read-only tools, else a SaaS read. */
function readActionOf(manifest: ConnectorManifest | undefined): ActionType {
  const t = manifest?.tools.find((x) => x.readOnly && isActionType(x.action));
  return t ? (t.action as ActionType) : 'saas.read';
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** Tells the session's client that one of its lists changed (on the session's own stream). */
function sendListChanged(s: GatewaySession, kind: ListKind): Promise<void> {
  const sent = kind === 'tools' ? s.server.sendToolListChanged() : kind === 'resources' ? s.server.sendResourceListChanged() : s.server.sendPromptListChanged();
  return sent.catch(() => undefined);
}
/** What a client sees of a tool list (names, descriptions with their level notes, schemas): a change is announced. */
const toolsDigest = (tools: Tool[]) => sha256(canonical(tools.map((t) => [t.name, t.description ?? '', t.inputSchema])));
/** The session and MCP client an audit event names (the client's clientInfo, and the OAuth client the member authorised where one did). */
function viaOf(s: GatewaySession, client: { name?: unknown; version?: unknown } | undefined = s.server.getClientVersion()): { session: string; clientName: string; clientVersion: string; oauthClientId?: string } {
  return { session: s.id, clientName: String(client?.name ?? 'unknown').slice(0, 200), clientVersion: String(client?.version ?? '').slice(0, 100), ...(s.oauthClientId ? { oauthClientId: s.oauthClientId } : {}) };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LEVEL_NOTE: Partial<Record<Level, string>> = {
  watched: '[Watched: each call waits for a person to approve it] ',
  batched: '[Batched: runs now (writes in a reversible form) and is held for review] ',
};
/** Refusals explained in words (the gate's reason covers the rest). */
const REFUSALS: Record<string, string> = {
  paused: 'agents are paused in this org (kill switch); nothing runs',
  suspended: 'your agent access is suspended',
  no_policy: 'the org has no active policy',
  not_authorized: 'the action is not authorised',
  rejected: 'a person rejected this action; it was not run',
  expired: 'nobody approved this action in time; it was not run',
  approval_used: 'the approval for this action was already used; it was not run again',
  approval_mismatch: 'the approval was for other arguments or another tool definition; it was not run',
};
/** Refusals whose reason passes (the kill switch lifted, a suspension ended, a policy activated): the same call in the session is decided again. */
const PASSING_REFUSALS: ReadonlySet<string> = new Set(['paused', 'suspended', 'no_policy']);
/** Refusals of resource and prompt reads (decided here, not by the gate). */
const READ_REFUSALS: Record<ReadRefusal, string> = {
  paused: REFUSALS.paused!,
  suspended: REFUSALS.suspended!,
  no_policy: REFUSALS.no_policy!,
  not_authorized: REFUSALS.not_authorized!,
  forbidden: 'the policy forbids reading this connector for you',
  watched: "the policy makes reading this connector wait for a person's approval, which a resource or prompt cannot wait for (a tool call can)",
};
const WAIT_META_KEY = 'steward/wait-seconds';
/** How long a resolved Bearer token's caller is reused (see GatewayService.caller), and how many are kept. */
const PRINCIPAL_TTL_MS = 1000;
const PRINCIPAL_CACHE_MAX = 10_000;
/** Resource URIs one session may be subscribed to at once. */
const MAX_SUBSCRIPTIONS = 1000;
/** The longest resource URI the gateway takes (subscribe, read, complete): a real one is far shorter. */
const MAX_URI_CHARS = 2048;
/** The longest JSON-RPC request id the gateway takes (the SDK keeps each until it is answered). */
const MAX_ID_CHARS = 128;
/** Requests of one session without an answer (those the client cancelled never get one): past this, a new session. */
const MAX_UNANSWERED = 1000;

function boundedUri(uri: string): string {
  if (uri.length > MAX_URI_CHARS) throw new McpError(McpErrorCode.InvalidParams, `A resource URI may be at most ${MAX_URI_CHARS} characters.`);
  return uri;
}

@Injectable()
export class GatewayService implements OnModuleDestroy {
  private readonly sessions = new Map<string, GatewaySession>();
  /** Initializes under way per org/user (counted against the sessions limit until they are open or failed). */
  private readonly opening = new Map<string, number>();
  private readonly principals = new Map<string, { principal: Promise<Principal>; until: number }>();
  private readonly auth: AuthGuard;
  private readonly keyring: AuditKeyring;
  private readonly broker: CredentialBroker;
  private readonly outcomes: OutcomeWriter;
  private readonly policies = new PolicySource();
  private readonly contexts = new ContextCache();
  private readonly sweeper: NodeJS.Timeout;
  private revalidating: Promise<unknown> | null = null;
  /** Per org: its connectors' configuration prints, read at most once a second (connectorPrints). */
  private readonly prints = new Map<string, { at: number; prints: Promise<Map<string, string>>; value?: Map<string, string> }>();
  private readonly observer: GateObserver;
  private readonly addressLimit: ReturnType<typeof apiRateLimit>;
  /** DNS-rebinding protection: the Host and Origin values /mcp accepts (loopback: any loopback name, any port). */
  private readonly allowed: { hosts: Set<string>; origins: Set<string>; loopback: boolean };
  /** Which API process holds each session (GATEWAY_ADVERTISE_URL set: several processes, no affinity needed). */
  private readonly directory: SessionDirectory;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(EGRESS_RESOLVER) private readonly resolver: EgressResolver,
    @Inject(METRICS) metrics: ApiMetrics,
    private readonly db: Db,
    private readonly access: AccessService,
    reflector: Reflector,
    changes: ConnectorChanges,
    private readonly lifecycle: Lifecycle,
  ) {
    // An admin's change to the org's connectors in this process: the next call reads them again.
    changes.onChange((orgId) => this.prints.delete(orgId));
    this.auth = new AuthGuard(reflector, db, access, config);
    this.addressLimit = apiRateLimit(config);
    const publicUrl = config.STEWARD_PUBLIC_URL;
    this.allowed = {
      hosts: new Set(config.GATEWAY_ALLOWED_HOSTS.length ? config.GATEWAY_ALLOWED_HOSTS : publicUrl ? [hostOf(publicUrl)] : []),
      origins: new Set(
        config.GATEWAY_ALLOWED_ORIGINS.length ? config.GATEWAY_ALLOWED_ORIGINS : [publicUrl, config.STEWARD_CONSOLE_URL].filter((u): u is string => !!u).map((u) => new URL(u).origin.toLowerCase()),
      ),
      loopback: config.NODE_ENV !== 'production' || !publicUrl,
    };
    this.observer = metrics.steward.gateObserver();
    const keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
    this.keyring = new AuditKeyring(keys);
    this.broker = new CredentialBroker(db.dataSource, keys, this.keyring, (orgId) => this.egress(orgId));
    this.outcomes = new OutcomeWriter(db.dataSource, this.keyring, (err) => log.error({ err: (err as Error).message }, 'gateway: writing action outcomes failed'));
    this.directory = new SessionDirectory(redis, config.REDIS_PREFIX, config.GATEWAY_ADVERTISE_URL ?? null, config.STEWARD_TOKEN_PEPPER, config.GATEWAY_SESSION_IDLE_SECONDS);
    // Sessions recorded under this process's address before it (re)started are gone.
    void this.directory.forgetOwn((sid) => this.sessions.has(sid)).then(
      (n) => n && log.info({ sessions: n }, 'gateway: forgot the sessions this process held before it started'),
      (err: unknown) => log.warn({ err: (err as Error).message }, 'gateway: could not clear the sessions this process held before it started'),
    );
    this.sweeper = setInterval(() => this.sweep(), 10_000);
    this.sweeper.unref();
  }

  /** POST requests being answered (a tools/call's whole answer included): what a shutdown lets finish. */
  private inflight = 0;

  /**
   * For a shutdown (the process is `stopping`: new requests are refused with 503, Watched calls stop
   * waiting and answer with their pending approval): waits up to `ms` for the requests under way to
   * be answered, so that no call is cut mid-way (a write's outcome left unknown). Returns how many
   * were still under way at the deadline.
   */
  async drain(ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.inflight > 0 && Date.now() < deadline) await sleep(Math.min(50, deadline - Date.now()));
    return this.inflight;
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.sessions.values()].map((s) => this.closeSession(s, 'shutdown')));
    this.directory.close();
    await this.outcomes.flush().catch(() => undefined);
  }

  /** Open sessions (for tests and metrics). */
  get openSessions(): number {
    return this.sessions.size;
  }

  async handle(req: Request, res: Response, scope: string | null = null): Promise<void> {
    const fail = (status: number, code: ErrorCode, title: string, detail: string, headers: Record<string, string> = {}) => {
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      sendProblem(res, problem(status, code, title, detail, { instance: '/mcp', requestId: req.id }));
    };
    // Shutting down: nothing new starts here (the client reconnects, to another server); what is under way finishes.
    if (this.lifecycle.stopping) {
      fail(503, ErrorCode.Unavailable, 'Shutting down', 'This Steward server is shutting down: send the request again in a moment (a new session, on another server).', { 'Retry-After': '1' });
      return;
    }
    if (req.method === 'POST') {
      this.inflight++;
      res.once('close', () => this.inflight--);
    }
    // DNS-rebinding protection, before anything else: a page on another site whose name resolves
    // to this server must not reach the gateway (its Host or Origin is not one of ours).
    const refused = this.rebinding(req);
    if (refused) {
      fail(403, ErrorCode.Forbidden, 'Forbidden', refused);
      return;
    }
    // 0. Limits counted in one round trip: the API's per-address limit (every request, before
    //    anything else) and the calls per second of the Bearer token (tools/call messages). A
    //    request another API process passed on was counted there (with the client's address).
    const forwarded = this.directory.isForwarded(req);
    const authorization = req.header('authorization');
    const calls = (Array.isArray(req.body) ? req.body : [req.body]).filter((m) => m && typeof m === 'object' && (m as { method?: unknown }).method === 'tools/call').length;
    const counted = forwarded ? null : await this.count(req, authorization, calls);
    if (counted && !admitByAddress(req, res, this.addressLimit, counted.address, counted.reset)) return;
    // The size limit reads Content-Length, so only uncompressed bodies (a gzip body inflates past it).
    const encoding = req.header('content-encoding');
    if (encoding && encoding.trim().toLowerCase() !== 'identity') {
      fail(415, ErrorCode.UnsupportedMediaType, 'Unsupported media type', 'Send MCP requests uncompressed (no Content-Encoding).');
      return;
    }
    const longId = (Array.isArray(req.body) ? req.body : [req.body]).some((m) => m && typeof m === 'object' && typeof (m as { id?: unknown }).id === 'string' && (m as { id: string }).id.length > MAX_ID_CHARS);
    if (longId) {
      fail(400, ErrorCode.ValidationFailed, 'Bad request', `A JSON-RPC request id may be at most ${MAX_ID_CHARS} characters.`);
      return;
    }
    const size = Number(req.headers['content-length'] ?? (req.body === undefined ? 0 : Buffer.byteLength(JSON.stringify(req.body))));
    const overLimit = (): boolean => {
      if (size > this.config.GATEWAY_MAX_REQUEST_BYTES) {
        fail(413, ErrorCode.PayloadTooLarge, 'Payload too large', `An MCP request may be at most ${this.config.GATEWAY_MAX_REQUEST_BYTES} bytes.`);
        return true;
      }
      if (calls && counted?.calls !== undefined && counted.calls > this.config.GATEWAY_CALLS_PER_SECOND) {
        fail(429, ErrorCode.RateLimited, 'Too many requests', `At most ${this.config.GATEWAY_CALLS_PER_SECOND} tool calls per second per API key or access token.`, { 'Retry-After': '1' });
        return true;
      }
      return false;
    };
    // A session another API process holds: the request goes on to it, which authenticates it and
    // answers (streams included). Passed on once at most; a process that is gone means 404.
    const asked = req.header('mcp-session-id');
    if (asked && !forwarded && this.directory.enabled && !this.sessions.has(asked)) {
      const home = await this.directory.lookup(asked).catch(() => null);
      if (home && home.url === this.directory.self) await this.directory.remove(asked, home.orgId, home.userId).catch(() => undefined); // this process restarted since
      else if (home) {
        if (overLimit()) return;
        const r = await this.directory.forward(home, req, res, asked);
        if (r === 'unreachable') {
          await this.directory.remove(asked, home.orgId, home.userId, home.url).catch(() => undefined);
          fail(404, ErrorCode.NotFound, 'Not found', 'No such MCP session (the API process that held it is gone): initialize a new one.');
        } else if (r === 'lost') {
          fail(502, ErrorCode.UpstreamUnreachable, 'Bad gateway', 'The API process holding this MCP session stopped answering; the request may have been carried out.');
        }
        return;
      }
    }
    // 1. The caller: an OAuth access token (audience: this gateway) or an API key, as a Bearer
    //    token, nothing else (no cookies: a browser page cannot drive the gateway).
    if (!authorization) {
      fail(401, ErrorCode.Unauthenticated, 'Unauthenticated', 'The MCP gateway takes an OAuth access token (see the resource metadata) or an API key: "Authorization: Bearer ...".', { 'WWW-Authenticate': mcpChallenge(this.config) });
      return;
    }
    let p: Principal;
    try {
      // Messages of an open session may reuse the caller resolved from the same token within the last second; a new session always resolves it.
      const sid = req.header('mcp-session-id');
      p = await this.caller(req, authorization, !!sid && this.sessions.has(sid));
    } catch (err) {
      if (err instanceof AppError) {
        fail(err.status, err.code, err.title, err.detail ?? err.title, err.status === 401 ? { 'WWW-Authenticate': mcpChallenge(this.config, 'invalid_token') } : {});
        return;
      }
      throw err;
    }
    // The request's span (core/tracing.ts) names the caller's org.
    trace.getActiveSpan()?.setAttribute(SpanAttr.OrgId, p.orgId);
    if (p.kind === 'session') {
      fail(401, ErrorCode.Unauthenticated, 'Unauthenticated', 'The MCP gateway takes an OAuth access token or an API key as a Bearer token.', { 'WWW-Authenticate': mcpChallenge(this.config) });
      return;
    }
    // OAuth: the calls-per-second limit holds per grant (client and member), not per access token:
    // refreshing does not revoke the earlier tokens, so counting by token alone would let a client
    // multiply its limit by refreshing.
    if (calls && p.mcpClientId) {
      const second = Math.floor(Date.now() / 1000);
      const { counts: [n], report } = await countWindows(this.redis, [{ key: `${this.config.REDIS_PREFIX}:mcp:calls:oauth:${sha256(`${p.mcpClientId}\n${p.userId}`)}:${second}`, by: calls, ttlSeconds: 2 }]);
      if (report) this.log.warn({ err: report.message }, 'gateway: redis unavailable, requests counted in this process');
      if (n! > this.config.GATEWAY_CALLS_PER_SECOND) {
        fail(429, ErrorCode.RateLimited, 'Too many requests', `At most ${this.config.GATEWAY_CALLS_PER_SECOND} tool calls per second per API key, or per OAuth client and member.`, { 'Retry-After': '1' });
        return;
      }
    }
    // RBAC: using the gateway is running agent actions as oneself (what starting a task needs).
    if (!p.ability.can('create', subjectOf('Task', { userId: p.userId }))) {
      fail(403, ErrorCode.Forbidden, 'Forbidden', 'Your role (or this API key\'s scopes) may not run agent actions.');
      return;
    }
    // 2. Limits: request size, calls per second per key.
    if (overLimit()) return;
    // 3. The session: an existing one of this same user, or a new one on `initialize`.
    const sid = req.header('mcp-session-id');
    if (sid) {
      const s = this.sessions.get(sid);
      if (!s || s.orgId !== p.orgId || s.userId !== p.userId || s.scope !== scope) {
        fail(404, ErrorCode.NotFound, 'Not found', 'No such MCP session (it ended or expired): initialize a new one.');
        return;
      }
      s.lastSeen = Date.now();
      // The key or token the session goes on with (an OAuth client refreshes its access token within a session): what the sweeper checks.
      s.keyId = p.credentialId;
      this.directory.touch(s.id, s.orgId, s.userId);
      this.sessionVersion(req, s);
      if (req.method === 'POST' && s.json.unansweredCount >= MAX_UNANSWERED) {
        fail(429, ErrorCode.RateLimited, 'Too many requests', `This MCP session has ${MAX_UNANSWERED} requests without an answer (cancelled ones never get one): end it (DELETE /mcp) and open a new one.`);
        return;
      }
      if (await this.answerInJson(req, res, s)) return;
      await s.transport.handleRequest(req, res, req.body);
      return;
    }
    if (req.method !== 'POST' || !(Array.isArray(req.body) ? req.body.some((m) => isInitializeRequest(m)) : isInitializeRequest(req.body))) {
      fail(400, ErrorCode.ValidationFailed, 'Bad request', 'No Mcp-Session-Id: the first request of a session must be "initialize".');
      return;
    }
    // Sessions being opened count too (taken before the count is awaited): initializes sent side by side cannot all get in.
    const who = `${p.orgId}/${p.userId}`;
    this.opening.set(who, (this.opening.get(who) ?? 0) + 1);
    // Counted as opening until the session counts among the open ones (or failed).
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = this.opening.get(who)! - 1;
      if (n > 0) this.opening.set(who, n);
      else this.opening.delete(who);
    };
    try {
      const here = [...this.sessions.values()].filter((s) => s.orgId === p.orgId && s.userId === p.userId).length;
      // Without Redis the count is this process's own (the gateway stays usable; other processes count theirs).
      const open = this.directory.enabled ? await this.directory.countFor(p.orgId, p.userId, (sid) => this.sessions.has(sid)).catch(() => here) : here;
      if (open + this.opening.get(who)! > this.config.GATEWAY_MAX_SESSIONS_PER_USER) {
        fail(429, ErrorCode.RateLimited, 'Too many sessions', `At most ${this.config.GATEWAY_MAX_SESSIONS_PER_USER} open MCP sessions per user: close one (DELETE /mcp) first.`);
        return;
      }
      const init = (Array.isArray(req.body) ? req.body : [req.body]).find((m) => isInitializeRequest(m)) as { params: { protocolVersion: string; capabilities?: Record<string, unknown> } };
      const s = await this.openSession(p, scope, init.params, release);
      if (!s) {
        fail(404, ErrorCode.NotFound, 'Not found', `No connector "${scope}" is installed in this org.`);
        return;
      }
      await s.transport.handleRequest(req, res, req.body);
      // A failed initialize leaves no session behind; one whose opening could not be recorded is ended
      // at once (its next request gets 404, on which the client opens another).
      if (!s.transport.sessionId) await this.closeSession(s, 'closed');
      else if (s.openedAt === undefined) await this.closeSession(s, 'not_recorded');
    } finally {
      release();
    }
  }

  /**
   * A `tools/call` that cannot stream anything back is answered with one JSON body (Streamable HTTP
   * lets the server choose, per POST, JSON or an SSE stream): a single well-formed request of a
   * supported protocol version, from a client that accepts both, with no progress token, to a
   * connector whose upstream neither logs nor may ask the client for anything. False: the SDK's
   * transport serves the request (and answers anything malformed as the spec says).
   */
  private async answerInJson(req: Request, res: Response, s: GatewaySession): Promise<boolean> {
    const m = req.body as Record<string, unknown> | undefined;
    if (req.method !== 'POST' || !isObject(m) || m.jsonrpc !== '2.0' || m.method !== 'tools/call' || !isObject(m.params)) return false;
    if ((typeof m.id !== 'string' && typeof m.id !== 'number') || Object.keys(m).some((k) => !['jsonrpc', 'id', 'method', 'params'].includes(k))) return false;
    const accept = req.headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream') || !(req.headers['content-type'] ?? '').includes('application/json')) return false;
    const version = req.headers['mcp-protocol-version'];
    if (version !== undefined && (typeof version !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(version))) return false;
    const params = m.params;
    if (isObject(params._meta) && params._meta.progressToken !== undefined) return false;
    const target = typeof params.name === 'string' ? this.resolve(s, params.name) : undefined;
    if (!target || !s.hub.has(target.connector) || s.connectors[target.connector]?.asks || s.hub.get(target.connector).capabilities().logging) return false;
    const answer = s.json.answer(m as unknown as JSONRPCRequest, { requestInfo: { headers: req.headers } });
    if (!answer) return false;
    const message = await answer;
    if (!res.headersSent && !res.destroyed) {
      const body = JSON.stringify(message);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'mcp-session-id': s.id });
      res.end(body);
    }
    return true;
  }

  /**
   * The caller of a request from its Bearer token. An MCP client sends the same token with every
   * message of a session, and resolving it is two transactions (token, then membership and roles),
   * so within an open session (`reuse`) a token resolved less than PRINCIPAL_TTL_MS ago is not
   * resolved again: there, a revoked or expired token, a suspended member or a changed role takes
   * effect within that second — and the gate itself reads the kill switch and the membership again
   * in every call's write-ahead commit. A new session (initialize) always resolves its token.
   * Only successes are remembered (keyed by a digest of the header, never the token itself), and
   * concurrent requests with the same token share one lookup.
   */
  private caller(req: Request, authorization: string, reuse: boolean): Promise<Principal> {
    const key = sha256(authorization);
    const now = Date.now();
    const hit = this.principals.get(key);
    if (reuse && hit && hit.until > now) return hit.principal;
    const principal = this.authenticate(req, authorization);
    if (this.principals.size >= PRINCIPAL_CACHE_MAX) {
      for (const [k, v] of this.principals) if (v.until <= now) this.principals.delete(k);
      if (this.principals.size >= PRINCIPAL_CACHE_MAX) this.principals.clear();
    }
    this.principals.set(key, { principal, until: now + PRINCIPAL_TTL_MS });
    principal.catch(() => {
      if (this.principals.get(key)?.principal === principal) this.principals.delete(key);
    });
    return principal;
  }

  private async authenticate(req: Request, authorization: string): Promise<Principal> {
    const bearer = /^Bearer\s+(\S{1,200})$/i.exec(authorization)?.[1];
    if (bearer?.startsWith(TokenPrefix.Mcp)) {
      const caller = await resolveMcpToken(this.db.dataSource, this.config, bearer, mcpResource(this.config));
      if (!caller) throw AppError.unauthenticated('The access token is unknown, expired or revoked, its member is no longer active, or it was issued for another resource.');
      return this.auth.authenticate(req, { kind: 'mcp_token', id: caller.tokenId, orgId: caller.orgId, userId: caller.userId, mfaAt: null, clientId: caller.clientId });
    }
    return this.auth.authenticate(req);
  }

  /**
   * One round trip: the per-address request count (the API's general limit, which leaves the
   * gateway's paths to it) and, for tool calls, the count of this second for the Bearer token
   * (a digest of the token; one token is one API key or access token). When Redis does not answer
   * they are counted in this process alone (each API process then enforces them on its own).
   */
  private async count(req: Request, authorization: string | undefined, calls: number): Promise<{ address: number; reset: number; calls?: number }> {
    const address = addressWindow(req, this.addressLimit);
    const token = calls ? /^Bearer\s+(\S{1,200})$/i.exec(authorization ?? '')?.[1] : undefined;
    // A JSON-RPC batch counts each of its messages (each read is a request of its own to the upstream).
    const messages = Array.isArray(req.body) ? Math.max(1, req.body.length) : 1;
    const counters = [{ key: address.key, by: messages, ttlSeconds: address.ttlSeconds }];
    if (token) counters.push({ key: `${this.config.REDIS_PREFIX}:mcp:calls:${sha256(token)}:${Math.floor(Date.now() / 1000)}`, by: calls, ttlSeconds: 2 });
    const { counts: [n, c], report } = await countWindows(this.redis, counters);
    if (report) this.log.warn({ err: report.message }, 'gateway: redis unavailable, requests counted in this process');
    return { address: n!, reset: address.reset, ...(token ? { calls: c! } : {}) };
  }

  private async egress(orgId: string): Promise<EgressOptions> {
    return orgEgressOptions(this.config, await this.db.inOrg({ orgId }, (em) => orgAllowHosts(em, orgId)), { resolver: this.resolver });
  }

  /**
   * The Host (and Origin, when a browser sent one) must be ours: GATEWAY_ALLOWED_HOSTS /
   * GATEWAY_ALLOWED_ORIGINS, by default the public URL's (and the console's), plus loopback names
   * outside production or when no public URL is configured. Returns why a request is refused.
   */
  private rebinding(req: Request): string | null {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!host || !this.allowed.hosts.has(host)) {
      const name = host.replace(/:\d+$/, '');
      if (!(this.allowed.loopback && LOOPBACK.has(name))) return `The Host header "${host.slice(0, 200)}" is not one this gateway serves (DNS-rebinding protection; see GATEWAY_ALLOWED_HOSTS).`;
    }
    const origin = req.headers.origin?.toLowerCase();
    if (origin !== undefined && !this.allowed.origins.has(origin)) {
      let name = '';
      try {
        name = new URL(origin).hostname;
      } catch {
        // not a URL: refused below
      }
      if (!(this.allowed.loopback && LOOPBACK.has(name))) return `The Origin "${origin.slice(0, 200)}" may not use this gateway (DNS-rebinding protection; see GATEWAY_ALLOWED_ORIGINS).`;
    }
    return null;
  }

  /**
   * A request of a session is served under the protocol version the session negotiated at
   * initialize: a client that negotiated 2025-11-25 but names an older supported version in a
   * request's MCP-Protocol-Version header still gets that version's streams (a priming event with
   * the retry hint, resumable with Last-Event-ID), which the SDK decides from the header.
   */
  private sessionVersion(req: Request, s: GatewaySession): void {
    const header = req.headers['mcp-protocol-version'];
    if (typeof header !== 'string' || header === s.protocolVersion || !SUPPORTED_PROTOCOL_VERSIONS.includes(header) || header > s.protocolVersion) return;
    req.headers['mcp-protocol-version'] = s.protocolVersion;
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'mcp-protocol-version') req.rawHeaders[i + 1] = s.protocolVersion;
  }

  private async openSession(p: Principal, scope: string | null, init: { protocolVersion: string; capabilities?: Record<string, unknown>; clientInfo?: { name?: unknown; version?: unknown } }, counted: () => void): Promise<GatewaySession | null> {
    const installed: { name: string }[] = await this.db.inOrg({ orgId: p.orgId }, (em) => em.query(`SELECT name FROM connectors WHERE org_id = $1 AND status = 'active' ORDER BY name`, [p.orgId]));
    const names = ['workspace-files', ...installed.map((n) => n.name)].filter((n) => scope === null || hubIdOf(n) === scope);
    if (!names.length) return null;
    const hub = new ConnectorHub({ timeoutMs: this.config.GATEWAY_UPSTREAM_TIMEOUT_SECONDS * 1000, maxResultBytes: 1 << 20 });
    // What the client declared it can do for a server (sampling, elicitation): offered upstream only where the org allows it per connector.
    const caps = init.capabilities ?? {};
    // Sampling without its context: to the client Steward is one server, so "thisServer" would hand an upstream what every connector returned.
    const clientOffer: ClientOffer = {
      ...(isObject(caps.sampling) ? { sampling: Object.fromEntries(Object.entries(caps.sampling).filter(([k]) => k !== 'context')) } : {}),
      ...(isObject(caps.elicitation) ? { elicitation: caps.elicitation } : {}),
    };
    // A client that read untrusted content in an earlier session still has it in its model's context:
    // the same member, credential and client name start tainted, with the labels it had.
    const taintOf = { holder: p.mcpClientId ? `oauth:${p.mcpClientId}` : `${p.kind}:${p.credentialId}`, clientName: String(init.clientInfo?.name ?? 'unknown').slice(0, 200), saved: null };
    const [inherited]: { labels: string[] }[] = this.config.GATEWAY_TAINT_HOURS
      ? await this.db.inOrg({ orgId: p.orgId }, (em) =>
          em.query(`SELECT labels FROM mcp_client_taint WHERE org_id = $1 AND user_id = $2 AND holder = $3 AND client_name = $4 AND until > now()`, [p.orgId, p.userId, taintOf.holder, taintOf.clientName]),
        )
      : [];
    // Read before the connectors are: a change made meanwhile shows at the session's first check.
    const prints = await this.connectorPrints(p.orgId, true);
    const { manifests, targets, connectors } = await addTaskConnectors(
      hub,
      { ds: this.db.dataSource, dataDir: this.config.STEWARD_DATA_DIR, broker: this.broker, baseUrls: this.config.STEWARD_CONNECTOR_BASE_URLS, egress: (orgId) => this.egress(orgId), log: this.log },
      { orgId: p.orgId, userId: p.userId, taskId: null, client: 'mcp', clientOffer },
      names,
    );
    const server = new Server({ name: 'steward-gateway', version: '0.1.0' }, { capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true }, completions: {}, logging: {} } });
    const s: GatewaySession = {
      id: '',
      scope,
      active: [],
      connectors,
      protocolVersion: SUPPORTED_PROTOCOL_VERSIONS.includes(init.protocolVersion) ? init.protocolVersion : LATEST_PROTOCOL_VERSION,
      orgId: p.orgId,
      userId: p.userId,
      keyId: p.credentialId,
      oauthClientId: p.mcpClientId ?? null,
      server,
      hub,
      manifests,
      transport: undefined as unknown as StreamableHTTPServerTransport,
      json: undefined as unknown as JsonAnswers,
      gate: {
        ds: this.db.dataSource,
        redis: this.redis,
        redisPrefix: this.config.REDIS_PREFIX,
        keyring: this.keyring,
        policies: this.policies,
        hub,
        manifest: (id) => manifests[id],
        outcomes: this.outcomes,
        contexts: this.contexts,
        // Each call's credential decrypted for it alone, the decrypt audited in its claim's commit.
        credentials: { broker: this.broker, target: (id) => targets[id] },
        observer: this.observer,
      },
      lastSeen: Date.now(),
      tainted: !!inherited,
      labels: inherited?.labels ?? [],
      taintOf,
      waiting: 0,
      toolNames: exposedToolNames(manifests),
      subscribed: new Map(),
      logging: new Set(),
      generations: new ReadGenerations(),
      writeGenerations: new ReadGenerations(),
      resourceOwner: new ResourceOwners(),
      listed: {},
      calls: 0,
      prints: Object.fromEntries(Object.values(connectors).map((c) => [c.id, prints.get(c.id) ?? 'missing'])),
    };
    s.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new SessionEventStore(),
      // The retry hint of each stream's priming event: how long a client waits before it resumes a stream the gateway closed.
      retryInterval: this.config.GATEWAY_SSE_RETRY_MS,
      onsessioninitialized: async (id) => {
        s.id = id;
        this.sessions.set(id, s);
        // Recorded before the id reaches the client, whose next request may reach another process.
        await this.directory.publish(id, s.orgId, s.userId).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'gateway: session not recorded in redis; only this process can serve it'));
        counted();
        // Audited before the id reaches the client too (its calls' events come after); if it cannot be, the session is ended once answered.
        await this.recordOpen(s, p, init.clientInfo).catch((err: unknown) => this.log.error({ err: (err as Error).message, session: id }, 'gateway: the mcp.session_open audit event was not written; the session is ended'));
      },
    });
    s.transport.onclose = () => void this.closeSession(s, 'closed');
    // An upstream's log messages reach the client on the stream of the call in progress (else on the session's own stream).
    for (const id of Object.keys(manifests)) {
      if (!hub.has(id)) continue;
      hub.get(id).onLog = (params) => {
        // Only on a call to that same connector (never beside another connector's result), or on the
        // session's stream from a connector the member could read when the client set its level; at most 64 KB.
        const call = s.active.filter((a) => a.connector === id).at(-1);
        if (!call && !s.logging.has(id)) return;
        if (JSON.stringify(params).length > 65_536) return;
        void (call ? call.notify({ method: 'notifications/message', params }) : server.sendLoggingMessage(params)).catch(() => undefined);
      };
      // Sampling and elicitation the upstream asks for: relayed or refused, audited either way.
      hub.get(id).onServerRequest = (request, extra) => this.relay(s, id, request, extra.signal);
      // A resource this session subscribed to changed: the client is told, if the update comes from the connector its subscription went to.
      hub.get(id).onResourceUpdated = (uri) => {
        if (s.subscribed.get(uri)?.has(id)) void server.sendResourceUpdated({ uri }).catch(() => undefined);
      };
      // Its resources or prompts changed: a session that was shown them is told (once for several connectors telling at once).
      hub.get(id).onListChanged = (kind) => {
        if (s.listed[kind]?.split('\n').includes(id)) this.listChanged(s, kind);
      };
    }
    this.register(s);
    s.json = new JsonAnswers(s.transport);
    await server.connect(s.json);
    return s;
  }

  private async closeSession(s: GatewaySession, reason: CloseReason): Promise<void> {
    if (s.id && this.sessions.get(s.id) === s) {
      this.sessions.delete(s.id);
      await this.directory.remove(s.id, s.orgId, s.userId).catch(() => undefined);
      if (s.openedAt !== undefined) {
        await this.recordSession(s, 'mcp.session_close', { reason, calls: s.calls, seconds: Math.round((Date.now() - s.openedAt) / 1000) }).catch((err: unknown) =>
          this.log.error({ err: (err as Error).message, session: s.id }, 'gateway: the mcp.session_close audit event was not written'),
        );
      }
    }
    s.transport.onclose = undefined;
    // The server's own close handling (the SDK's): calls in progress are aborted (a Watched call
    // stops waiting, a relayed request stops), as when the client ends the session itself.
    s.json?.onclose?.();
    s.json?.abandon();
    // (The server let go of its transport above: the SDK transport is closed here, its open streams with it.)
    await s.transport.close().catch(() => undefined);
    await s.server.close().catch(() => undefined);
    await s.hub.close().catch(() => undefined);
  }

  private sweep(): void {
    const idle = Date.now() - this.config.GATEWAY_SESSION_IDLE_SECONDS * 1000;
    for (const s of this.sessions.values()) if (s.lastSeen < idle) void this.closeSession(s, 'idle');
    if (this.revalidating || !this.sessions.size) return;
    this.revalidating = this.revalidate()
      .then((n) => n && this.log.info({ sessions: n }, 'gateway: ended sessions whose key or token was revoked or expired, or whose member is no longer active'))
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'gateway: could not check the open sessions\' keys (tried again at the next sweep)'))
      .then(() => this.announceListChanges())
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'gateway: could not check whether the open sessions\' lists changed (tried again at the next sweep)'))
      .finally(() => (this.revalidating = null));
  }

  /**
   * Each installed connector's configuration print in an org: a digest of its status and settings,
   * of its tools' mappings, approvals and holds, and of the org's allowlist of hosts (a session's
   * connections were checked against the allowlist it began with: a host taken off it must not stay
   * reachable). Read at most once a second per org in this process (`fresh`: now).
   */
  private connectorPrints(orgId: string, fresh = false): Promise<Map<string, string>> {
    const cached = this.prints.get(orgId);
    if (!fresh && cached && Date.now() - cached.at < 1000) return cached.prints;
    const prints = this.db
      .inOrg({ orgId }, (em) =>
        em.query(
          `SELECT c.id, md5(concat_ws('|', c.status, c.url, c.auth::text, c.credential_scope, c.relay_sampling, c.relay_elicitation,
                    (SELECT string_agg(concat_ws(':', t.name, t.action, t.status, t.approved_hash, t.extract::text), ',' ORDER BY t.name)
                       FROM connector_tools t WHERE t.org_id = c.org_id AND t.connector_id = c.id),
                    (SELECT string_agg(h.host, ',' ORDER BY h.host) FROM egress_allow_hosts h WHERE h.org_id = c.org_id))) AS print
             FROM connectors c WHERE c.org_id = $1`,
          [orgId],
        ),
      )
      .then((rows: { id: string; print: string }[]) => new Map(rows.map((r) => [r.id, r.print])));
    const entry: { at: number; prints: Promise<Map<string, string>>; value?: Map<string, string> } = { at: Date.now(), prints };
    this.prints.set(orgId, entry);
    prints.then(
      (value) => void (entry.value = value),
      () => this.prints.get(orgId) === entry && this.prints.delete(orgId),
    );
    return prints;
  }

  /** Whether an admin changed (or removed) one of the session's connectors since it began. */
  private async connectorsChanged(s: GatewaySession): Promise<boolean> {
    // (Most calls find the org's prints read less than a second ago: compared without waiting.)
    const cached = this.prints.get(s.orgId);
    const now = cached?.value && Date.now() - cached.at < 1000 ? cached.value : await this.connectorPrints(s.orgId);
    for (const id in s.prints) if ((now.get(id) ?? 'missing') !== s.prints[id]) return true;
    return false;
  }

  /** A session whose connectors changed answers no more calls: it ends once this answer went out, and the client starts a new one. */
  private async refuseIfConnectorsChanged(s: GatewaySession): Promise<string | null> {
    if (!(await this.connectorsChanged(s))) return null;
    // Ended once this answer is on its way (any other call meanwhile is refused the same way).
    if (!s.ending) {
      s.ending = true;
      setTimeout(() => void this.closeSession(s, 'connectors_changed'), 250).unref();
    }
    return "The org's connectors changed since this session began (a tool's mapping, approval or hold, a connector's settings, or the org's allowed hosts): this session ends. Start a new session (reconnect) to use them as they are now.";
  }

  /**
   * Ends the open sessions of this process whose API key or access token was revoked or has expired,
   * or whose member is no longer active (suspended, removed): their streams close and their ids are
   * no longer known. Every request is authenticated anyway; this ends what no request comes to end —
   * a client's open GET stream, and the upstream sessions behind it. Run by the sweeper (every 10 s);
   * answers how many sessions it ended.
   */
  async revalidate(): Promise<number> {
    const byOrg = new Map<string, GatewaySession[]>();
    for (const s of this.sessions.values()) byOrg.set(s.orgId, [...(byOrg.get(s.orgId) ?? []), s]);
    let ended = 0;
    for (const [orgId, list] of byOrg) {
      const live: { id: string; user_id: string }[] = await this.db.inOrg({ orgId }, (em) =>
        em.query(
          `SELECT k.id, k.user_id FROM api_keys k JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.user_id AND m.status = 'active'
            WHERE k.org_id = $1 AND k.id = ANY($2::uuid[]) AND k.revoked_at IS NULL AND k.expires_at > now()
           UNION ALL
           SELECT t.id, t.user_id FROM mcp_access_tokens t JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id AND m.status = 'active'
            WHERE t.org_id = $1 AND t.id = ANY($2::uuid[]) AND t.revoked_at IS NULL AND t.expires_at > now()`,
          [orgId, [...new Set(list.map((s) => s.keyId))]],
        ),
      );
      const valid = new Set(live.map((r) => `${r.id}/${r.user_id}`));
      for (const s of list) {
        if (this.sessions.get(s.id) !== s) continue;
        if (!valid.has(`${s.keyId}/${s.userId}`)) await this.closeSession(s, 'revoked');
        else if (await this.connectorsChanged(s)) await this.closeSession(s, 'connectors_changed');
        else continue;
        ended++;
      }
    }
    return ended;
  }

  /** A session was opened: who, with which key or token, from which client and address, to which connectors. */
  private async recordOpen(s: GatewaySession, p: Principal, clientInfo: { name?: unknown; version?: unknown } = {}): Promise<void> {
    // The SDK server has not read the initialize request yet: its clientInfo is taken from the request itself.
    await this.recordSession(s, 'mcp.session_open', { mcp: viaOf(s, clientInfo), protocolVersion: s.protocolVersion, scope: s.scope, connectors: Object.values(s.connectors).map((c) => c.name), credential: { kind: p.kind, id: p.credentialId }, ...(s.tainted ? { inheritedTaint: s.labels } : {}) }, p);
    s.openedAt = Date.now();
  }

  private recordSession(s: GatewaySession, action: 'mcp.session_open' | 'mcp.session_close', payload: Record<string, unknown>, p?: Principal): Promise<void> {
    return this.db.inOrg({ orgId: s.orgId }, (em) =>
      recordEvent(em, this.keyring, {
        id: newId(),
        orgId: s.orgId,
        occurredAt: new Date(),
        actor: { type: 'user', id: s.userId },
        action,
        target: { type: 'McpSession', id: s.id },
        outcome: 'success',
        client: 'mcp',
        ...(p ? { sourceIp: p.sourceIp, requestId: p.requestId } : {}),
        payload: { mcp: viaOf(s), ...payload },
      }),
    ).then(() => undefined);
  }

  /**
   * Tells each open session whose tools, resources or prompts lists changed since it last asked for
   * them (notifications/<kind>/list_changed on its own stream): a policy made a tool Forbidden (or no
   * longer), the member joined or left a group, the session read untrusted content. One read per org
   * of what the lists depend on; a session's lists are worked out again only when that changed. Run
   * by the sweeper (every 10 s); answers how many notifications went out.
   */
  async announceListChanges(): Promise<number> {
    const byOrg = new Map<string, GatewaySession[]>();
    for (const s of this.sessions.values()) if (Object.keys(s.listed).length) byOrg.set(s.orgId, [...(byOrg.get(s.orgId) ?? []), s]);
    let told = 0;
    for (const [orgId, list] of byOrg) {
      const under = await this.db.inOrg({ orgId }, async (em) => {
        const [org]: { policy: string | null; domains: string[] }[] = await em.query(
          `SELECT (SELECT p.id || ':' || p.version || ':' || p.updated_at FROM policies p WHERE p.org_id = o.id AND p.status = 'active') AS policy, o.domains FROM orgs o WHERE o.id = $1`,
          [orgId],
        );
        const groups: { user_id: string; groups: string[] }[] = await em.query(
          `SELECT user_id, array_agg(group_id::text ORDER BY group_id::text) AS groups FROM group_members WHERE org_id = $1 AND user_id = ANY($2::uuid[]) GROUP BY user_id`,
          [orgId, [...new Set(list.map((s) => s.userId))]],
        );
        const byUser = new Map(groups.map((g) => [g.user_id, g.groups.join(',')]));
        return (s: GatewaySession) => [org?.policy ?? '', (org?.domains ?? []).join(','), byUser.get(s.userId) ?? '', s.tainted, s.labels.join(',')].join('|');
      });
      for (const s of list) {
        const now = under(s);
        if (s.checkedUnder === now || this.sessions.get(s.id) !== s) continue;
        s.checkedUnder = now;
        for (const kind of Object.keys(s.listed) as ListKind[]) {
          // A list that cannot be made now (the kill switch, a suspension): nothing to announce.
          const current = await (kind === 'tools' ? this.offered(s).then((o) => toolsDigest(o.tools)) : this.readable(s, kind).then((ids) => ids.join('\n'))).catch(() => null);
          if (current === null || current === s.listed[kind]) continue;
          s.listed[kind] = current;
          await sendListChanged(s, kind);
          told++;
        }
      }
    }
    return told;
  }

  /** An upstream's list changed: the session is told within 50 ms, once however many of its connectors told. */
  private listChanged(s: GatewaySession, kind: 'resources' | 'prompts'): void {
    if (s.changing) {
      s.changing.add(kind);
      return;
    }
    s.changing = new Set([kind]);
    setTimeout(() => {
      const kinds = s.changing ?? new Set<ListKind>();
      s.changing = undefined;
      if (this.sessions.get(s.id) === s) for (const k of kinds) void sendListChanged(s, k);
    }, 50).unref();
  }

  private register(s: GatewaySession): void {
    const { server } = s;
    // What a handler throws reaches the client as its error message: an McpError as it is (an
    // upstream's, or the gateway's own), an error meant for people (AppError, ConnectorError) by its
    // text; anything else (a database or Redis failure) only as "internal error", its detail logged.
    const guard =
      <A extends unknown[], R>(handler: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        try {
          return await handler(...args);
        } catch (err) {
          if (err instanceof McpError) throw err;
          if (err instanceof AppError) throw new McpError(err.status >= 500 ? McpErrorCode.InternalError : McpErrorCode.InvalidRequest, err.detail ?? err.message);
          if (err instanceof ConnectorError) throw new McpError(McpErrorCode.InternalError, err.message);
          const ref = newId();
          this.log.error({ err, ref, sessionId: s.id, orgId: s.orgId }, 'gateway: a request failed');
          throw new McpError(McpErrorCode.InternalError, `Steward could not answer this request (an internal error, reference ${ref}); try again.`);
        }
      };
    server.setRequestHandler(ListToolsRequestSchema, guard(async () => {
      const { tools } = await this.offered(s);
      s.listed.tools = toolsDigest(tools);
      return { tools };
    }));
    server.setRequestHandler(CallToolRequestSchema, guard(async (request, extra) => {
      s.lastSeen = Date.now();
      // Every tool of the session's connectors resolves (the gate decides it, Forbidden included); the names are fixed per session.
      const target = this.resolve(s, request.params.name);
      if (!target) throw new McpError(McpErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
      s.calls++;
      const meta = (request.params._meta ?? {}) as Record<string, unknown>;
      const asked = typeof meta[WAIT_META_KEY] === 'number' ? (meta[WAIT_META_KEY] as number) : Infinity;
      const waitMs = Math.max(0, Math.min(asked, this.config.GATEWAY_APPROVAL_WAIT_SECONDS)) * 1000;
      const notify: Notify = (n) => extra.sendNotification(n as never);
      const active: ActiveCall = { connector: target.connector, notify, request: (r, schema, o) => extra.sendRequest(r as never, schema, o) };
      s.active.push(active);
      try {
        return await callScope.run(active, () =>
          this.call(s, target, (request.params.arguments ?? {}) as Record<string, unknown>, {
            progressToken: meta.progressToken as string | number | undefined,
            waitMs,
            signal: extra.signal,
            notify,
            // The upstream closed the call's stream to have it polled (SEP-1699): the client's stream of the call is closed likewise; it resumes with Last-Event-ID.
            onStreamClosed: () => extra.closeSSEStream?.(),
          }),
        );
      } finally {
        s.active.splice(s.active.indexOf(active), 1);
      }
    }));
    server.setRequestHandler(SetLevelRequestSchema, guard(async (request) => {
      // Passed on only to the connectors the member may read now (none while agents are paused).
      const readable = await this.readable(s, 'logging');
      s.logging = new Set(readable);
      for (const id of readable) await s.hub.get(id).setLoggingLevel(request.params.level).catch(() => undefined);
      return {};
    }));
    server.setRequestHandler(CompleteRequestSchema, guard(async (request) => {
      const ref = request.params.ref;
      if (ref.type === 'ref/resource') boundedUri(ref.uri);
      const asked = { ref, argument: request.params.argument };
      let refused: unknown = null;
      const readable = await this.readable(s, 'completions').catch((err: unknown) => {
        refused = err;
        return [] as string[];
      });
      // A completion meant for a connector whose reads are refused (by the policy, the kill switch, the
      // member's state) asks that upstream nothing, and the refusal is recorded as a read's is (beforeRead).
      const meant = ref.type === 'ref/prompt' ? this.withCapability(s, 'completions').find((id) => s.scope || ref.name.startsWith(toolNameOf(id, ''))) : s.resourceOwner.get(ref.uri);
      if (meant !== undefined && !readable.includes(meant) && this.withCapability(s, 'completions').includes(meant)) {
        await this.beforeRead(s, meant, 'completion.complete', asked, ref.type === 'ref/resource' ? [ref.uri] : []);
        // Not refused after all: decided on the resource itself (as its read is), the policy lets it run.
        if (ref.type === 'ref/resource' && !refused) return s.hub.get(meant).complete(request.params);
      }
      if (refused) throw refused;
      for (const id of readable) {
        if (ref.type === 'ref/prompt') {
          const list = await this.pages(s, id, (c) => s.hub.get(id).listPrompts(c), (r) => r.prompts);
          const found = list.find((p) => this.nameOf(s, id, p.name) === ref.name);
          if (found) {
            // What the member typed goes upstream: recorded first (sealed), as a read is.
            await this.beforeRead(s, id, 'completion.complete', { ...asked, ref: { type: 'ref/prompt', name: found.name } });
            return s.hub.get(id).complete({ ...request.params, ref: { type: 'ref/prompt', name: found.name } });
          }
        } else if ((await this.resourceOwners(s, ref.uri, readable))[0] === id) {
          await this.beforeRead(s, id, 'completion.complete', asked, [ref.uri]);
          return s.hub.get(id).complete(request.params);
        }
      }
      return { completion: { values: [], total: 0, hasMore: false } };
    }));
    const subscription = (subscribe: boolean) => async (request: { params: { uri: string } }) => {
      const uri = boundedUri(request.params.uri);
      if (subscribe && !s.subscribed.has(uri) && s.subscribed.size >= MAX_SUBSCRIPTIONS) throw new McpError(McpErrorCode.InvalidRequest, `At most ${MAX_SUBSCRIPTIONS} resource subscriptions per session: unsubscribe from one first.`);
      const owners = await this.resourceOwners(s, uri, await this.readable(s, 'resources'));
      for (const id of owners.filter((o) => s.hub.get(o).capabilities().resources?.subscribe)) {
        // Remembered only where the upstream took it (a made-up URI it refused holds nothing here).
        const took = await s.hub
          .get(id)
          .subscribeResource(uri, subscribe)
          .then(() => true, () => false);
        const by = s.subscribed.get(uri) ?? new Set<string>();
        if (subscribe && took) s.subscribed.set(uri, by.add(id));
        else if (!subscribe && by.delete(id) && !by.size) s.subscribed.delete(uri);
      }
      return {};
    };
    server.setRequestHandler(SubscribeRequestSchema, guard(subscription(true)));
    server.setRequestHandler(UnsubscribeRequestSchema, guard(subscription(false)));
    server.setRequestHandler(ListResourcesRequestSchema, guard(async () => {
      const resources: Resource[] = [];
      const readable = await this.readable(s, 'resources');
      s.listed.resources = readable.join('\n');
      for (const id of readable) {
        // A URI another connector listed first stays that connector's (an upstream cannot take over another's reads); the session remembers a bounded number.
        resources.push(...s.resourceOwner.claim(id, await this.pages(s, id, (c) => s.hub.get(id).listResources(c), (p) => p.resources)));
      }
      return { resources };
    }));
    server.setRequestHandler(ListResourceTemplatesRequestSchema, guard(async () => {
      const resourceTemplates: ResourceTemplate[] = [];
      for (const id of await this.readable(s, 'resources')) resourceTemplates.push(...(await this.pages(s, id, (c) => s.hub.get(id).listResourceTemplates(c), (p) => p.resourceTemplates)));
      return { resourceTemplates };
    }));
    server.setRequestHandler(ReadResourceRequestSchema, guard(async (request) => {
      const uri = boundedUri(request.params.uri);
      // Read from the connector that listed it, else the one whose template matches it (never every upstream in turn).
      const [id] = await this.resourceOwners(s, uri, this.withCapability(s, 'resources'));
      if (id === undefined) throw new McpError(McpErrorCode.InvalidParams, `Resource not found: ${uri}`);
      await this.beforeRead(s, id, 'resource.read', { uri }, [uri]);
      try {
        const read = await s.hub.get(id).readResource(uri);
        await this.afterRead(s, id);
        return read;
      } catch (err) {
        // An upstream's error text is its words too: the session is tainted as by what it reads.
        if (err instanceof ConnectorError) await this.afterRead(s, id);
        throw new McpError(McpErrorCode.InvalidParams, `Resource not found: ${uri}${err instanceof ConnectorError ? ` (${err.message})` : ''}`);
      }
    }));
    server.setRequestHandler(ListPromptsRequestSchema, guard(async () => {
      const prompts: Prompt[] = [];
      const readable = await this.readable(s, 'prompts');
      s.listed.prompts = readable.join('\n');
      for (const id of readable) {
        for (const p of await this.pages(s, id, (c) => s.hub.get(id).listPrompts(c), (r) => r.prompts)) prompts.push({ ...p, name: this.nameOf(s, id, p.name) });
      }
      return { prompts };
    }));
    server.setRequestHandler(GetPromptRequestSchema, guard(async (request) => {
      // A connector whose reads the policy does not let run is not asked for its prompts at all: the refusal is recorded (beforeRead).
      const allowed = new Set(await this.readable(s, 'prompts').catch(() => [] as string[]));
      for (const id of this.withCapability(s, 'prompts')) {
        if (!s.scope && !request.params.name.startsWith(toolNameOf(id, ''))) continue;
        if (!allowed.has(id)) await this.beforeRead(s, id, 'prompt.get', { name: request.params.name, arguments: request.params.arguments ?? {} });
        const list = await this.pages(s, id, (c) => s.hub.get(id).listPrompts(c), (r) => r.prompts);
        const found = list.find((p) => this.nameOf(s, id, p.name) === request.params.name);
        if (found) {
          await this.beforeRead(s, id, 'prompt.get', { name: found.name, arguments: request.params.arguments ?? {} });
          // Taints whether it answers or fails (an error's text is the upstream's words too).
          const prompt = await s.hub.get(id).getPrompt(found.name, request.params.arguments).finally(() => this.afterRead(s, id));
          return prompt;
        }
      }
      throw new McpError(McpErrorCode.InvalidParams, `Unknown prompt: ${request.params.name}`);
    }));
  }

  /**
   * The connectors whose resources or prompts this member may read now, for the lists, completions
   * and subscriptions: refused outright while the org's agents are paused, the member is not
   * active or the org has no active policy; otherwise the connectors whose reads the policy lets
   * run (Autonomous or Batched; a Forbidden or Watched read is left out).
   */
  private async readable(s: GatewaySession, what: 'resources' | 'prompts' | 'completions' | 'logging'): Promise<string[]> {
    const ids = this.withCapability(s, what);
    if (!ids.length) return ids;
    const { refusal, levels } = await this.db.inOrg({ orgId: s.orgId, userId: s.userId }, async (em) => {
      const check = await this.readCheck(em, s);
      if ('refusal' in check) return { refusal: check.refusal, levels: new Map<string, ReadRefusal | null>() };
      return { refusal: null, levels: new Map(ids.map((id) => [id, check.decide(id, [])] as const)) };
    });
    if (refusal) throw new McpError(McpErrorCode.InvalidRequest, `Refused by Steward (${refusal}): ${READ_REFUSALS[refusal]}`);
    return ids.filter((id) => levels.get(id) === null);
  }

  /** The kill switch, the member's state and the active policy, read in the caller's transaction: a refusal, or how a connector's read is decided. */
  private async readCheck(
    em: EntityManager,
    s: GatewaySession,
  ): Promise<{ refusal: ReadRefusal } | { decide: (id: string, resources: string[], rateExceeded?: string[]) => ReadRefusal | null; version: number; compiled: CompiledPolicy }> {
    const [row]: { paused: boolean; status: string | null; domains: string[] }[] = await em.query(
      `SELECT o.agents_paused_at IS NOT NULL AS paused, m.status, o.domains FROM orgs o LEFT JOIN memberships m ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1`,
      [s.orgId, s.userId],
    );
    if (!row || row.paused) return { refusal: 'paused' };
    if (row.status !== 'active') return { refusal: 'suspended' };
    const policy = await this.policies.active(em, s.orgId);
    if (!policy) return { refusal: 'no_policy' };
    const groups = ((await em.query('SELECT group_id FROM group_members WHERE org_id = $1 AND user_id = $2', [s.orgId, s.userId])) as { group_id: string }[]).map((g) => g.group_id);
    const principal = { userId: s.userId, groupIds: groups };
    return {
      version: policy.version,
      compiled: policy.compiled,
      decide: (id, resources, rateExceeded = []) => {
        const action = readActionOf(s.manifests[id]);
        const context = { connector: id, tainted: s.tainted, labels: s.labels, ...(resources.length ? { resources } : {}), ...(rateExceeded.length ? { rateExceeded } : {}) };
        const level = decide(policy.compiled, principal, action, context, { domains: row.domains }).level;
        if (level === 'forbidden') return 'forbidden';
        if (level === 'watched') return 'watched';
        return authorize(policy.ability, toFacts(principal, action, context, { domains: row.domains }), level) ? null : 'not_authorized';
      },
    };
  }

  /**
   * Which of `among` serves a resource URI: the connector that listed it, else those whose resource
   * templates match it (listed now if need be), else the only connector with resources.
   */
  private async resourceOwners(s: GatewaySession, uri: string, among: string[]): Promise<string[]> {
    const owner = s.resourceOwner.get(uri);
    if (owner !== undefined) return among.includes(owner) ? [owner] : [];
    if (among.length <= 1) return among;
    // Asking upstreams for their templates: not while the org's agents are paused or the member is not active (refused here).
    const allowed = new Set(await this.readable(s, 'resources'));
    const matching: string[] = [];
    for (const id of among.filter((x) => allowed.has(x))) {
      const templates = await this.pages(s, id, (c) => s.hub.get(id).listResourceTemplates(c), (p) => p.resourceTemplates).catch(() => []);
      if (templates.some((t) => new UriTemplate(t.uriTemplate).match(uri) !== null)) matching.push(id);
    }
    return matching;
  }

  /**
   * Before a resource read or a prompt fetched from an upstream: not a tool call (the policy has no
   * action type for it), but still an agent reading through Steward. Refused while the org's agents
   * are paused or the member is not active (the kill switch stops every path), and recorded before it
   * is made, in the same transaction as that check: an audit event (`mcp.resource.read` /
   * `mcp.prompt.get`) naming the member, connector, session and client, with the digest of what was
   * asked; the URI or the prompt's arguments themselves are sealed under the member's key.
   */
  private async beforeRead(s: GatewaySession, hubId: string, kind: 'resource.read' | 'prompt.get' | 'completion.complete', asked: Record<string, unknown>, resources: string[] = []): Promise<void> {
    const changed = await this.refuseIfConnectorsChanged(s);
    if (changed) throw new McpError(McpErrorCode.InvalidRequest, changed);
    const body = canonical(asked);
    const refusal = await this.db.inOrg({ orgId: s.orgId, userId: s.userId }, async (em) => {
      // Decided as a read of the connector (the action type of its read-only tools, else saas.read) on the active policy.
      const check = await this.readCheck(em, s);
      // The policy's rate limits count these reads as they count tool calls of the same action type
      // (reserved across processes; Redis not answering counts each limit as exceeded, as in the gate).
      const reservation = 'compiled' in check ? await reserve(this.redis, s.orgId, s.userId, rateLimitsFor(check.compiled, readActionOf(s.manifests[hubId])), new Date(), 250, this.config.REDIS_PREFIX) : null;
      const refused: ReadRefusal | null = 'refusal' in check ? check.refusal : check.decide(hubId, resources, reservation?.exceeded ?? []);
      await recordEvent(em, this.keyring, {
        id: newId(),
        orgId: s.orgId,
        occurredAt: new Date(),
        actor: { type: 'user', id: s.userId },
        action: `mcp.${kind}`,
        target: { type: 'Connector', id: s.connectors[hubId]?.id ?? null },
        decision: refused ? `denied_${refused}` : 'allowed',
        outcome: refused ? 'denied' : 'success',
        connector: hubId,
        client: 'mcp',
        policyVersion: 'version' in check ? check.version : null,
        payload: {
          connector: s.connectors[hubId]?.name ?? hubId,
          decidedAs: readActionOf(s.manifests[hubId]),
          mcp: viaOf(s),
          request: { digest: sha256(body), bytes: Buffer.byteLength(body) },
          ...(reservation?.exceeded.length ? { rateLimited: reservation.exceeded, rateLimitsUnavailable: reservation.unavailable } : {}),
          ...(refused ? { refusal: refused } : {}),
        },
        sensitive: { request: body.slice(0, 4000) },
        subject: s.userId,
      });
      return refused;
    });
    if (refusal) throw new McpError(McpErrorCode.InvalidRequest, `Refused by Steward (${refusal}): ${READ_REFUSALS[refusal]}`);
  }

  /** After an upstream's resource or prompt was read, or its tool's error text passed on: that content is the upstream's, not the org's — the session's outbound actions are decided as tainted from now on. */
  private async afterRead(s: GatewaySession, hubId: string): Promise<void> {
    if (s.manifests[hubId]?.runtime.kind === 'builtin') return;
    s.tainted = true;
    if (!s.labels.includes('untrusted')) s.labels = [...s.labels, 'untrusted'].sort();
    await this.saveTaint(s);
  }

  /**
   * Keeps a tainted session's taint for its client's next sessions (GATEWAY_TAINT_HOURS from now):
   * written when its labels change, and at most every ten minutes otherwise. A write that fails is
   * logged; this session stays tainted whatever happens.
   */
  private async saveTaint(s: GatewaySession): Promise<void> {
    if (!s.tainted || !this.config.GATEWAY_TAINT_HOURS) return;
    const labels = s.labels.join(',');
    if (s.taintOf.saved && s.taintOf.saved.labels === labels && Date.now() - s.taintOf.saved.at < 600_000) return;
    s.taintOf.saved = { labels, at: Date.now() };
    await this.db
      .inOrg({ orgId: s.orgId }, (em) =>
        em.query(
          `INSERT INTO mcp_client_taint AS t (org_id, user_id, holder, client_name, labels, until) VALUES ($1, $2, $3, $4, $5, now() + make_interval(hours => $6))
           ON CONFLICT (org_id, user_id, holder, client_name) DO UPDATE
              SET labels = CASE WHEN t.until > now() THEN ARRAY(SELECT DISTINCT l FROM unnest(t.labels || EXCLUDED.labels) AS l ORDER BY l) ELSE EXCLUDED.labels END,
                  until = greatest(t.until, EXCLUDED.until), updated_at = now()`,
          [s.orgId, s.userId, s.taintOf.holder, s.taintOf.clientName, s.labels, this.config.GATEWAY_TAINT_HOURS],
        ),
      )
      .catch((err: unknown) => {
        s.taintOf.saved = null;
        this.log.error({ err: (err as Error).message, session: s.id }, "gateway: a session's taint was not kept for its client's next sessions");
      });
  }

  /** A prompt's name as the session shows it: its own under /mcp/<connector>, else `<connector>__<name>`. */
  private nameOf(s: GatewaySession, connector: string, name: string): string {
    return s.scope ? name : toolNameOf(connector, name);
  }

  /** A tool's name as the session shows it: its own under /mcp/<connector>, else namespaced and unique among the session's tools. */
  private toolName(s: GatewaySession, connector: string, tool: string): string {
    return s.scope ? tool : (s.toolNames.get(`${connector}\n${tool}`) ?? toolNameOf(connector, tool));
  }

  private withCapability(s: GatewaySession, what: 'resources' | 'prompts' | 'completions' | 'logging'): string[] {
    return Object.keys(s.manifests).filter((id) => s.hub.has(id) && s.hub.get(id).capabilities()[what]);
  }

  private async pages<P extends { nextCursor?: string }, T>(s: GatewaySession, id: string, fetch: (cursor?: string) => Promise<P>, items: (p: P) => T[]): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const p = await fetch(cursor).catch(async (err) => {
        // The upstream's own words reach the client: read from it, as any text of a remote connector is.
        await this.afterRead(s, id);
        throw new McpError(McpErrorCode.InternalError, `${id}: ${(err as Error).message}`);
      });
      out.push(...items(p));
      cursor = p.nextCursor;
      if (!cursor) break;
    }
    return out;
  }

  private resolve(s: GatewaySession, name: string): { connector: string; tool: string; readOnly: boolean } | undefined {
    for (const [connector, manifest] of Object.entries(s.manifests)) {
      for (const spec of manifest.tools) if (this.toolName(s, connector, spec.name) === name) return { connector, tool: spec.name, readOnly: !!spec.readOnly };
    }
    return undefined;
  }

  /** The tools this user may use now (not Forbidden by the active policy), and every tool of the session's connectors by name. */
  private async offered(s: GatewaySession): Promise<{ tools: Tool[]; byName: Map<string, { connector: string; tool: string; readOnly: boolean }> }> {
    const { policy, groups, domains } = await this.db.inOrg({ orgId: s.orgId }, async (em) => ({
      policy: await this.policies.active(em, s.orgId),
      groups: ((await em.query('SELECT group_id FROM group_members WHERE org_id = $1 AND user_id = $2', [s.orgId, s.userId])) as { group_id: string }[]).map((g) => g.group_id),
      domains: ((await em.query('SELECT domains FROM orgs WHERE id = $1', [s.orgId]))[0]?.domains ?? []) as string[],
    }));
    const tools: Tool[] = [];
    const byName = new Map<string, { connector: string; tool: string; readOnly: boolean }>();
    for (const [connector, manifest] of Object.entries(s.manifests)) {
      for (const spec of manifest.tools) {
        const action = isActionType(spec.action) ? (spec.action as ActionType) : 'unknown';
        // Decided as its calls will be: on the session's taint and the labels of what it read (a tainted session's outbound tools may be Watched).
        const level: Level = policy ? decide(policy.compiled, { userId: s.userId, groupIds: groups }, action, { connector, tainted: s.tainted, labels: s.labels }, { domains }).level : 'forbidden';
        const name = this.toolName(s, connector, spec.name);
        // Every tool resolves (a call to one not offered still goes through the gate, which decides it); only those not Forbidden are offered.
        byName.set(name, { connector, tool: spec.name, readOnly: !!spec.readOnly });
        if (level === 'forbidden') continue;
        // A Batched write with no reversible form waits like Watched (the gate decides so): said so.
        const shown: Level = level === 'batched' && !spec.readOnly && !spec.reversible ? 'watched' : level;
        tools.push({
          name,
          description: `${LEVEL_NOTE[shown] ?? ''}${spec.description}`.slice(0, 2000),
          inputSchema: spec.inputSchema as Tool['inputSchema'],
          ...(spec.readOnly ? { annotations: { readOnlyHint: true } } : {}),
        });
      }
    }
    return { tools, byName };
  }

  private async call(
    s: GatewaySession,
    target: { connector: string; tool: string; readOnly: boolean },
    args: Record<string, unknown>,
    o: { progressToken?: string | number; waitMs: number; signal: AbortSignal; notify: Notify; onStreamClosed?: () => void },
  ): Promise<CallToolResult> {
    // The action id's claim: session + connector/tool + argument digest (a retry with a new JSON-RPC id is the same action).
    // A read that completed may be made again (a new generation); a write may not — unless it was
    // refused for a reason that passes (the kill switch, a suspension, no active policy): then it is decided again.
    const changed = await this.refuseIfConnectorsChanged(s);
    if (changed) return toolError(changed, { 'steward/status': 'refused', 'steward/refusal': 'connectors_changed' });
    const argsDigest = sha256(canonical(args));
    const base = `${s.id}\n${target.connector}\n${target.tool}\n${argsDigest}`;
    const generations = target.readOnly ? s.generations : s.writeGenerations;
    const generation = generations.of(base);
    // A Watched call approved since it was made (in this session or another of the same user) is
    // redeemed under its own claim: the gate asks for it only when it decides the call Watched.
    const request: ActionRequest = {
      orgId: s.orgId,
      userId: s.userId,
      claim: { gatewayKey: `mcp:${sha256(`${base}\n${generation}`)}`, approved: () => this.approvedClaim(s, target, argsDigest) },
      connector: target.connector,
      tool: target.tool,
      args,
      tainted: s.tainted,
      labels: s.labels,
      client: 'mcp' as const,
      via: viaOf(s),
      // The upstream's progress, relayed under the client's own token.
      ...(o.progressToken !== undefined ? { onProgress: (p: { progress: number; total?: number; message?: string }) => void o.notify({ method: 'notifications/progress', params: { ...p, progressToken: o.progressToken! } }).catch(() => undefined) } : {}),
      ...(o.onStreamClosed ? { onStreamClosed: o.onStreamClosed } : {}),
      // An upstream that may ask the user for input during the call (elicitation relayed): a person answers, so the call may take longer.
      ...(s.connectors[target.connector]?.elicits ? { timeoutMs: this.config.GATEWAY_ELICITATION_WAIT_SECONDS * 1000 } : {}),
    };
    let r: GateResult = await gateAction(s.gate, request);
    // Each waiting call reads its approval every poll: a session may have only so many waiting (the others answer at once, pending).
    const waits = r.status === 'awaiting_approval' && s.waiting < this.config.GATEWAY_MAX_WAITING_CALLS_PER_SESSION;
    let approvalId: string | null = null;
    if (waits) s.waiting++;
    try {
      if (r.status === 'awaiting_approval') ({ r, approvalId } = await this.awaitApproval(s, request, r, waits ? o.waitMs : 0, o));
    } finally {
      if (waits) s.waiting--;
    }
    if (r.status === 'awaiting_approval') {
      return toolError(
        `Held for approval: approval ${approvalId ?? '(pending)'} waits for a person (action ${r.actionId}: ${r.reason}). ` +
          `An approver decides it in the Steward console under Approvals, or with POST /v1/approvals/${approvalId ?? '{id}'}/approve. ` +
          'Once it is approved, call this tool again with the same arguments (in this session or a new one): it then runs, once.',
        { 'steward/action-id': r.actionId, 'steward/approval-id': approvalId, 'steward/level': 'watched', 'steward/status': 'awaiting_approval' },
      );
    }
    // A read that ran (or failed) may be made again as a new action; a refusal that passes (the kill
    // switch, a suspension) is decided again. A Forbidden read retried stays the same refused action:
    // it opens no second violation.
    if (r.status === 'executed' || r.status === 'failed' || (r.status === 'refused' && PASSING_REFUSALS.has(r.refusal))) {
      if (target.readOnly || r.status === 'refused') generations.bump(base);
    }
    switch (r.status) {
      case 'executed': {
        const got = r.result.labels ?? [];
        if (got.length) s.labels = [...new Set([...s.labels, ...got])].sort();
        if (got.includes('untrusted') || got.includes('external')) s.tainted = true;
        if (got.length) await this.saveTaint(s);
        const meta = { 'steward/action-id': r.actionId, 'steward/level': r.level, 'steward/status': 'executed' };
        const content = [...r.result.content];
        if (r.level === 'batched') {
          content.push({
            type: 'text',
            text: r.reversible
              ? `Held for review: this action ran in its reversible form and waits for a reviewer to accept or revert it (action ${r.actionId}; Reviews → MCP gateway in the Steward console, or \`steward reviews --gateway\`).`
              : `Held for review: this read ran and is on record for a reviewer (action ${r.actionId}); there is nothing to undo.`,
          });
        }
        return { content, ...(r.result.structuredContent ? { structuredContent: r.result.structuredContent } : {}), _meta: meta };
      }
      case 'refused':
        return toolError(`Refused by Steward (${r.refusal}): ${REFUSALS[r.refusal] ?? r.reason}${r.detail ? ` What does not fit: ${r.detail}.` : ''}`, { 'steward/action-id': r.actionId, 'steward/level': r.level, 'steward/status': 'refused', 'steward/refusal': r.refusal });
      case 'failed':
        // A remote MCP server's error carries its own text to the client's model, as a result would: the session is tainted.
        await this.afterRead(s, target.connector);
        return toolError(`The tool failed (${r.error.code}): ${r.error.message}`, { 'steward/action-id': r.actionId, 'steward/status': 'failed' });
      case 'outcome_unknown':
        // Its message may carry the remote server's own text (an error page): the session is tainted, as for a failure.
        await this.afterRead(s, target.connector);
        return toolError(
          `The call ended without a clear answer (${r.error.code}: ${r.error.message}) after it may have been carried out. It is not run again, and must not be tried again: a person settles whether it was done (action ${r.actionId}).`,
          { 'steward/action-id': r.actionId, 'steward/status': 'outcome_unknown' },
        );
      case 'duplicate':
        // A read that ran under its approval from another session: the next identical read here is a new action.
        if (target.readOnly && (r.state === 'succeeded' || r.state === 'failed')) generations.bump(base);
        return toolError(
          r.state === 'succeeded' || r.state === 'failed'
            ? target.readOnly
              ? `This read was already carried out under its approval (action ${r.actionId}, ${r.state}); it is not run twice. Call it again to read afresh (a new action).`
              : `This action was already carried out (action ${r.actionId}, ${r.state}); it is not run twice. Start a new session to do it again.`
            : r.state === 'refused'
              ? `This action was refused earlier in this session (action ${r.actionId}); it is not asked again in this session.`
              : `This action is already under way or its outcome is not known (action ${r.actionId}, ${r.state}); it is not run again.`,
          { 'steward/action-id': r.actionId, 'steward/status': 'duplicate', 'steward/state': r.state },
        );
      default:
        return toolError('The action is waiting for approval.', {});
    }
  }

  /**
   * A Watched call waits up to `waitMs` for its approval (read every GATEWAY_APPROVAL_POLL_MS,
   * progress sent where the client gave a token); decided meanwhile, the gate decides again and
   * redeems it (or refuses), once. With no time to wait, the approval is read once (its id named).
   */
  /** Whether the session's key or token is live and the member's roles still let them run agent actions. */
  private async mayStillAct(s: GatewaySession): Promise<boolean> {
    return this.db.inOrg({ orgId: s.orgId }, async (em) => {
      const live: unknown[] = await em.query(
        `SELECT 1 FROM api_keys WHERE org_id = $1 AND id = $2 AND user_id = $3 AND revoked_at IS NULL AND expires_at > now()
         UNION ALL SELECT 1 FROM mcp_access_tokens WHERE org_id = $1 AND id = $2 AND user_id = $3 AND revoked_at IS NULL AND expires_at > now()`,
        [s.orgId, s.keyId, s.userId],
      );
      if (!live.length) return false;
      const { rules } = await this.access.roleSet(em, s.orgId, s.userId);
      return buildAbility(rules, s.userId).can('create', subjectOf('Task', { userId: s.userId }));
    });
  }

  private async awaitApproval(s: GatewaySession, request: ActionRequest, first: GateResult & { status: 'awaiting_approval' }, waitMs: number, o: { progressToken?: string | number; signal: AbortSignal; notify: Notify }): Promise<{ r: GateResult; approvalId: string | null }> {
    const deadline = Date.now() + waitMs;
    let progress = 0;
    let approvalId: string | null = null;
    // (A shutdown ends the wait: the call answers with its pending approval, to be made again elsewhere.)
    while (!o.signal.aborted && !this.lifecycle.stopping) {
      const a = await this.approvalOf(s.orgId, first.actionId);
      approvalId = a?.id ?? approvalId;
      // Decided: redeemed only while the session is open and the call wanted (else the approval stays for the same call made again).
      if (a && a.state !== 'pending') {
        if (o.signal.aborted || this.sessions.get(s.id) !== s) break;
        // The session's credential and the member's roles as they are now (the sweep that ends
        // sessions runs every few seconds; a wait can last minutes): a member who lost the right to
        // run agent actions, or whose key was revoked, meanwhile has nothing redeemed.
        if (!(await this.mayStillAct(s))) break;
        return { r: await gateAction(s.gate, request), approvalId };
      }
      if (Date.now() >= deadline) break;
      if (o.progressToken !== undefined) {
        await o.notify({ method: 'notifications/progress', params: { progressToken: o.progressToken, progress: ++progress, message: `Waiting for a person to approve (approval ${approvalId ?? 'pending'})` } }).catch(() => undefined);
      }
      await sleep(Math.min(this.config.GATEWAY_APPROVAL_POLL_MS, Math.max(0, deadline - Date.now())));
    }
    return { r: first, approvalId };
  }

  /**
   * An upstream's sampling/createMessage or elicitation/create: relayed to the client on the stream
   * of the call in progress (the answer goes back upstream) where the org allows it for this
   * connector and the client declared the capability; otherwise the upstream gets a JSON-RPC error.
   * Either way an audit event (`mcp.sampling` / `mcp.elicitation`) names the user, connector,
   * session, client and outcome with the digest and size of the request (never its text).
   */
  private async relay(s: GatewaySession, hubId: string, request: { method: string; params?: Record<string, unknown> }, signal: AbortSignal): Promise<Record<string, unknown>> {
    const kind = request.method === 'sampling/createMessage' ? 'sampling' : request.method === 'elicitation/create' ? 'elicitation' : null;
    if (!kind) throw new McpError(McpErrorCode.MethodNotFound, `Method not found: ${request.method}`);
    const connector = s.connectors[hubId];
    const body = canonical(request.params ?? {});
    const caps = s.server.getClientCapabilities() ?? {};
    const mode = kind === 'elicitation' && request.params?.mode === 'url' ? 'url' : 'form';
    const record = (outcome: 'relaying' | 'relayed' | 'refused' | 'error', detail: Record<string, unknown>) =>
      this.db.inOrg({ orgId: s.orgId }, (em) =>
        recordEvent(em, this.keyring, {
          id: newId(),
          orgId: s.orgId,
          occurredAt: new Date(),
          actor: { type: 'user', id: s.userId },
          action: `mcp.${kind}`,
          target: { type: 'Connector', id: connector?.id ?? null },
          outcome: outcome === 'relaying' || outcome === 'relayed' ? 'success' : outcome === 'refused' ? 'denied' : 'failure',
          connector: hubId,
          client: 'mcp',
          payload: {
            outcome,
            connector: connector?.name ?? hubId,
            mcp: viaOf(s),
            request: { method: request.method, digest: sha256(body), bytes: Buffer.byteLength(body), ...(kind === 'elicitation' ? { mode } : {}) },
            ...detail,
          },
        }),
      );
    const audit = (outcome: 'relayed' | 'refused' | 'error', detail: Record<string, unknown>) =>
      record(outcome, detail).catch((err) => this.log.error({ err: (err as Error).message, session: s.id, connector: hubId }, `gateway: the mcp.${kind} audit event was not written`));
    const refuse = async (reason: string, message: string): Promise<never> => {
      await audit('refused', { reason });
      throw new McpError(McpErrorCode.InvalidRequest, message);
    };
    // The org's permission for this connector, read now, with the kill switch and the member's state (a paused org relays nothing).
    const [row]: { relay_sampling: boolean | null; relay_elicitation: boolean | null; paused: boolean; status: string | null }[] = await this.db.inOrg({ orgId: s.orgId }, (em) =>
      em.query(
        `SELECT c.relay_sampling, c.relay_elicitation, o.agents_paused_at IS NOT NULL AS paused, m.status
           FROM orgs o LEFT JOIN connectors c ON c.org_id = o.id AND c.id = $2 LEFT JOIN memberships m ON m.org_id = o.id AND m.user_id = $3
          WHERE o.id = $1`,
        [s.orgId, connector?.id ?? null, s.userId],
      ),
    );
    if (!row || row.paused) return refuse('paused', `Steward: ${REFUSALS.paused}; the ${kind} request was not relayed`);
    if (row.status !== 'active') return refuse('suspended', `Steward: ${REFUSALS.suspended}; the ${kind} request was not relayed`);
    if (!connector || !(kind === 'sampling' ? row.relay_sampling : row.relay_elicitation)) {
      return refuse('not_allowed', `Steward: this organisation does not allow ${kind === 'sampling' ? 'sampling (sampling/createMessage)' : 'elicitation (elicitation/create)'} for connector "${connector?.name ?? hubId}"`);
    }
    const declared = kind === 'sampling' ? isObject(caps.sampling) : isObject(caps.elicitation) && (mode === 'url' ? isObject(caps.elicitation.url) : isObject(caps.elicitation.form) || !isObject(caps.elicitation.url));
    if (!declared) return refuse('client_capability', `Steward: the MCP client did not declare the ${kind}${kind === 'elicitation' ? ` (${mode})` : ''} capability; the request was not relayed`);
    const call = callScope.getStore() ?? s.active.filter((a) => a.connector === hubId).at(-1);
    if (!call || call.connector !== hubId) return refuse('no_call', `Steward relays ${kind} requests only during a tool call of this connector`);
    // Written ahead: the relay is recorded before the client is asked; nothing is relayed unless that record commits.
    try {
      await record('relaying', {});
    } catch (err) {
      this.log.error({ err: (err as Error).message, session: s.id, connector: hubId }, `gateway: the mcp.${kind} audit event was not written; not relayed`);
      throw new McpError(McpErrorCode.InternalError, `Steward could not record the ${kind} request; it was not relayed`);
    }
    try {
      // An upstream's sampling request never takes the client's context along (what other connectors returned to its model).
      const params = kind === 'sampling' && request.params && 'includeContext' in request.params ? { ...request.params, includeContext: 'none' } : request.params;
      const result = (await call.request({ method: request.method, params }, kind === 'sampling' ? CreateMessageResultSchema : ElicitResultSchema, { signal, timeout: RELAY_TIMEOUT_MS })) as Record<string, unknown>;
      const answer = canonical(result);
      await audit('relayed', { answer: { bytes: Buffer.byteLength(answer), ...(kind === 'elicitation' ? { action: result.action } : { model: String(result.model ?? '').slice(0, 200), stopReason: result.stopReason ?? null }) } });
      return result;
    } catch (err) {
      await audit('error', { error: { code: err instanceof McpError ? err.code : null, message: (err as Error).message.slice(0, 300) } });
      throw err;
    }
  }

  /** The claim of this user's identical gateway call that waits with an approved, unexpired approval (null: none). */
  private async approvedClaim(s: GatewaySession, target: { connector: string; tool: string }, argsDigest: string): Promise<string | null> {
    const [row]: { gateway_key: string }[] = await this.db.inOrg({ orgId: s.orgId }, (em) =>
      em.query(
        `SELECT t.gateway_key FROM task_actions t JOIN approvals a ON a.org_id = t.org_id AND a.action_id = t.id AND a.kind = 'action'
          WHERE t.org_id = $1 AND t.user_id = $2 AND t.connector = $3 AND t.tool = $4 AND t.gateway_key IS NOT NULL AND t.state = 'awaiting_approval'
            AND a.args_digest = $5 AND a.state = 'approved' AND a.expires_at > now() AND a.requested_by = $2
          ORDER BY a.decided_at DESC NULLS LAST LIMIT 1`,
        [s.orgId, s.userId, target.connector, target.tool, argsDigest],
      ),
    );
    return row?.gateway_key ?? null;
  }

  private async approvalOf(orgId: string, actionId: string): Promise<{ id: string; state: string } | null> {
    const [a]: { id: string; state: string; expired: boolean }[] = await this.db.inOrg({ orgId }, (em) =>
      em.query(`SELECT id, state, expires_at <= now() AS expired FROM approvals WHERE org_id = $1 AND action_id = $2 AND kind = 'action'`, [orgId, actionId]),
    );
    if (!a) return null;
    return { id: a.id, state: a.state === 'pending' && a.expired ? 'expired' : a.state };
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hostOf(url: string): string {
  return new URL(url).host.toLowerCase();
}

function toolError(text: string, meta: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true, _meta: meta };
}
