import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { JsonAnswers } from './json-answers';

/** What the gateway caps per session: requests that came through the SDK's transport and got no answer. */
describe('JsonAnswers: requests without an answer', () => {
  const setup = () => {
    const inner = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const sent: JSONRPCMessage[] = [];
    // The SDK transport's own send needs an open HTTP exchange; here only what reaches it matters.
    inner.send = async (m) => {
      sent.push(m);
    };
    const t = new JsonAnswers(inner);
    t.onmessage = () => undefined;
    return { inner, t, sent };
  };
  const request = (id: string | number) => ({ jsonrpc: '2.0' as const, id, method: 'tools/list', params: {} });

  it('counts a request until its answer is sent, and never a notification', async () => {
    const { inner, t } = setup();
    inner.onmessage!(request(1));
    inner.onmessage!(request('two'));
    inner.onmessage!({ jsonrpc: '2.0', method: 'notifications/initialized' });
    expect(t.unansweredCount).toBe(2);
    await t.send({ jsonrpc: '2.0', id: 1, result: {} });
    await t.send({ jsonrpc: '2.0', id: 'two', error: { code: -32601, message: 'no' } });
    expect(t.unansweredCount).toBe(0);
  });

  it('keeps counting a request the client cancelled: the server never answers it, so the count bounds what the SDK keeps', async () => {
    const { inner, t, sent } = setup();
    for (let i = 1; i <= 5; i++) inner.onmessage!(request(i));
    for (let i = 1; i <= 5; i++) inner.onmessage!({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: i } });
    expect(t.unansweredCount).toBe(5);
    // A progress notification related to one of them is not an answer.
    await t.send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } }, { relatedRequestId: 1 });
    expect(t.unansweredCount).toBe(5);
    expect(sent).toHaveLength(1);
  });
});
