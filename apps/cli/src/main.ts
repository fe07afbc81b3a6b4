#!/usr/bin/env node
/**
 * steward — the command line of Steward: run governed agent tasks and follow them, decide
 * approvals, read reviews, the policy and the audit trail, with an API key of one's own.
 *
 * Exit codes (EXIT_CODES, also in --help): 0 done (`run --follow`: the task completed or waits in
 * review); 1 the API refused or the operation failed (a chain that does not verify); 2 a usage error
 * or no login; 3 the API could not be reached (or a followed task's event stream was lost for good);
 * 4 `run --follow`: the task failed or was cancelled.
 * Errors are one line on stderr. `--json` prints the API's answers as JSON for scripts.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Command, CommanderError, Option } from 'commander';
import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './api-types';

const VERSION = '0.1.0';

const EXIT_CODES = `Exit codes:
  0  done (run --follow: the task completed, or waits in review)
  1  the API refused, or the operation failed (an export that does not verify)
  2  usage error, or not logged in
  3  the API could not be reached (run --follow: its event stream was lost after retries)
  4  run --follow: the task failed or was cancelled`;

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** Worth another try for a read: the API could not be reached, or answered 429 or 5xx. */
    readonly transient = false,
  ) {
    super(message);
  }
}

interface Stored {
  url: string;
  apiKey: string;
}

const configPath = () => process.env.STEWARD_CONFIG || join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'steward', 'config.json');

/** An API key as the API makes them: the prefix and base64url (a key with anything else is refused, never sent nor echoed). */
const API_KEY = /^stw_[A-Za-z0-9_-]{10,200}$/;
/** Tokens of any Steward kind, blanked out of a message before it is printed. */
const scrub = (text: string) => text.replace(/\bst[a-z]_[A-Za-z0-9_-]+/g, '[token]');

/** Hosts that plain http may reach: the key never leaves the machine. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** The API's URL, or a usage error: an http(s) URL, and https unless the host is loopback (the key is sent on every call). */
function apiUrl(url: string): URL {
  const u = URL.canParse(url) ? new URL(url) : null;
  if (!u || !/^https?:$/.test(u.protocol)) throw new CliError(`"${url}" is not an http(s) URL`, 2);
  if (u.protocol === 'http:' && !LOOPBACK.test(u.hostname)) throw new CliError(`refusing ${u.origin}: plain http would send the API key unencrypted; use https:// (http only to localhost, 127.0.0.1 or ::1)`, 2);
  return u;
}

function loadLogin(): Stored {
  const path = configPath();
  if (!existsSync(path)) throw new CliError('not logged in: run "steward login --url <api-url> --api-key-stdin" (the key on standard input) first', 2);
  // As ssh does with a private key: a key others can read is not used.
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== 'win32' && mode & 0o077) throw new CliError(`the config file ${path} holds an API key but others may read it (mode ${mode.toString(8).padStart(4, '0')}): run "chmod 600 ${path}", or "steward login" again`, 2);
  let c: Partial<Stored>;
  try {
    c = JSON.parse(readFileSync(path, 'utf8')) as Partial<Stored>;
    if (typeof c.url !== 'string' || typeof c.apiKey !== 'string' || !API_KEY.test(c.apiKey)) throw new Error('incomplete');
  } catch {
    throw new CliError(`the config file ${path} is not valid: run "steward login" again`, 2);
  }
  apiUrl(c.url);
  return { url: c.url, apiKey: c.apiKey };
}

/** Standard input, whole (an API key: a few bytes; more is refused), without its surrounding whitespace. */
async function readStdin(limit = 4096): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new CliError('standard input holds more than an API key', 2);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}

function saveLogin(c: Stored): string {
  const path = configPath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeAtomically(path, `${JSON.stringify(c, null, 2)}\n`);
  return path;
}

/**
 * Writes a file whole or not at all: a new file beside it, created 0600 (never readable by others,
 * even for a moment, whatever was there), flushed to disk, then renamed over the old one. A symlink
 * at the path is replaced, not followed; the previous file stays until the new one is complete.
 */
function writeAtomically(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
  }
}

/**
 * The Steward API, typed from its OpenAPI document (src/api-types.ts, generated by
 * `npm run gen:api -w @steward/cli`): a path, parameter, body field or answer field the document
 * does not have is a compile error.
 */
