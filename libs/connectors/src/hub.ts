import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode as McpErrorCode, LoggingMessageNotificationSchema, McpError, PromptListChangedNotificationSchema, ResourceListChangedNotificationSchema, ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema, type CallToolResult, type LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js';
import { guardedFetch, JSON_TYPE, type EgressOptions } from '@steward/common';
import { ConnectorError, networkCode, type ConnectorErrorCode } from './errors';
import { ERROR_META_KEY, IDEMPOTENCY_META_KEY, LABELS_META_KEY } from './tool-result';
import { toolDefinitionHash, type ToolDefinition } from './pinning';

/**
 * The one MCP client layer. Every connector runtime is an MCP server: built-in ones run in this
 * process (linked in-memory transports), remote ones are reached over Streamable HTTP through
 * the egress guard. `ConnectorHub` keeps one `ConnectorClient` per connector instance and calls
 * them all the same way: list tools, call a tool with a time limit and a result size limit.
 * Every failure comes back as a typed ConnectorError, never as a crash.
 */

export interface CallLimits {
  /** Time limit of one call, ms (default 30 s). */
  timeoutMs?: number;
  /** Largest result accepted, bytes of its JSON (default 1 MiB). */
  maxResultBytes?: number;
  signal?: AbortSignal;
  /**
   * Steward's action id, sent upstream as `_meta["steward/idempotency-key"]` so that a server whose
   * API takes an idempotency key can pass it on (a retried call then does not act twice).
   */
  idempotencyKey?: string;
  /** Progress the server reports during the call (relayed by the MCP gateway to its client). */
  onProgress?: (p: { progress: number; total?: number; message?: string }) => void;
  /**
   * The server closed the call's SSE stream before its answer (SEP-1699 polling) and the client
   * resumes it with Last-Event-ID; the MCP gateway closes its own client's stream of the call likewise.
   */
  onStreamClosed?: () => void;
}

/**
 * What the hub's MCP client offers the server besides tools: `sampling` (the server may ask the
 * user's model to write text) and `elicitation` (it may ask the user for input), as the MCP client
 * behind Steward declared them. Only the MCP gateway offers them, and only for a connector the org
 * allows it for; requests the server sends anyway go to `onServerRequest` (or are refused).
 */
export interface ClientOffer {
  sampling?: Record<string, unknown>;
  elicitation?: Record<string, unknown>;
}

/** A request the server sent to the client (sampling/createMessage, elicitation/create, ...). */
export type ServerRequestHandler = (request: { method: string; params?: Record<string, unknown> }, extra: { signal: AbortSignal }) => Promise<Record<string, unknown>>;

export interface ToolCallResult {
  content: CallToolResult['content'];
  structuredContent?: Record<string, unknown>;
  /** Labels the connector attached to what it read ("external", "untrusted", "confidential"). */
  labels: string[];
  /** The text blocks joined, for callers that only want text. */
  text: string;
  /** Size of the result's JSON in bytes. */
  bytes: number;
  connector: string;
  tool: string;
}

export interface RemoteOptions extends CallLimits {
  url: string;
  /** Headers for each request (called per request, so a refreshed token is used at once). */
  headers?: Record<string, string> | (() => Promise<Record<string, string>> | Record<string, string>);
  egress?: EgressOptions;
  /**
   * Pinned definition hashes of the approved tools (name → hash). When given, a call to a tool
   * that is not approved or whose current definition differs is refused with `tool_held`.
   */
  pins?: Record<string, string>;
  /** How long a listed tool set is trusted before it is listed again to check pins (default 30 s). */
  toolsTtlMs?: number;
  /** Capabilities offered to the server (see ClientOffer); none by default. */
  offer?: ClientOffer;
}

const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_MAX_RESULT = 1024 * 1024;
/** Room for the JSON-RPC envelope around a result when streaming bytes are counted. */
const ENVELOPE_SLACK = 64 * 1024;
/** Opens of a remote server's own stream allowed in any second (see paceGet in ConnectorClient.remote). */
const GET_BURST = 5;

/** The longest tool name listed (the MCP specification's limit; the gate records calls by it). */
export const MAX_TOOL_NAME = 128;

