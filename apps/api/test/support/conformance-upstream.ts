import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  isInitializeRequest,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

/**
 * An upstream MCP server for the conformance run through the gateway: the tools, resources and
 * prompts the official suite's server scenarios ask for (their names and answers are the ones
 * the scenarios' descriptions give), written against the SDK's low-level Server so that tool
 * input schemas go out exactly as written (JSON Schema 2020-12 keywords included).
 *
 * Its sampling and elicitation tools ask the client (here: the gateway, which relays to its own
 * client where the org allows it) during the call and answer with what came back, or with the
 * error they got; `test_reconnection` closes the call's SSE stream before answering (SEP-1699),
 * so it needs a session with an event store: see `conformanceUpstreamHandler`.
 */
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const empty = { type: 'object', properties: {} } as const;

const promptArg = { type: 'object', properties: { prompt: { type: 'string', description: 'The prompt to send to the LLM' } }, required: ['prompt'] } as const;
const messageArg = { type: 'object', properties: { message: { type: 'string', description: 'The message to show the user' } }, required: ['message'] } as const;

/** Tools that ask the client something during the call (sampling, elicitation). */
export const RELAY_TOOLS = ['test_sampling', 'test_elicitation', 'test_elicitation_sep1034_defaults', 'test_elicitation_sep1330_enums', 'test_client_capabilities'];

export const CONFORMANCE_TOOLS = [
  { name: 'test_sampling', description: 'Asks the client for an LLM completion (sampling/createMessage)', inputSchema: promptArg },
  { name: 'test_elicitation', description: 'Asks the user for input (elicitation/create)', inputSchema: messageArg },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicitation with default values for every primitive type (SEP-1034)', inputSchema: empty },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicitation with every enum schema variant (SEP-1330)', inputSchema: empty },
  { name: 'test_client_capabilities', description: 'Answers with the capabilities the client declared to this server (JSON)', inputSchema: empty },
  { name: 'test_reconnection', description: 'Closes the SSE stream mid-call and answers after the client resumes it (SEP-1699)', inputSchema: empty },
  { name: 'test_simple_text', description: 'Returns simple text', inputSchema: empty },
  { name: 'test_image_content', description: 'Returns an image', inputSchema: empty },
  { name: 'test_audio_content', description: 'Returns audio', inputSchema: empty },
  { name: 'test_embedded_resource', description: 'Returns an embedded resource', inputSchema: empty },
  { name: 'test_multiple_content_types', description: 'Returns several kinds of content', inputSchema: empty },
  { name: 'test_tool_with_logging', description: 'Logs while it runs', inputSchema: empty },
  { name: 'test_tool_with_progress', description: 'Reports progress', inputSchema: empty },
  { name: 'test_error_handling', description: 'Always fails', inputSchema: empty },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
];