type Api = Client<paths>;
type Problem = components['schemas']['Problem'];
/** A query parameter of an operation, by operationId: `Query<'exportAuditTrail'>['format']`. */
type Query<Op extends keyof operations> = NonNullable<operations[Op]['parameters']['query']>;
/**
 * The JSON body an operation takes, by operationId. openapi-fetch 0.17 does not flag an unknown
 * field in a body once its required fields are there (openapi-typescript issue #1769), so every
 * body below is written `{...} satisfies Body<'operationId'>`, which does.
 */
type Body<Op extends keyof operations> = operations[Op] extends { requestBody?: { content: { 'application/json': infer T } } } ? T : never;

function client(c: Stored): Api {
  return createClient<paths>({
    baseUrl: c.url,
    headers: { authorization: `Bearer ${c.apiKey}`, 'user-agent': `steward-cli/${VERSION}`, accept: 'application/json' },
  });
}

/** One line from a refusal: the problem's detail (or title) and its stable code. */
function refusal(error: unknown, res: Response): string {
  const p = error && typeof error === 'object' ? (error as Partial<Problem>) : {};
  const detail = `${p.detail ?? p.title ?? `${res.status} ${res.statusText}`}${p.code ? ` (${p.code}, HTTP ${res.status})` : ''}`;
  return detail.replace(/\s+/g, ' ');
}

/**
 * Awaits one typed call: its answer, or a CliError — exit code 1 when the API refused
 * (problem+json), 3 when it could not be reached (both transient when worth another try).
 */
async function ok<R extends { data?: unknown; error?: unknown; response: Response }>(c: Stored, call: Promise<R>): Promise<NonNullable<R['data']>> {
  let r: R;
  try {
    r = await call;
  } catch (err) {
    const cause = (err as Error).cause;
    throw new CliError(`cannot reach the Steward API at ${c.url}: ${scrub(cause instanceof Error ? cause.message : (err as Error).message)}`, 3, true);
  }
  if (!r.response.ok) throw new CliError(refusal(r.error, r.response), 1, r.response.status === 429 || r.response.status >= 500);
  return r.data as NonNullable<R['data']>;
}

type Call = <R extends { data?: unknown; error?: unknown; response: Response }>(p: Promise<R>) => Promise<NonNullable<R['data']>>;

/** The logged-in user's client, and a helper that unwraps its calls. */
function session(): { api: Api; call: Call } {
  const login = loadLogin();
  const api = client(login);
  return { api, call: (p) => ok(login, p) };
}

let asJson = false;
/**
 * Text from the API (a model's output, a refusal's reason, a tool's or an OAuth client's name) as a
 * terminal may show it: control characters other than line breaks and tabs (ESC and the rest of
 * C0, DEL, C1) become U+FFFD. A model steered by what it read could otherwise move the cursor,
 * erase the lines above (an action it ran), set the clipboard or draw a link to somewhere else.
 */
// eslint-disable-next-line no-control-regex
const shown = (text: string) => text.replace(/\r\n/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\uFFFD');
const out = (line: string) => process.stdout.write(`${shown(line)}\n`);
// JSON escapes C0 itself; DEL and C1 are escaped too (\u009b), so that the data stays whole and the terminal safe.
const print = (data: unknown, human: () => void) =>
  asJson ? process.stdout.write(`${JSON.stringify(data, null, 2).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`) : human();
/** Tab-separated rows; a column the answer's schema does not have does not compile. */
const table = <T extends object>(rows: readonly T[], cols: readonly (keyof T & string)[]) => {
  if (!rows.length) return out('(none)');
  for (const r of rows) out(cols.map((c) => cell(String(r[c] ?? ''))).join('\t'));
};
/**
 * A table cell: its own tabs and line breaks shown as \t and \n (a name an MCP client or an upstream
 * chose could otherwise add rows or columns to a reviewer's listing), and bidirectional controls
 * (which reorder what the eye reads) as U+FFFD.
 */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const cell = (text: string) => text.replace(/\t/g, '\\t').replace(/\r?\n/g, '\\n').replace(BIDI, '\uFFFD');

/**
 * One event of GET /v1/tasks/{id}/events: `seq` is its sequence number in the task (the SSE `id`),
 * which a reconnection resumes after. The OpenAPI document describes the stream as
 * text/event-stream without a schema for its events, so their data is read field by field.
 */
type TaskEvent = { seq: number | null; event: string; data: Record<string, unknown> };
type TaskState = operations['getTask']['responses'][200]['content']['application/json']['state'];

/**
 * Reads a server-sent event stream, calling `on` for each whole event. A dropped connection
 * rejects (the events before it were delivered); an event whose data is not JSON is a CliError.
 */
async function readSse(body: ReadableStream<Uint8Array>, on: (e: TaskEvent) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    let at: number;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let event = 'message';
      let id = '';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (!data.length) continue;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(data.join('\n')) as Record<string, unknown>;
      } catch {
        throw new CliError(`the API sent a task event that is not JSON (${event})`, 1);
      }
      const seq = /^\d{1,12}$/.test(id) ? Number(id) : typeof parsed.seq === 'number' ? parsed.seq : null;
      on({ seq, event, data: parsed });
    }
  }
}