/** The most of an error answer read (the SDK quotes it in its error; 500 characters of that are kept). */
const ERROR_TEXT_MAX = 16_384;

/**
 * An error answer with every credential value sent in the request (whole, its token after a scheme
 * such as "Bearer", and their URL-encoded forms) replaced by "[redacted]". Read up to ERROR_TEXT_MAX bytes.
 */
async function scrubbedAnswer(res: Response, sent: string[]): Promise<Response> {
  const secrets = new Set<string>();
  for (const v of sent) {
    for (const s of [v, v.replace(/^[A-Za-z0-9_-]+\s+/, '')]) {
      if (s.length < 6) continue;
      secrets.add(s);
      secrets.add(encodeURIComponent(s));
    }
  }
  const reader = res.body!.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ERROR_TEXT_MAX) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // What arrived is the answer.
  } finally {
    void reader.cancel().catch(() => undefined);
  }
  let text = Buffer.concat(chunks).subarray(0, ERROR_TEXT_MAX).toString('utf8');
  // Longest first, so that a secret containing another is replaced whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) text = text.split(s).join('[redacted]');
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  return new Response(text, { status: res.status, statusText: res.statusText, headers });
}

function truncate(s: string, n = 500): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** Maps anything thrown by the SDK, the transport or the network to a ConnectorError. */
export function toConnectorError(err: unknown, where: { connector: string; tool?: string; timeoutMs?: number }): ConnectorError {
  if (err instanceof ConnectorError) return err;
  const d = { connector: where.connector, tool: where.tool };
  const e = err as { code?: unknown; message?: string; name?: string; reason?: string };
  const message = e?.message ?? String(err);
  if (e?.code === 'egress_refused') return new ConnectorError('egress_refused', `${where.connector}: ${message}`, d, { cause: err });
  if (err instanceof UnauthorizedError) {
    return new ConnectorError('auth_required', `${where.connector}: the server asks for authorisation again (${message})`, d, { cause: err });
  }
  if (err instanceof StreamableHTTPError) {
    const status = typeof err.code === 'number' ? err.code : undefined;
    if (status === 401 || status === 403) {
      return new ConnectorError('auth_required', `${where.connector}: the credential was refused (HTTP ${status}); authorise the connector again`, { ...d, status }, { cause: err });
    }
    if (status === 404 || status === 405) {
      return new ConnectorError('upstream_unreachable', `${where.connector}: no MCP endpoint at this URL (HTTP ${status})`, { ...d, status }, { cause: err });
    }
    return new ConnectorError('upstream_error', `${where.connector}: ${truncate(message)}`, { ...d, status }, { cause: err });
  }
  if (err instanceof McpError) {
    if (err.code === McpErrorCode.RequestTimeout) {
      return new ConnectorError('timeout', `${where.connector}${where.tool ? `/${where.tool}` : ''}: no answer within ${where.timeoutMs ?? '?'} ms`, d, { cause: err });
    }
    if (err.code === McpErrorCode.InvalidParams) return new ConnectorError('bad_arguments', `${where.connector}: ${truncate(message)}`, d, { cause: err });
    if (err.code === McpErrorCode.ConnectionClosed) return new ConnectorError('upstream_unreachable', `${where.connector}: the connection closed`, { ...d, midCall: true }, { cause: err });
    return new ConnectorError('upstream_error', `${where.connector}: ${truncate(message)}`, d, { cause: err });
  }
  const net = networkCode(err);
  if (net || (err instanceof TypeError && /fetch failed/i.test(message))) {
    return new ConnectorError('upstream_unreachable', `${where.connector}: cannot reach the upstream (${net ?? message})`, { ...d, ...(net ? { network: net } : {}) }, { cause: err });
  }
  if (e?.name === 'AbortError') return new ConnectorError('timeout', `${where.connector}: the call was aborted`, d, { cause: err });
  return new ConnectorError('upstream_error', `${where.connector}: ${truncate(message)}`, d, { cause: err });
}

const KNOWN_CODES = new Set<string>(['bad_arguments', 'auth_required', 'upstream_error', 'upstream_unreachable', 'not_found', 'conflict', 'result_too_large', 'timeout', 'egress_refused']);

