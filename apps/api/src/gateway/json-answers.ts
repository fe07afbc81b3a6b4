import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, JSONRPCRequest, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js';

/**
 * The session's transport as its MCP server sees it: the SDK's Streamable HTTP transport, plus
 * requests the gateway answers with one JSON body instead of an SSE stream (Streamable HTTP lets
 * the server choose either for each POST). The gateway takes that path only for a `tools/call`
 * that cannot stream anything back: no progress token, and a connector that can neither log nor
 * ask the client for anything (see GatewayService.answersInJson). Such a call needs no stream to
 * be opened and parsed on either side, no event log and no web-stream conversion of the request
 * and response, which is most of what a gateway round trip costs beyond the gate itself.
 *
 * Everything else (initialize, notifications, every other request, GET and DELETE) goes through
 * the SDK's transport unchanged. A notification the server still relates to a call answered in
 * JSON (none is expected) goes to the session's own stream, where the client has one open.
 */
export class JsonAnswers implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  private readonly pending = new Map<RequestId, (answer: JSONRPCMessage) => void>();
  /**
   * Requests that came through the SDK's transport and have no answer yet. A request the client
   * cancelled is never answered (the spec's rule), and the SDK keeps its entry for the session's
   * life: the gateway caps this count per session, so cancelling cannot grow memory without end.
   */
  private readonly unanswered = new Set<RequestId>();

  constructor(readonly inner: StreamableHTTPServerTransport) {
    // The SDK transport's events reach the server through this one (an onclose set before is kept).
    const before = inner.onclose;
    inner.onclose = () => {
      before?.();
      this.onclose?.();
      this.abandon();
    };
    inner.onerror = (err) => this.onerror?.(err);
    inner.onmessage = (message, extra) => {
      // A call the client cancelled gets no answer from the server (the spec's rule for a cancelled
      // request); its POST, still open, ends with an error saying so instead of waiting for ever.
      const m = message as { method?: unknown; id?: unknown; params?: { requestId?: unknown } };
      if (typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number')) this.unanswered.add(m.id);
      // (The SDK aborts only a request whose id is truthy; an id 0 or "" is answered as usual.)
      if (m.method === 'notifications/cancelled' && (typeof m.params?.requestId === 'string' || typeof m.params?.requestId === 'number') && m.params.requestId) {
        const id = m.params.requestId;
        const resolve = this.pending.get(id);
        if (resolve) {
          this.pending.delete(id);
          resolve({ jsonrpc: '2.0', id, error: { code: -32000, message: 'Request cancelled by the client.' } });
        }
      }
      this.onmessage?.(message, extra);
    };
  }

  /** How many requests of the session wait for an answer (cancelled ones included: they never get one). */
  get unansweredCount(): number {
    return this.unanswered.size;
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  setProtocolVersion = (version: string): void => {
    (this.inner as Transport).setProtocolVersion?.(version);
  };

  start(): Promise<void> {
    return this.inner.start();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const answerTo = 'id' in message && ('result' in message || 'error' in message) ? message.id : undefined;
    if (answerTo !== undefined && answerTo !== null) this.unanswered.delete(answerTo);
    if (answerTo !== undefined && answerTo !== null && this.pending.has(answerTo)) {
      const resolve = this.pending.get(answerTo)!;
      this.pending.delete(answerTo);
      resolve(message);
      return;
    }
    const related = options?.relatedRequestId;
    if (related !== undefined && this.pending.has(related)) return this.inner.send(message);
    return this.inner.send(message, options);
  }

  /** The session ended: calls still unanswered get an error, not silence. */
  abandon(): void {
    for (const [id, resolve] of this.pending) resolve({ jsonrpc: '2.0', id, error: { code: -32000, message: 'The MCP session closed.' } });
    this.pending.clear();
  }

  /**
   * Hands a request to the server and resolves with its answer (a result or an error). Null when a
   * request with the same id is already being answered this way (the caller takes the SDK's path).
   */
  answer(request: JSONRPCRequest, extra: MessageExtraInfo): Promise<JSONRPCMessage> | null {
    if (this.pending.has(request.id) || !this.onmessage) return null;
    return new Promise((resolve) => {
      this.pending.set(request.id, resolve);
      this.onmessage!(request, extra);
    });
  }
}