function describeEvent({ event, data: d }: TaskEvent): string | null {
  switch (event) {
    case 'state':
      return `state: ${d.state}${d.error ? ` (${(d.error as { message?: string }).message ?? ''})` : ''}`;
    case 'action':
      return `action: ${d.connector}/${d.tool} → ${d.status}${d.level ? ` [${d.level}]` : ''}${d.reason ? ` — ${d.reason}` : ''}`;
    case 'model':
      return `model turn${d.turn !== undefined ? ` ${d.turn}` : ''}`;
    case 'output':
      return null;
    case 'error':
      return `error: ${(d.message as string) ?? JSON.stringify(d)}`;
    default:
      return `${event}`;
  }
}

/** Where a followed task ends; `awaiting_approval` is not one: the task goes on once a person decides. */
const FINAL: readonly TaskState[] = ['completed', 'failed', 'cancelled', 'in_review'];
/** A followed stream that drops (or cannot be opened) is tried again this many times in a row, after 0.5, 1, 2, 4, 8 s. */
const FOLLOW_RETRIES = 5;
const retryDelay = (failures: number) => Math.min(250 * 2 ** failures, 8_000);
/** How often a task waiting for an approval is looked at: from 1 s, slowing to every 5 s. */
const approvalPoll = (n: number) => Math.min(Math.round(1_000 * 1.5 ** n), 5_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Follows a task to its end (FINAL), printing each event once: the stream is read from the API; a
 * dropped stream is opened again (FOLLOW_RETRIES, with backoff) after the last event printed
 * (`after`, the event's sequence number); while the task waits for an approval (the API ends
 * the stream then) one line names each pending approval and the task is looked at until it goes
 * on. `on` gets each event.
 */
async function followTask(api: Api, call: Call, taskId: string, on: (e: TaskEvent) => void): Promise<void> {
  const byId = { params: { path: { id: taskId } } };
  let last = 0;
  let seen: TaskState | null = null;
  let failures = 0;
  let waits = 0;
  const announced = new Set<string>();
  /** One more try after a transient failure, or the failure itself once the tries are spent. */
  const retry = async (err: unknown) => {
    if (err instanceof CliError && !err.transient) throw err;
    if (++failures > FOLLOW_RETRIES) {
      const why = err instanceof CliError ? err.message : `the event stream of task ${taskId} was cut (${(err as Error).message})`;
      throw new CliError(`${why}; gave up after ${FOLLOW_RETRIES} retries ("steward tasks" shows where the task is)`, 3);
    }
    await sleep(retryDelay(failures));
  };
  /** The task's events after the last one printed; `follow`: until the API ends the stream. */
  const read = async () => {
    let got = false;
    const stream = await call(api.GET('/v1/tasks/{id}/events', { params: { path: { id: taskId }, query: { follow: 'true', ...(last ? { after: last } : {}) } }, parseAs: 'stream' }));
    await readSse(stream, (e) => {
      if (e.seq !== null) {
        if (e.seq <= last) return;
        last = e.seq;
      }
      got = true;
      failures = 0;
      if (e.event === 'state' && typeof e.data.state === 'string') seen = e.data.state as TaskState;
      on(e);
    });
    return got;
  };
  /** One line for each approval the task newly waits for: its id and where to decide it. */
  const announce = async () => {
    let items: { id: string; kind: string; connector: string; tool: string }[] = [];
    try {
      items = (await call(api.GET('/v1/approvals', { params: { query: { state: 'pending', limit: 200 } } }))).items.filter((a) => a.taskId === taskId);
    } catch (err) {
      if (err instanceof CliError && err.transient) throw err;
      // A key that may not list approvals still follows the task.
    }
    if (!items.length && !announced.size) {
      announced.add('');
      if (!asJson) out('waiting for approval: an approver decides it with "steward approve <id>" ("steward approvals" lists them) or in the console');
    }
    for (const a of items) {
      if (announced.has(a.id)) continue;
      announced.add(a.id);
      if (asJson) continue;
      if (a.kind === 'outcome_unknown') out(`waiting for approval ${a.id}: ${a.connector}/${a.tool} was interrupted and its outcome is unknown; a person settles it in the console`);
      else out(`waiting for approval ${a.id} (${a.connector}/${a.tool}): an approver decides it with "steward approve ${a.id}" or "steward reject ${a.id} --reason ..." or in the console`);
    }
  };

  for (let ending = false; ; ) {
    let got: boolean;
    try {
      got = await read();
    } catch (err) {
      await retry(err);
      continue;
    }
    if (ending) break;
    let state: TaskState;
    try {
      state = (await call(api.GET('/v1/tasks/{id}', byId))).state;
    } catch (err) {
      await retry(err);
      continue;
    }
    if (FINAL.includes(state)) {
      // Its last events came with the stream, unless the task ended after the stream did (while it waited): one more read.
      if (seen === state) return;
      ending = true;
    } else if (state === 'awaiting_approval') {
      try {
        await announce();
      } catch (err) {
        await retry(err);
        continue;
      }
      failures = 0;
      await sleep(approvalPoll(waits++));
    } else {
      waits = 0;
      // The API ended the stream of a running task (its time limit, or a fault on its side): open it again, but not in a busy loop.
      if (!got) await retry(new Error('the stream ended early'));
    }
  }
}

const EXPORT_FORMATS = ['ndjson', 'csv', 'cef', 'ocsf', 'ecs'] as const satisfies readonly NonNullable<Query<'exportAuditTrail'>['format']>[];

export function program(): Command {
  const p = new Command('steward')
    .description('Run governed agent tasks and oversee them from the terminal')
    .version(VERSION)
    .option('--json', 'print JSON (for scripts)')
    .showSuggestionAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: (s) => process.stdout.write(s) })
    .addHelpText('after', `\n${EXIT_CODES}`)
    .hook('preAction', (cmd) => {
      asJson = !!cmd.optsWithGlobals().json;
    });

  p.command('login')
    .description('Store an API key (created in the console) in your config file (mode 0600)')
    .requiredOption('--url <url>', 'the Steward API, e.g. https://steward.example.com (plain http only to localhost, 127.0.0.1 or ::1)')
    .option('--api-key-stdin', 'read the API key from standard input (preferred; also done when no key is given and stdin is not a terminal)')
    .option('--api-key <key>', 'the API key (stw_...) on the command line: others see it in ps and your shell history keeps it; prefer --api-key-stdin or STEWARD_API_KEY')
    .addHelpText('after', '\nThe key: --api-key-stdin (e.g. `steward login --url <url> --api-key-stdin < key.txt`), else --api-key, else the STEWARD_API_KEY environment variable, else standard input when it is not a terminal.')
    .action(async (o: { url: string; apiKey?: string; apiKeyStdin?: boolean }) => {
      apiUrl(o.url);
      if (o.apiKey !== undefined && o.apiKeyStdin) throw new CliError('give the API key one way: --api-key-stdin or --api-key', 2);
      const apiKey = o.apiKeyStdin ? await readStdin() : (o.apiKey ?? (process.env.STEWARD_API_KEY || (process.stdin.isTTY ? '' : await readStdin())));
      if (!apiKey) throw new CliError('no API key: pipe it into "steward login --url <api-url> --api-key-stdin", or set STEWARD_API_KEY', 2);
      if (!API_KEY.test(apiKey)) throw new CliError('the API key must look like "stw_..." (letters, digits, "-" and "_")', 2);
      const login = { url: o.url.replace(/\/+$/, ''), apiKey };
      const who = await ok(login, client(login).GET('/v1/auth/session'));
      const path = saveLogin(login);
      print({ ok: true, config: path, user: who.user?.email ?? null, org: who.org?.name ?? null }, () => out(`logged in as ${who.user?.email ?? 'this key'}${who.org?.name ? ` (${who.org.name})` : ''}; key stored in ${path}`));
    });

  p.command('run')
    .description('Start an agent task; --follow shows its progress and ends with its result')
    .argument('<prompt>', 'what the agent should do')
    .option('--workflow <key>', 'the workflow it belongs to (its trust levels)')
    .option('--connector <name...>', 'installed connectors the task may use')
    .option('--follow', 'stream progress until the task ends (completed, failed, cancelled or in review), waiting through approvals')
    .addHelpText(
      'after',
      '\nWith --follow, a Watched action that waits for an approval prints its id and keeps following until an approver decides (steward approve <id>, or the console); a dropped stream is resumed after the last event shown. Exit code 0: completed or in review; 4: failed or cancelled.',
    )
    .action(async (prompt: string, o: { workflow?: string; connector?: string[]; follow?: boolean }) => {
      const { api, call } = session();
      const task = await call(api.POST('/v1/tasks', { body: { prompt, workflow: o.workflow, connectors: o.connector } satisfies Body<'createTask'> }));
      if (!o.follow) {
        print(task, () => out(`task ${task.id} ${task.state}`));
        return;
      }
      if (!asJson) out(`task ${task.id} started`);
      const outputs: string[] = [];
      const events: unknown[] = [];
      await followTask(api, call, task.id, (e) => {
        events.push({ event: e.event, ...e.data });
        if (e.event === 'output' && typeof e.data.text === 'string') outputs.push(e.data.text);
        const line = describeEvent(e);
        if (line && !asJson) out(line);
      });
      const final = await call(api.GET('/v1/tasks/{id}', { params: { path: { id: task.id } } }));
      const result = outputs.join('').trim();
      print({ task: final, result, events }, () => {
        out(`result (${final.state}):`);
        out(result || '(no output)');
      });
      const message = final.error && typeof final.error.message === 'string' ? final.error.message : '';
      if (final.state === 'failed' || final.state === 'cancelled') throw new CliError(`task ${final.id} ${final.state}${message ? `: ${message}` : ''}`, 4);
    });

  p.command('tasks')
    .description('Your agent tasks, newest first')
    .action(async () => {
      const { api, call } = session();
      const r = await call(api.GET('/v1/tasks'));
      print(r, () => table(r.items, ['id', 'state', 'workflow', 'createdAt']));
    });

  p.command('approvals')
    .description('Approval requests you may decide now')
    .action(async () => {
      const { api, call } = session();
      const r = await call(api.GET('/v1/approvals', { params: { query: { actionable: 'true' } } }));
      print(r, () => table(r.items, ['id', 'connector', 'tool', 'actionType', 'reason']));
    });

  p.command('approve')
    .description('Approve a Watched action: what it would do is shown first (tool, arguments, taint), then approved with --yes')
    .argument('<id>', 'the approval id')
    .option('--yes', 'approve what is shown without asking (the arguments are printed all the same)')
    .action(async (id: string, o: { yes?: boolean }) => {
      const { api, call } = session();
      const byId = { params: { path: { id } } };
      // An approval is of what the action would do: read first, never blind.
      const d = await call(api.GET('/v1/approvals/{id}', byId));
      const shownTo = process.stderr;
      // Bidirectional controls too: they would reorder what the approver reads (a recipient's address).
      const say = (line: string) => shownTo.write(`${shown(line).replace(BIDI, '\uFFFD')}\n`);
      say(`${d.connector}/${d.tool} (${d.actionType}) for ${d.requestedBy}${d.taskId ? ` in task ${d.taskId}` : ''}`);
      say(`why it waits: ${d.reason}`);
      if (d.tainted || d.labels.length) say(`read before: ${[d.tainted ? 'untrusted content (tainted)' : '', ...d.labels].filter(Boolean).join(', ')}`);
      say(`arguments: ${d.arguments === null ? '(not shown to you)' : JSON.stringify(d.arguments, null, 2)}`);
      if (d.argumentsMatch === false) throw new CliError('the arguments shown are not the ones the approval is bound to: not approved (reject it)', 1);
      if (d.arguments === null) throw new CliError('the arguments cannot be shown to you: not approved (decide it in the console, or ask for the approval to be routed to you)', 1);
      if (!o.yes) {
        if (!process.stdin.isTTY) throw new CliError('approve what is shown with --yes (no terminal to ask)', 2);
        const answer = await new Promise<string>((resolve) => {
          shownTo.write('Approve this action? [y/N] ');
          process.stdin.setEncoding('utf8');
          process.stdin.once('data', (chunk) => resolve(String(chunk)));
          // End of input (Ctrl-D) is no answer: not approved.
          process.stdin.once('end', () => resolve(''));
        });
        process.stdin.pause();
        if (!/^y(es)?\s*$/i.test(answer.trim())) throw new CliError('not approved', 1);
      }
      const r = await call(api.POST('/v1/approvals/{id}/approve', { ...byId, body: {} satisfies Body<'approveApproval'> }));
      print(r, () => out(`approval ${r.id}: ${r.state}`));
    });

  p.command('reject')
    .description('Reject a Watched action')
    .argument('<id>', 'the approval id')
    .requiredOption('--reason <text>', 'why (the requester sees it)')
    .action(async (id: string, o: { reason: string }) => {
      const { api, call } = session();
      const r = await call(api.POST('/v1/approvals/{id}/reject', { params: { path: { id } }, body: { reason: o.reason } satisfies Body<'rejectApproval'> }));
      print(r, () => out(`approval ${r.id}: ${r.state}`));
    });

  p.command('rate')
    .description('Rate a finished task of yours from 1 (poor) to 5 (excellent) — the pilot\'s satisfaction score')
    .argument('<task>', 'the task id')
    .argument('<rating>', '1 to 5')
    .option('--comment <text>', 'what worked or did not')
    .action(async (task: string, rating: string, o: { comment?: string }) => {
      if (!/^[1-5]$/.test(rating)) throw new CliError('the rating is a whole number from 1 to 5', 2);
      const { api, call } = session();
      const r = await call(api.PUT('/v1/tasks/{id}/rating', { params: { path: { id: task } }, body: { rating: Number(rating), comment: o.comment } satisfies Body<'rateTask'> }));
      print(r, () => out(`task ${r.taskId}: rated ${r.rating}/5`));
    });

  p.command('reviews')
    .description('Tasks in review (Batched actions to accept or revert); --gateway: Batched writes made through the MCP gateway')
    .option('--gateway', 'list the MCP gateway\'s Batched writes waiting for a reviewer (one line each)')
    .action(async (o: { gateway?: boolean }) => {
      const { api, call } = session();
      if (o.gateway) {
        const r = await call(api.GET('/v1/reviews/gateway'));
        print(r, () => table(r.items.map((i) => ({ ...i, state: i.interrupted ? `${i.reviewState}_interrupted` : i.reviewState })), ['actionId', 'userId', 'connector', 'tool', 'clientName', 'undoTool', 'createdAt', 'state']));
        return;
      }
      const r = await call(api.GET('/v1/reviews'));
      print(r, () => table(r.items, ['taskId', 'taskState', 'pending', 'accepted', 'reverted', 'dismissed']));
    });

  const policy = p.command('policy').description('The org policy');
  policy
    .command('show')
    .description('The active policy version and its document')
    .action(async () => {
      const { api, call } = session();
      const r = await call(api.GET('/v1/policies/active'));
      print(r, () => out(JSON.stringify(r, null, 2)));
    });
  policy
    .command('diff')
    .description('What a policy document file changes against the active version')
    .argument('<file>', 'a policy document (JSON)')
    .action(async (file: string) => {
      const doc = readDocument(file);
      const { api, call } = session();
      const active = await call(api.GET('/v1/policies/active'));
      const changes = diff(active.document, doc);
      print({ changes }, () => {
        if (!changes.length) out('no changes');
        for (const c of changes) out(`${c.kind}\t${c.path}`);
      });
    });
  policy
    .command('simulate')
    .description('Decide sample actions under a policy document file and the active version (a draft is created for it and deleted after)')
    .argument('<file>', 'a policy document (JSON)')
    .requiredOption('--actions <file>', 'JSON array of actions to decide, e.g. [{"action":"email.send","context":{}}]')
    .action(async (file: string, o: { actions: string }) => {
      // The files are the user's input: the API validates them against the same schemas. The actions'
      // shape is checked here first, so that a file that cannot be simulated creates no draft at all.
      const doc = readDocument(file) as Body<'createPolicyDraft'>['document'];
      const actions = readDocument(o.actions) as Body<'simulatePolicy'>['actions'];
      if (!Array.isArray(actions) || actions.length < 1 || actions.length > 500 || actions.some((a) => !a || typeof a !== 'object' || Array.isArray(a) || typeof (a as { action?: unknown }).action !== 'string')) {
        throw new CliError(`${o.actions} must be a JSON array of 1 to 500 actions, each an object with an "action" (e.g. [{"action":"email.send","context":{}}])`, 2);
      }
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new CliError(`${file} must hold a policy document (a JSON object)`, 2);
      const { api, call } = session();
      const draft = await call(api.POST('/v1/policies', { body: { note: 'steward policy simulate (temporary draft)', document: doc } satisfies Body<'createPolicyDraft'> }));
      const byId = { params: { path: { id: draft.id } } };
      try {
        const r = await call(api.POST('/v1/policies/{id}/simulate', { ...byId, body: { actions } satisfies Body<'simulatePolicy'> }));
        print(r, () => {
          const { total, changed, stricter, looser } = r.summary;
          out(`${total} action(s), ${changed} changed (${stricter} stricter, ${looser} looser)`);
          for (const x of r.results) out(`${x.index}\t${x.action}\t${x.before.level} → ${x.after.level}${x.changed ? '\tchanged' : ''}`);
        });
      } finally {
        // The temporary draft goes; one that could not be deleted is named (the simulation's own error, if any, is the one shown).
        await call(api.DELETE('/v1/policies/{id}', byId)).catch((err: unknown) => {
          process.stderr.write(`steward: ${shown(`the temporary draft ${draft.id} was not deleted (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): delete it in the console or with DELETE /v1/policies/${draft.id}`)}\n`);
          process.exitCode = 1;
        });
      }
    });

  const audit = p.command('audit').description('The audit trail');
  audit
    .command('search')
    .description('Search audit events')
    .option('--action <action>', 'an action type, e.g. email.send')
    .option('--limit <n>', 'how many', '50')
    .action(async (o: { action?: string; limit: string }) => {
      if (!/^\d{1,6}$/.test(o.limit)) throw new CliError('--limit is a whole number', 2);
      const { api, call } = session();
      const r = await call(api.GET('/v1/audit-events', { params: { query: { limit: Number(o.limit), action: o.action } } }));
      print(r, () => table(r.items, ['occurredAt', 'action', 'outcome', 'actorId']));
    });
  audit
    .command('export')
    .description('Export the chain (to stdout, or whole to a file with --output)')
    .addOption(new Option('--format <format>', 'export format').choices(EXPORT_FORMATS).default('ndjson'))
    .option('--output <file>', 'write the export to this file: complete, or not at all (written beside it, then renamed)')
    .option('--manifest <file>', 'also write the manifest of exactly the exported range to this file (for "audit verify"), once the export is complete')
    .action(async (o: { format: (typeof EXPORT_FORMATS)[number]; output?: string; manifest?: string }) => {
      // Its bytes are the trail's as stored (what agents and upstreams wrote included): for a file or a pipe, not a terminal.
      if (!o.output && process.stdout.isTTY) throw new CliError('the export is data, not for a terminal: write it with --output <file>, or pipe it', 2);
      // Where the files go is checked before anything is asked of the server.
      for (const target of [o.output, o.manifest]) {
        if (target === undefined) continue;
        if (existsSync(target) && statSync(target).isDirectory()) throw new CliError(`cannot write ${target}: it is a directory (give a file name)`, 2);
        if (!existsSync(dirname(target)) || !statSync(dirname(target)).isDirectory()) throw new CliError(`cannot write ${target}: no directory ${dirname(target)}`, 2);
      }
      if (o.output !== undefined && o.output === o.manifest) throw new CliError('--output and --manifest must be different files', 2);
      const { api, call } = session();
      let range: Pick<Query<'exportAuditTrail'>, 'fromSeq' | 'toSeq'> = {};
      // The manifest first, then the export of its range: events sealed in between are in neither.
      const manifest = o.manifest ? await call(api.GET('/v1/audit/export/manifest')) : null;
      if (manifest && manifest.toSeq >= 1) range = { fromSeq: manifest.fromSeq, toSeq: manifest.toSeq };
      const body = await call(api.GET('/v1/audit/export', { params: { query: { format: o.format, ...range } }, parseAs: 'stream' }));
      const tmp = o.output ? join(dirname(o.output), `.${basename(o.output)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`) : null;
      let fd: number | null = null;
      if (tmp) {
        try {
          fd = openSync(tmp, 'wx', 0o600);
        } catch (err) {
          throw new CliError(`cannot write ${o.output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
        }
      }
      try {
        if (fd !== null) {
          // To the file beside the target, then renamed: the target is the whole export or nothing.
          const file = createWriteStream('', { fd });
          await pipeline(body as unknown as AsyncIterable<Uint8Array>, file);
          try {
            renameSync(tmp!, o.output!);
          } catch (err) {
            rmSync(tmp!, { force: true });
            throw new CliError(`cannot write ${o.output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
          }
        } else {
          for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) if (!process.stdout.write(chunk)) await new Promise<void>((r) => process.stdout.once('drain', () => r()));
        }
      } catch (err) {
        if (err instanceof CliError) throw err;
        if (tmp) rmSync(tmp, { force: true });
        const code = (err as NodeJS.ErrnoException).code;
        // A file that cannot be written is a usage error (2); a stream the network cut, the API not reached (3).
        if (fd !== null && code && /^E(NOSPC|ACCES|PERM|IO|ROFS|DQUOT|NOENT|EXIST)$/.test(code)) throw new CliError(`cannot write ${o.output}: ${code}`, 2);
        throw new CliError(`the export was cut off before its end (${scrub((err as Error).message)})${o.output ? `: ${o.output} was not written` : ''}`, 3, true);
      }
      // Only once the export is whole: a manifest never describes an export that did not complete.
      if (o.manifest && manifest) {
        try {
          writeAtomically(o.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
        } catch (err) {
          // Both files or neither.
          if (o.output) rmSync(o.output, { force: true });
          throw err instanceof CliError ? new CliError(`${err.message}${o.output ? `; ${o.output} was removed` : ''}`, 2) : err;
        }
      }
    });
  audit
    .command('public-key')
    .description('The server\'s checkpoint public key (PEM); pin your own copy out of band: a verifier must not trust the server it audits')
    .action(async () => {
      const { api, call } = session();
      const r = await call(api.GET('/v1/audit/public-key'));
      print(r, () => process.stdout.write(shown(r.publicKeyPem.endsWith('\n') ? r.publicKeyPem : `${r.publicKeyPem}\n`)));
    });
  audit
    .command('verify')
    .description('Verify an NDJSON export offline against its manifest and the auditor\'s public key')
    .argument('<export>', 'the NDJSON export file')
    .requiredOption('--manifest <file>', 'the export manifest ("audit export --manifest <file>" writes it)')
    .requiredOption('--public-key <file>', 'your pinned copy of the checkpoint public key (PEM)')
    .option('--checkpoints <file>', "the checkpoints you hold (JSON lines, as pushed off the box): checked instead of the manifest's list, which the server filled")
    .action(async (exportPath: string, o: { manifest: string; publicKey: string; checkpoints?: string }) => {
      const { readCheckpointLog, verifyExport } = await import('@steward/audit');
      const manifest = readDocument(o.manifest) as Parameters<typeof verifyExport>[1];
      const publicKey = readText(o.publicKey);
      let held: ReturnType<typeof readCheckpointLog> | null = null;
      if (o.checkpoints !== undefined) {
        const log = readText(o.checkpoints);
        try {
          held = readCheckpointLog(log);
        } catch (err) {
          throw new CliError(`${o.checkpoints}: ${(err as Error).message}`, 2);
        }
      }
      if (!existsSync(exportPath)) throw new CliError(`cannot read ${exportPath}`, 2);
      const verified = await verifyExport(exportPath, manifest, publicKey, held);
      // What was verified, as the manifest names it: the org and the range (a check of another org's, or of a part, is no check of the whole).
      const result = { ...verified, org: manifest?.org ?? null, fromSeq: manifest?.fromSeq ?? null, toSeq: manifest?.toSeq ?? null, checkpoints: held ? 'held' : 'manifest' };
      print(result, () => out(JSON.stringify(result)));
      if (!result.ok) throw new CliError('the export does not verify', 1);
    });

  p.command('connectors')
    .description('Connectors installed in the org')
    .action(async () => {
      const { api, call } = session();
      const r = await call(api.GET('/v1/connectors'));
      print(r, () => table(r.items, ['name', 'kind', 'status']));
    });
  return p;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`cannot read ${file}`, 2);
  }
}

