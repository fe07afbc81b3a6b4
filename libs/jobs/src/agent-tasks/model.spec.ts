import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ModelClient, ModelUnavailable } from './model';

/**
 * Which failed attempts the client books as possibly generated (onLost): only those whose answer had
 * begun or may have reached the model. A request that never left (a bad configuration) is not one.
 */
describe('ModelClient: lost attempts', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    // Answers 200 and the start of a stream, then ends it early.
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } } })}\n\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const attempt = async (baseURL: string) => {
    let lost = 0;
    const client = new ModelClient({ apiKey: 'k', baseURL, defaultModel: 'm', routes: {}, stream: true, maxTokens: 100, offline: true, retry: { attempts: 1, baseDelayMs: 1 } });
    const err = await client.create({ model: 'm', system: 's', messages: [{ role: 'user', content: 'hi' }], tools: [] }, new AbortController().signal, undefined, () => lost++, false).catch((e: unknown) => e);
    return { err, lost };
  };

  it('a stream that began and ended early is a lost attempt (transient): the model may have generated it', async () => {
    const { err, lost } = await attempt(url);
    expect(lost).toBe(1);
    expect(err).toBeInstanceOf(ModelUnavailable);
    expect((err as ModelUnavailable).transient).toBe(true);
  });

  it('a request that never left (a malformed address fails before any request) is not booked, and fails at once (not transient)', async () => {
    const bad = await attempt('not a url at all');
    expect(bad.lost).toBe(0);
    expect(bad.err).toBeInstanceOf(ModelUnavailable);
    expect((bad.err as ModelUnavailable).transient).toBe(false);
  });
});