export class ConnectorClient {
  /** The server's tools as last listed, and their definition hashes (computed once per listing). */
  private tools?: { at: number; list: ToolDefinition[]; hashes: Map<string, string> };
  private readonly inflight = new Set<AbortController>();
  private closed = false;
  /** Log messages the server sends (notifications/message); relayed by the MCP gateway. */
  onLog?: (params: LoggingMessageNotification['params']) => void;
  /** A subscribed resource changed (notifications/resources/updated); relayed by the MCP gateway to the session that subscribed. */
  onResourceUpdated?: (uri: string) => void;
  /** The server's resources or prompts list changed (notifications/<kind>/list_changed); relayed by the MCP gateway to the sessions that listed it. */
  onListChanged?: (kind: 'resources' | 'prompts') => void;

  private constructor(
    readonly id: string,
    readonly kind: 'builtin' | 'remote',
    private readonly client: Client,
    private readonly limits: { timeoutMs: number; maxResultBytes: number },
    private readonly remote?: { pins?: Record<string, string>; toolsTtlMs: number },
  ) {
    client.onerror = () => undefined; // transport errors surface on the calls themselves
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      this.tools = undefined;
    });
    client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
      this.onLog?.(n.params);
    });
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => {
      this.onResourceUpdated?.(n.params.uri);
    });
    client.setNotificationHandler(ResourceListChangedNotificationSchema, async () => {
      this.onListChanged?.('resources');
    });
    client.setNotificationHandler(PromptListChangedNotificationSchema, async () => {
      this.onListChanged?.('prompts');
    });
    // Requests from the server (sampling, elicitation, roots): handled by whoever relays them (the
    // MCP gateway, which decides and audits each one), else refused with a JSON-RPC error.
    client.fallbackRequestHandler = async (request, extra) => {
      if (this.onServerRequest) return this.onServerRequest({ method: request.method, params: request.params as Record<string, unknown> | undefined }, { signal: extra.signal }) as never;
      if (request.method === 'sampling/createMessage' || request.method === 'elicitation/create') {
        throw new McpError(McpErrorCode.InvalidRequest, `Steward does not relay ${request.method} from this connector (${this.id}): no MCP client is behind this call`);
      }
      throw new McpError(McpErrorCode.MethodNotFound, `Method not found: ${request.method}`);
    };
  }

  /** Requests the server sends to the client (see ServerRequestHandler); unset: refused. */
  onServerRequest?: ServerRequestHandler;

  /** Connects an in-process MCP server (a built-in connector) through linked in-memory transports. */
  static async inProcess(id: string, server: McpServer, limits: CallLimits & { offer?: ClientOffer } = {}): Promise<ConnectorClient> {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const client = newClient(limits.offer);
    await server.connect(serverSide);
    try {
      await client.connect(clientSide, { timeout: limits.timeoutMs ?? DEFAULT_TIMEOUT });
    } catch (err) {
      await server.close().catch(() => undefined);
      throw toConnectorError(err, { connector: id });
    }
    return new ConnectorClient(id, 'builtin', client, {
      timeoutMs: limits.timeoutMs ?? DEFAULT_TIMEOUT,
      maxResultBytes: limits.maxResultBytes ?? DEFAULT_MAX_RESULT,
    });
  }

  /** Connects a remote MCP server over Streamable HTTP, through the egress guard. */
  static async remote(id: string, opts: RemoteOptions): Promise<ConnectorClient> {
    const limits = { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT, maxResultBytes: opts.maxResultBytes ?? DEFAULT_MAX_RESULT };
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new ConnectorError('bad_arguments', `${id}: "${truncate(opts.url, 200)}" is not a URL`, { connector: id });
    }
    const ref: { client?: ConnectorClient } = {};
    // One server, called again and again: its connections are kept open between calls (each new
    // connection still goes only to checked addresses), closed with the transport.
    const base = guardedFetch({ ...opts.egress, timeoutMs: limits.timeoutMs, keepAlive: true, maxJsonBytes: limits.maxResultBytes + ENVELOPE_SLACK });
    const tooLarge = () => ref.client?.abortAll(new ConnectorError('result_too_large', `${id}: the result is larger than ${limits.maxResultBytes} bytes`, { connector: id }));
    // The server's stream is opened again each time it ends, as soon as its `retry:` says (0: at
    // once): at most GET_BURST opens a second, so that a server that ends it at once, over and over,
    // cannot keep the API busy reconnecting.
    const opened: number[] = [];
    const paceGet = async () => {
      const now = Date.now();
      while (opened.length && now - opened[0]! >= 1000) opened.shift();
      if (opened.length >= GET_BURST) await new Promise((r) => setTimeout(r, 1000 - (now - opened[0]!)));
      opened.push(Date.now());
    };
    const fetchFn = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
      if ((init.method ?? 'GET').toUpperCase() === 'GET') await paceGet();
      const headers = new Headers(init.headers);
      const credential = (typeof opts.headers === 'function' ? await opts.headers() : opts.headers) ?? {};
      for (const [k, v] of Object.entries(credential)) {
        // A header value the HTTP stack refuses would be quoted in its error: a credential must never be.
        try {
          headers.set(k, v);
        } catch {
          throw new ConnectorError('auth_required', `${id}: the credential cannot be sent in the ${k} header (it holds characters a header may not); set it again`, { connector: id });
        }
      }
      // A GET that resumes a stream: the server closed a call's stream before its answer (SEP-1699).
      const resuming = headers.get('last-event-id');
      if (resuming && (init.method ?? 'GET').toUpperCase() === 'GET') ref.client?.resumed(resuming);
      const res = await base(input, { ...init, headers, redirect: 'manual' }).catch((err: unknown) => {
        if ((err as { code?: unknown }).code === 'ETOOBIG') tooLarge();
        throw err;
      });
      // An error answer's text becomes the error's message (shown to members, stored, logged): a server or
      // proxy that echoes the request's headers must not get the credential into it.
      if (res.status >= 400 && res.body) return scrubbedAnswer(res, Object.values(credential));
      if (!res.body) return res;
      // The server's own stream (GET: notifications, resumed calls) lives long: no event on it may be larger than a result.
      if ((init.method ?? 'GET').toUpperCase() !== 'POST') return capEvents(res, limits.maxResultBytes + ENVELOPE_SLACK, tooLarge);
      // A JSON answer was read whole within the limit by the fetch itself; a stream is counted as it comes.
      if (JSON_TYPE.test(res.headers.get('content-type') ?? '')) return res;
      return capResponse(res, limits.maxResultBytes + ENVELOPE_SLACK, tooLarge);
    };
    const transport = new StreamableHTTPClientTransport(url, { fetch: fetchFn });
    transport.onclose = () => base.close(); // the client chains its own handler after this one
    const client = newClient(opts.offer);
    try {
      await client.connect(transport, { timeout: limits.timeoutMs });
    } catch (err) {
      await transport.close().catch(() => undefined);
      base.close();
      throw toConnectorError(err, { connector: id, timeoutMs: limits.timeoutMs });
    }
    ref.client = new ConnectorClient(id, 'remote', client, limits, { pins: opts.pins, toolsTtlMs: opts.toolsTtlMs ?? 30_000 });
    return ref.client;
  }

  /** Calls in progress by the last SSE event id seen on their stream (to tell which call a resumption is for). */
  private readonly streams = new Map<AbortController, { lastEventId?: string; onStreamClosed?: () => void }>();

  private resumed(lastEventId: string): void {
    for (const st of this.streams.values()) if (st.lastEventId === lastEventId) st.onStreamClosed?.();
  }

  private abortAll(reason: ConnectorError): void {
    for (const c of this.inflight) c.abort(reason);
  }

  /** The server's tools (all pages). */
  async listTools(opts: CallLimits = {}): Promise<ToolDefinition[]> {
    this.assertOpen();
    const timeout = opts.timeoutMs ?? this.limits.timeoutMs;
    // Registered like a call, so an oversized answer aborts it with result_too_large.
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.inflight.add(ctrl);
    try {
      const list: ToolDefinition[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const res = await this.client.listTools(cursor ? { cursor } : {}, { timeout, signal: ctrl.signal });
        for (const t of res.tools) {
          // The MCP limit on a tool's name (SEP-986): a longer one is no tool Steward can record a call of.
          if (t.name.length < 1 || t.name.length > MAX_TOOL_NAME) continue;
          list.push({ name: t.name, title: t.title, description: t.description ?? '', inputSchema: t.inputSchema as Record<string, unknown>, annotations: t.annotations as Record<string, unknown> | undefined });
        }
        cursor = res.nextCursor;
        if (!cursor) break;
      }
      this.tools = { at: Date.now(), list, hashes: new Map() };
      return list;
    } catch (err) {
      const reason = ctrl.signal.aborted ? ctrl.signal.reason : undefined;
      throw toConnectorError(reason instanceof ConnectorError ? reason : err, { connector: this.id, timeoutMs: timeout });
    } finally {
      this.inflight.delete(ctrl);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async currentTools(): Promise<ToolDefinition[]> {
    if (this.tools && Date.now() - this.tools.at < (this.remote?.toolsTtlMs ?? Infinity)) return this.tools.list;
    return this.listTools();
  }

  /** The current definition's hash of a tool (null: the server no longer offers it). */
  private async currentHash(tool: string): Promise<string | null> {
    const list = await this.currentTools();
    const cached = this.tools?.list === list ? this.tools.hashes : null;
    const hit = cached?.get(tool);
    if (hit) return hit;
    const def = list.find((t) => t.name === tool);
    if (!def) return null;
    const hash = toolDefinitionHash(def);
    cached?.set(tool, hash);
    return hash;
  }

  /** Replaces the pinned hashes (after an admin approved tools again). */
  setPins(pins: Record<string, string> | undefined): void {
    if (this.remote) this.remote.pins = pins;
  }

  async callTool(tool: string, args: Record<string, unknown> = {}, opts: CallLimits = {}): Promise<ToolCallResult> {
    this.assertOpen();
    const timeoutMs = opts.timeoutMs ?? this.limits.timeoutMs;
    const maxResultBytes = opts.maxResultBytes ?? this.limits.maxResultBytes;
    const where = { connector: this.id, tool, timeoutMs };
    if (this.remote?.pins) await this.checkPinned(tool);
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.inflight.add(ctrl);
    let result: CallToolResult;
    try {
      const params = opts.idempotencyKey ? { name: tool, arguments: args, _meta: { [IDEMPOTENCY_META_KEY]: opts.idempotencyKey } } : { name: tool, arguments: args };
      const stream: { lastEventId?: string; onStreamClosed?: () => void } = { onStreamClosed: opts.onStreamClosed };
      if (opts.onStreamClosed) this.streams.set(ctrl, stream);
      result = (await this.client.callTool(params, undefined, {
        timeout: timeoutMs,
        maxTotalTimeout: timeoutMs,
        signal: ctrl.signal,
        ...(opts.onProgress ? { onprogress: opts.onProgress, resetTimeoutOnProgress: true } : {}),
        ...(opts.onStreamClosed ? { onresumptiontoken: (id: string) => void (stream.lastEventId = id) } : {}),
      })) as CallToolResult;
    } catch (err) {
      const reason = ctrl.signal.aborted ? ctrl.signal.reason : undefined;
      throw toConnectorError(reason instanceof ConnectorError ? reason : err, where);
    } finally {
      this.inflight.delete(ctrl);
      this.streams.delete(ctrl);
      opts.signal?.removeEventListener('abort', onAbort);
    }
    const bytes = Buffer.byteLength(JSON.stringify(result));
    if (bytes > maxResultBytes) {
      throw new ConnectorError('result_too_large', `${this.id}/${tool}: the result is ${bytes} bytes, more than the limit of ${maxResultBytes}`, { ...where, bytes, limit: maxResultBytes });
    }
    const text = (result.content ?? [])
      .filter((c): c is { type: 'text'; text: string } => c.type === 'text')
      .map((c) => c.text)
      .join('\n');
    if (result.isError) throw this.toolError(result, text, where);
    const meta = (result._meta ?? {}) as Record<string, unknown>;
    const labels = new Set<string>(Array.isArray(meta[LABELS_META_KEY]) ? (meta[LABELS_META_KEY] as unknown[]).filter((l): l is string => typeof l === 'string') : []);
    // Whatever a third-party server returns is untrusted content for the task.
    if (this.kind === 'remote') labels.add('untrusted');
    return {
      content: result.content ?? [],
      structuredContent: result.structuredContent as Record<string, unknown> | undefined,
      labels: [...labels].sort(),
      text,
      bytes,
      connector: this.id,
      tool,
    };
  }

  private async checkPinned(tool: string): Promise<void> {
    const pinned = this.remote?.pins?.[tool];
    if (!pinned) throw new ConnectorError('tool_held', `${this.id}/${tool}: this tool is not approved by an admin`, { connector: this.id, tool });
    const hash = await this.currentHash(tool);
    if (!hash) throw new ConnectorError('unknown_tool', `${this.id}/${tool}: the server no longer offers this tool`, { connector: this.id, tool });
    if (hash !== pinned) {
      throw new ConnectorError('tool_held', `${this.id}/${tool}: the tool's definition changed since it was approved; held until an admin approves it again`, {
        connector: this.id,
        tool,
        pinned,
        current: hash,
      });
    }
  }

  private toolError(result: CallToolResult, text: string, where: { connector: string; tool: string }): ConnectorError {
    const meta = (result._meta ?? {}) as Record<string, unknown>;
    const structured = meta[ERROR_META_KEY] as { code?: string; message?: string; details?: Record<string, unknown> } | undefined;
    // Only our own in-process connectors may name a typed error; a remote server's is an upstream error.
    if (this.kind === 'builtin' && structured?.code && KNOWN_CODES.has(structured.code)) {
      return new ConnectorError(structured.code as ConnectorErrorCode, structured.message ?? text, { ...structured.details, ...where });
    }
    if (/^(MCP error -32602: )?(Input validation error|Invalid arguments for tool)/.test(text)) {
      return new ConnectorError('bad_arguments', `${where.connector}/${where.tool}: ${truncate(text)}`, where);
    }
    if (/^(MCP error -32602: )?Tool \S+ (not found|disabled)/.test(text)) {
      return new ConnectorError('unknown_tool', `${where.connector}: ${truncate(text)}`, where);
    }
    return new ConnectorError('upstream_error', `${where.connector}/${where.tool} failed: ${truncate(text) || 'no detail'}`, where);
  }

  /** What the server offers besides tools (resources, prompts), as it said at initialisation. */
  capabilities(): { resources?: { subscribe?: boolean }; prompts?: object; completions?: object; logging?: object } {
    return (this.client.getServerCapabilities() ?? {}) as { resources?: { subscribe?: boolean }; prompts?: object; completions?: object; logging?: object };
  }

  /** Resources, resource templates and prompts of the server, passed through as they are (one page each, with its cursor). */
  async listResources(cursor?: string) {
    return this.passThrough('resources/list', (o) => this.client.listResources(cursor ? { cursor } : {}, o));
  }

  async listResourceTemplates(cursor?: string) {
    return this.passThrough('resources/templates/list', (o) => this.client.listResourceTemplates(cursor ? { cursor } : {}, o));
  }

  async readResource(uri: string) {
    return this.passThrough('resources/read', (o) => this.client.readResource({ uri }, o));
  }

  async listPrompts(cursor?: string) {
    return this.passThrough('prompts/list', (o) => this.client.listPrompts(cursor ? { cursor } : {}, o));
  }

  async getPrompt(name: string, args?: Record<string, string>) {
    return this.passThrough('prompts/get', (o) => this.client.getPrompt({ name, ...(args ? { arguments: args } : {}) }, o));
  }

  async complete(params: Parameters<Client['complete']>[0]) {
    return this.passThrough('completion/complete', (o) => this.client.complete(params, o));
  }

  async subscribeResource(uri: string, subscribe: boolean) {
    return this.passThrough(subscribe ? 'resources/subscribe' : 'resources/unsubscribe', (o) => (subscribe ? this.client.subscribeResource({ uri }, o) : this.client.unsubscribeResource({ uri }, o)));
  }

  async setLoggingLevel(level: Parameters<Client['setLoggingLevel']>[0]) {
    return this.passThrough('logging/setLevel', (o) => this.client.setLoggingLevel(level, o));
  }

  private async passThrough<T>(what: string, run: (o: { timeout: number; signal: AbortSignal }) => Promise<T>): Promise<T> {
    this.assertOpen();
    const ctrl = new AbortController();
    this.inflight.add(ctrl);
    try {
      return await run({ timeout: this.limits.timeoutMs, signal: ctrl.signal });
    } catch (err) {
      const reason = ctrl.signal.aborted ? ctrl.signal.reason : undefined;
      throw toConnectorError(reason instanceof ConnectorError ? reason : err, { connector: this.id, tool: what, timeoutMs: this.limits.timeoutMs });
    } finally {
      this.inflight.delete(ctrl);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new ConnectorError('upstream_unreachable', `${this.id}: the connection is closed`, { connector: this.id });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close().catch(() => undefined);
  }
}

function newClient(offer: ClientOffer = {}): Client {
  const capabilities = { ...(offer.sampling ? { sampling: offer.sampling } : {}), ...(offer.elicitation ? { elicitation: offer.elicitation } : {}) };
  return new Client({ name: 'steward-hub', version: '0.1.0' }, { capabilities });
}

/** Counts a response's body bytes; past `max` the stream fails and `onOversize` is called. */
function capResponse(res: Response, max: number, onOversize: () => void): Response {
  let seen = 0;
  const counted = res.body!.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > max) {
          onOversize();
          controller.error(new Error(`response larger than ${max} bytes`));
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  );
  return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/**
 * An event stream whose every event (the bytes between two blank lines) is at most `max` bytes; a
 * larger one ends the stream. A stream that lives as long as its session is never held whole.
 */
export function capEvents(res: Response, max: number, onOversize: () => void): Response {
  let pending = 0;
  let prev = -1;
  const counted = res.body!.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        // The last blank line in this chunk (a line end right after a line end: \n\n, \r\r or \n\r\n).
        let boundary = -1;
        for (let i = chunk.length - 1; i >= 0 && boundary < 0; i--) {
          const c = chunk[i]!;
          if (c !== 10 && c !== 13) continue;
          const before = i > 0 ? chunk[i - 1]! : prev;
          if (before === c || (c === 10 && before === 13 && (i > 1 ? chunk[i - 2] : i === 1 ? prev : -1) === 10)) boundary = i;
        }
        pending = boundary >= 0 ? chunk.length - boundary - 1 : pending + chunk.length;
        prev = chunk.length ? chunk[chunk.length - 1]! : prev;
        if (pending > max) {
          onOversize();
          controller.error(new Error(`an event larger than ${max} bytes`));
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  );
  return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** The connectors of one org (or one task), by instance id. */
export class ConnectorHub {
  private readonly clients = new Map<string, ConnectorClient>();

  constructor(private readonly defaults: CallLimits = {}) {}

  /** Starts a built-in connector's server in process and connects to it. */
  async addBuiltin(id: string, server: McpServer, limits: CallLimits & { offer?: ClientOffer } = {}): Promise<ConnectorClient> {
    const client = await ConnectorClient.inProcess(id, server, { ...this.defaults, ...limits });
    await this.replace(id, client);
    return client;
  }

  /** Connects a remote MCP server (URL checked by the egress guard). */
  async addRemote(id: string, opts: RemoteOptions): Promise<ConnectorClient> {
    const client = await ConnectorClient.remote(id, { ...this.defaults, ...opts });
    await this.replace(id, client);
    return client;
  }

  private async replace(id: string, client: ConnectorClient): Promise<void> {
    const old = this.clients.get(id);
    this.clients.set(id, client);
    await old?.close();
  }

  get(id: string): ConnectorClient {
    const c = this.clients.get(id);
    if (!c) throw new ConnectorError('unknown_connector', `no connector "${id}" is connected`, { connector: id });
    return c;
  }

  has(id: string): boolean {
    return this.clients.has(id);
  }

  listTools(id: string, opts?: CallLimits): Promise<ToolDefinition[]> {
    return Promise.resolve().then(() => this.get(id).listTools(opts));
  }

  callTool(id: string, tool: string, args: Record<string, unknown> = {}, opts?: CallLimits): Promise<ToolCallResult> {
    return Promise.resolve().then(() => this.get(id).callTool(tool, args, opts));
  }

  async remove(id: string): Promise<void> {
    const c = this.clients.get(id);
    this.clients.delete(id);
    await c?.close();
  }

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}

export { toolDefinitionHash };