export function conformanceUpstream(): Server {
  const server = new Server({ name: 'conformance-upstream', version: '1.0.0' }, { capabilities: { tools: {}, resources: { subscribe: true }, prompts: {}, logging: {}, completions: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: CONFORMANCE_TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const log = (data: string) => extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data } });
    const args = (request.params.arguments ?? {}) as Record<string, unknown>;
    const elicit = async (params: Record<string, unknown>, prefix: string) => {
      try {
        const r = await extra.sendRequest({ method: 'elicitation/create', params: { mode: 'form', ...params } as never }, ElicitResultSchema);
        return { content: [{ type: 'text' as const, text: `${prefix}: action=${r.action}, content=${JSON.stringify(r.content ?? {})}` }] };
      } catch (err) {
        return { content: [{ type: 'text' as const, text: `Elicitation not supported or error: ${(err as Error).message}` }] };
      }
    };
    switch (request.params.name) {
      case 'test_sampling':
        try {
          // "[context:allServers] ..." asks for the client's context too (what other servers' tools returned).
          const context = /^\[context:(allServers|thisServer)\]/.exec(String(args.prompt ?? ''))?.[1];
          const r = await extra.sendRequest(
            { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: String(args.prompt ?? '') } }], maxTokens: 100, ...(context ? { includeContext: context as 'allServers' } : {}) } },
            CreateMessageResultSchema,
          );
          const text = r.content.type === 'text' ? r.content.text : `(${r.content.type})`;
          return { content: [{ type: 'text', text: `LLM response: ${text}` }] };
        } catch (err) {
          return { content: [{ type: 'text', text: `Sampling not supported or error: ${(err as Error).message}` }] };
        }
      case 'test_elicitation':
        return elicit(
          {
            message: String(args.message ?? ''),
            requestedSchema: {
              type: 'object',
              properties: { username: { type: 'string', description: "User's response" }, email: { type: 'string', description: "User's email address" } },
              required: ['username', 'email'],
            },
          },
          'User response',
        );
      case 'test_elicitation_sep1034_defaults':
        return elicit(
          {
            message: 'Please review and update the form fields with defaults',
            requestedSchema: {
              type: 'object',
              properties: {
                name: { type: 'string', description: 'User name', default: 'John Doe' },
                age: { type: 'integer', description: 'User age', default: 30 },
                score: { type: 'number', description: 'User score', default: 95.5 },
                status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
                verified: { type: 'boolean', description: 'Verification status', default: true },
              },
              required: [],
            },
          },
          'Elicitation completed',
        );
      case 'test_elicitation_sep1330_enums':
        return elicit(
          {
            message: 'Please choose among the options',
            requestedSchema: {
              type: 'object',
              properties: {
                untitledSingle: { type: 'string', description: 'Untitled single-select', enum: ['option1', 'option2', 'option3'] },
                titledSingle: {
                  type: 'string',
                  description: 'Titled single-select',
                  oneOf: [
                    { const: 'value1', title: 'First Option' },
                    { const: 'value2', title: 'Second Option' },
                    { const: 'value3', title: 'Third Option' },
                  ],
                },
                legacyEnum: { type: 'string', description: 'Legacy titled enum', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
                untitledMulti: { type: 'array', description: 'Untitled multi-select', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
                titledMulti: {
                  type: 'array',
                  description: 'Titled multi-select',
                  items: {
                    anyOf: [
                      { const: 'value1', title: 'First Choice' },
                      { const: 'value2', title: 'Second Choice' },
                      { const: 'value3', title: 'Third Choice' },
                    ],
                  },
                },
              },
              required: [],
            },
          },
          'Elicitation completed',
        );
      case 'test_client_capabilities':
        return { content: [{ type: 'text', text: JSON.stringify(server.getClientCapabilities() ?? {}) }] };
      case 'test_reconnection':
        // SEP-1699: close this call's stream (the client resumes it with Last-Event-ID), answer a little later.
        extra.closeSSEStream?.();
        await sleep(100);
        return { content: [{ type: 'text', text: `Reconnection test completed successfully${extra.closeSSEStream ? '' : ' (the stream was not closed: the client cannot resume one)'}.` }] };
      case 'test_simple_text':
        return { content: [{ type: 'text', text: 'This is a simple text response for testing.' }] };
      case 'test_image_content':
        return { content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] };
      case 'test_audio_content':
        return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] };
      case 'test_embedded_resource':
        return { content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }] };
      case 'test_multiple_content_types':
        return {
          content: [
            { type: 'text', text: 'Multiple content types test:' },
            { type: 'image', data: PNG, mimeType: 'image/png' },
            { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
          ],
        };
      case 'test_tool_with_logging':
        await log('Tool execution started');
        await sleep(50);
        await log('Tool processing data');
        await sleep(50);
        await log('Tool execution completed');
        return { content: [{ type: 'text', text: 'Logging test completed' }] };
      case 'test_tool_with_progress': {
        const token = request.params._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
          if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
          if (progress < 100) await sleep(50);
        }
        return { content: [{ type: 'text', text: 'Progress test completed' }] };
      }
      case 'test_error_handling':
        return { isError: true, content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }] };
      case 'json_schema_2020_12_tool':
        return { content: [{ type: 'text', text: `Received: ${JSON.stringify(request.params.arguments ?? {})}` }] };
      default:
        return { isError: true, content: [{ type: 'text', text: `Unknown tool ${request.params.name}` }] };
    }
  });
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: [
      { uri: 'test://static-text', name: 'static-text', description: 'A static text resource', mimeType: 'text/plain' },
      { uri: 'test://static-binary', name: 'static-binary', description: 'A static binary resource', mimeType: 'image/png' },
      { uri: 'test://watched-resource', name: 'watched-resource', description: 'A resource to subscribe to', mimeType: 'text/plain' },
    ],
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [{ uriTemplate: 'test://template/{id}/data', name: 'template', description: 'A resource template', mimeType: 'application/json' }],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
    const uri = request.params.uri;
    if (uri === 'test://static-text') return { contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] };
    if (uri === 'test://static-binary') return { contents: [{ uri, mimeType: 'image/png', blob: PNG }] };
    if (uri === 'test://watched-resource') return { contents: [{ uri, mimeType: 'text/plain', text: 'Watched resource content.' }] };
    const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (m) return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ id: m[1], templateTest: true, data: `Data for ID: ${m[1]}` }) }] };
    throw new Error(`Resource not found: ${uri}`);
  });
  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    // The watched resource changes just after it is subscribed to: the subscriber is told.
    if (request.params.uri === 'test://watched-resource') setTimeout(() => void server.sendResourceUpdated({ uri: request.params.uri }).catch(() => undefined), 20);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async () => ({}));
  server.setRequestHandler(SetLevelRequestSchema, async () => ({}));
  server.setRequestHandler(CompleteRequestSchema, async (request) => {
    const values = ['paris', 'park', 'party'].filter((v) => v.startsWith(request.params.argument.value));
    return { completion: { values, total: values.length, hasMore: false } };
  });
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({
    prompts: [
      { name: 'test_simple_prompt', description: 'A simple prompt' },
      { name: 'test_prompt_with_arguments', description: 'A prompt with arguments', arguments: [{ name: 'arg1', description: 'First test argument', required: true }, { name: 'arg2', description: 'Second test argument', required: true }] },
      { name: 'test_prompt_with_embedded_resource', description: 'A prompt with an embedded resource', arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }] },
      { name: 'test_prompt_with_image', description: 'A prompt with an image' },
    ],
  }));
  server.setRequestHandler(GetPromptRequestSchema, async (request) => {
    const a = request.params.arguments ?? {};
    switch (request.params.name) {
      case 'test_simple_prompt':
        return { messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] };
      case 'test_prompt_with_arguments':
        return { messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'` } }] };
      case 'test_prompt_with_embedded_resource':
        return {
          messages: [
            { role: 'user', content: { type: 'resource', resource: { uri: a.resourceUri ?? 'test://example', mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
            { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
          ],
        };
      case 'test_prompt_with_image':
        return {
          messages: [
            { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
            { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
          ],
        };
      default:
        throw new Error(`Unknown prompt ${request.params.name}`);
    }
  });
  return server;
}

/** A small event store for the upstream's sessions (resumable streams). */
class UpstreamEvents {
  private readonly events = new Map<string, { streamId: string; message: unknown }>();
  async storeEvent(streamId: string, message: unknown): Promise<string> {
    const id = `${streamId}_${randomUUID()}`;
    this.events.set(id, { streamId, message });
    return id;
  }
  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.get(eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId: string, { send }: { send: (id: string, message: never) => Promise<void> }): Promise<string> {
    const last = this.events.get(lastEventId);
    if (!last) return '';
    let after = false;
    for (const [id, e] of this.events) {
      if (id === lastEventId) after = true;
      else if (after && e.streamId === last.streamId && Object.keys(e.message as object).length) await send(id, e.message as never);
    }
    return last.streamId;
  }
}

/**
 * The upstream over Streamable HTTP with sessions (what sampling, elicitation and resumable streams
 * need: the client's answer comes back on a new POST of the same session), a fresh conformance
 * server per session, an event store and a short retry hint.
 */
export function conformanceUpstreamHandler(): {
  handle: (req: http.IncomingMessage, res: http.ServerResponse, body: unknown) => Promise<void>;
  /** Every open session is told that the upstream's resources or prompts changed (notifications/<kind>/list_changed). */
  announce: (kind: 'resources' | 'prompts') => Promise<void>;
  close: () => Promise<void>;
} {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const servers = new Map<StreamableHTTPServerTransport, ReturnType<typeof conformanceUpstream>>();
  return {
    async handle(req, res, body) {
      const sid = req.headers['mcp-session-id'];
      const existing = typeof sid === 'string' ? sessions.get(sid) : undefined;
      if (existing) return existing.handleRequest(req, res, body);
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(typeof sid === 'string' ? 404 : 400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'no such session' }, id: null }));
        return;
      }
      const server = conformanceUpstream();
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new UpstreamEvents(),
        retryInterval: 50,
        onsessioninitialized: (id) => void sessions.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
        servers.delete(transport);
      };
      servers.set(transport, server);
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    },
    async announce(kind) {
      await Promise.all([...servers.values()].map((server) => (kind === 'resources' ? server.sendResourceListChanged() : server.sendPromptListChanged()).catch(() => undefined)));
    },
    async close() {
      await Promise.all([...sessions.values()].map((t) => t.close().catch(() => undefined)));
      sessions.clear();
    },
  };
}
