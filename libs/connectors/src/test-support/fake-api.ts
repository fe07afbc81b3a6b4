import type http from 'node:http';
import { listen, readBody, type Loopback } from './loopback';

export interface RecordedCall {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization?: string;
  contentType?: string;
  /** The If-Match header (a conditional write). */
  ifMatch?: string;
  body: string;
}

export interface FakeReply {
  status?: number;
  json?: unknown;
  text?: string;
  /** Bytes as they are (a file in another encoding than UTF-8). */
  body?: Buffer;
  headers?: Record<string, string>;
  delayMs?: number;
}

export type FakeRoute = (call: RecordedCall) => FakeReply | undefined;

/**
 * A loopback fake of a REST API: records every request (so a test can check what the real client
 * sent) and answers from the routes; a bearer token "expired" gets the API's 401.
 */
export async function fakeApi(routes: FakeRoute, opts: { expired?: () => FakeReply } = {}): Promise<Loopback & { calls: RecordedCall[] }> {
  const calls: RecordedCall[] = [];
  const lb = await listen(async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const call: RecordedCall = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      ...(req.headers['if-match'] ? { ifMatch: req.headers['if-match'] } : {}),
      body: (await readBody(req)).toString('utf8'),
    };
    calls.push(call);
    let reply: FakeReply | undefined;
    if (call.authorization === 'Bearer expired') reply = opts.expired?.() ?? { status: 401, json: { error: 'invalid_token' } };
    else reply = routes(call) ?? { status: 404, json: { error: `no route for ${call.method} ${call.path}` } };
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    const status = reply.status ?? 200;
    if (reply.json !== undefined) {
      res.writeHead(status, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(reply.json));
    } else {
      res.writeHead(status, { 'content-type': 'text/plain', ...reply.headers });
      res.end(reply.body ?? reply.text ?? '');
    }
  });
  return Object.assign(lb, { calls });
}