function readDocument(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not valid JSON`, 2);
  }
}

function diff(a: unknown, b: unknown, path = ''): { path: string; kind: 'added' | 'removed' | 'changed' }[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => {
      const x = (a as Record<string, unknown>)[k];
      const y = (b as Record<string, unknown>)[k];
      if (x === undefined) return [{ path: `${path}/${k}`, kind: 'added' as const }];
      if (y === undefined) return [{ path: `${path}/${k}`, kind: 'removed' as const }];
      return diff(x, y, `${path}/${k}`);
    });
  }
  return [{ path: path || '/', kind: 'changed' }];
}

export async function main(argv: string[]): Promise<number> {
  // A reader that stops early (`steward tasks | head -1`) ends the output, not in a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  try {
    await program().parseAsync(argv);
    // A command that finished but set a failure on its way (a temporary draft not deleted) says so.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // A command group with no command (`steward`, `steward policy`): a usage error, said in one line.
      if (err.code === 'commander.help') {
        process.stderr.write(`steward: a command is missing: ${argv.slice(2).filter((a) => !a.startsWith('-')).concat('--help').join(' ').replace(/^/, 'steward ')} lists them\n`);
        return 2;
      }
      process.stderr.write(`steward: ${shown(err.message.replace(/^error: /, '').split('\n')[0]!)}\n`);
      return 2;
    }
    if (err instanceof CliError) {
      process.stderr.write(`steward: ${shown(err.message.split('\n')[0]!)}\n`);
      return err.exitCode;
    }
    process.stderr.write(`steward: ${shown((err as Error).message?.split('\n')[0] ?? String(err))}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
