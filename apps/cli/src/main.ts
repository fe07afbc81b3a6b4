#!/usr/bin/env node
/**
 * steward — the command line of Steward: run governed agent tasks and follow them, decide
 * approvals, read reviews, the policy and the audit trail, with an API key of one's own.
 *
 * Exit codes: 0 done; 1 the API refused or the operation failed (a task that failed, a chain
 * that does not verify); 2 a usage error or no login; 3 the API could not be reached.
 * Errors are one line on stderr. `--json` prints the API's answers as JSON for scripts.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';

const VERSION = '0.1.0';

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface Stored {
  url: string;
  apiKey: string;
}

const configPath = () => process.env.STEWARD_CONFIG || join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'steward', 'config.json');

function loadLogin(): Stored {
  const path = configPath();
  if (!existsSync(path)) throw new CliError('not logged in: run "steward login --url <api-url> --api-key <key>" first', 2);
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as Partial<Stored>;
    if (typeof c.url !== 'string' || typeof c.apiKey !== 'string') throw new Error('incomplete');
    return { url: c.url, apiKey: c.apiKey };
  } catch {
    throw new CliError(`the config file ${path} is not valid: run "steward login" again`, 2);
  }
}

function saveLogin(c: Stored): string {
  const path = configPath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

async function api(c: Stored, method: string, path: string, body?: unknown): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(new URL(path, c.url), {
      method,
      headers: { authorization: `Bearer ${c.apiKey}`, 'user-agent': `steward-cli/${VERSION}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), accept: 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new CliError(`cannot reach the Steward API at ${c.url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, 3);
  }
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const p = (await res.json()) as { title?: string; detail?: string; code?: string };
      detail = `${p.detail ?? p.title ?? detail}${p.code ? ` (${p.code}, HTTP ${res.status})` : ''}`;
    } catch {
      // not a problem document
    }
    throw new CliError(detail.replace(/\s+/g, ' '), 1);
  }
  return res;
}

async function json<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await api(loadLogin(), method, path, body);
  return (res.status === 204 ? null : await res.json()) as T;
}

let asJson = false;
const out = (line: string) => process.stdout.write(`${line}\n`);
const print = (data: unknown, human: () => void) => (asJson ? out(JSON.stringify(data, null, 2)) : human());
const table = (rows: Record<string, unknown>[], cols: string[]) => {
  if (!rows.length) return out('(none)');
  for (const r of rows) out(cols.map((c) => String(r[c] ?? '')).join('\t'));
};

/** Reads a server-sent event stream, calling `on` for each event. */
async function readSse(res: Response, on: (event: string, data: Record<string, unknown>) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length) on(event, JSON.parse(data.join('\n')) as Record<string, unknown>);
    }
  }
}

function describeEvent(event: string, d: Record<string, unknown>): string | null {
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

const TERMINAL = ['completed', 'failed', 'cancelled', 'in_review', 'awaiting_approval'];

export function program(): Command {
  const p = new Command('steward')
    .description('Run governed agent tasks and oversee them from the terminal')
    .version(VERSION)
    .option('--json', 'print JSON (for scripts)')
    .showSuggestionAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: (s) => process.stdout.write(s) })
    .hook('preAction', (cmd) => {
      asJson = !!cmd.optsWithGlobals().json;
    });

  p.command('login')
    .description('Store an API key (created in the console) in your config file (mode 0600)')
    .requiredOption('--url <url>', 'the Steward API, e.g. https://steward.example.com')
    .requiredOption('--api-key <key>', 'an API key (stw_...)')
    .action(async (o: { url: string; apiKey: string }) => {
      if (!URL.canParse(o.url) || !/^https?:$/.test(new URL(o.url).protocol)) throw new CliError(`"${o.url}" is not an http(s) URL`, 2);
      if (!/^stw_\S{10,200}$/.test(o.apiKey)) throw new CliError('the API key must look like "stw_..."', 2);
      const login = { url: o.url.replace(/\/+$/, ''), apiKey: o.apiKey };
      const who = (await (await api(login, 'GET', '/v1/auth/session')).json()) as { user?: { email?: string }; org?: { name?: string } };
      const path = saveLogin(login);
      print({ ok: true, config: path, user: who.user?.email ?? null, org: who.org?.name ?? null }, () => out(`logged in as ${who.user?.email ?? 'this key'}${who.org?.name ? ` (${who.org.name})` : ''}; key stored in ${path}`));
    });

  p.command('run')
    .description('Start an agent task; --follow shows its progress and ends with its result')
    .argument('<prompt>', 'what the agent should do')
    .option('--workflow <key>', 'the workflow it belongs to (its trust levels)')
    .option('--connector <name...>', 'installed connectors the task may use')
    .option('--follow', 'stream progress until the task stops')
    .action(async (prompt: string, o: { workflow?: string; connector?: string[]; follow?: boolean }) => {
      const task = await json<{ id: string; state: string }>('POST', '/v1/tasks', { prompt, ...(o.workflow ? { workflow: o.workflow } : {}), ...(o.connector ? { connectors: o.connector } : {}) });
      if (!o.follow) {
        print(task, () => out(`task ${task.id} ${task.state}`));
        return;
      }
      if (!asJson) out(`task ${task.id} started`);
      const login = loadLogin();
      let state = task.state;
      const outputs: string[] = [];
      const events: unknown[] = [];
      for (let attempt = 0; attempt < 20 && !TERMINAL.includes(state); attempt++) {
        const res = await api(login, 'GET', `/v1/tasks/${task.id}/events?follow=true`);
        await readSse(res, (event, d) => {
          events.push({ event, ...d });
          if (event === 'state') state = String(d.state);
          if (event === 'output' && typeof d.text === 'string') outputs.push(d.text);
          const line = describeEvent(event, d);
          if (line && !asJson) out(line);
        });
        if (!TERMINAL.includes(state)) state = (await json<{ state: string }>('GET', `/v1/tasks/${task.id}`)).state;
      }
      const final = await json<{ id: string; state: string; result?: unknown; error?: { message?: string } | null }>('GET', `/v1/tasks/${task.id}`);
      const result = outputs.join('').trim();
      print({ task: final, result, events }, () => {
        out(`result (${final.state}):`);
        out(result || '(no output)');
      });
      if (final.state === 'failed' || final.state === 'cancelled') throw new CliError(`task ${final.id} ${final.state}${final.error?.message ? `: ${final.error.message}` : ''}`, 1);
    });

  p.command('tasks')
    .description('Your agent tasks, newest first')
    .action(async () => {
      const r = await json<{ items: Record<string, unknown>[] }>('GET', '/v1/tasks');
      print(r, () => table(r.items, ['id', 'state', 'workflow', 'createdAt']));
    });

  p.command('approvals')
    .description('Approval requests you may decide now')
    .action(async () => {
      const r = await json<{ items: Record<string, unknown>[] }>('GET', '/v1/approvals?actionable=true');
      print(r, () => table(r.items, ['id', 'connector', 'tool', 'actionType', 'reason']));
    });

  p.command('approve')
    .description('Approve a Watched action')
    .argument('<id>', 'the approval id')
    .action(async (id: string) => {
      const r = await json<{ id: string; state: string }>('POST', `/v1/approvals/${encodeURIComponent(id)}/approve`, {});
      print(r, () => out(`approval ${r.id}: ${r.state}`));
    });

  p.command('reject')
    .description('Reject a Watched action')
    .argument('<id>', 'the approval id')
    .requiredOption('--reason <text>', 'why (the requester sees it)')
    .action(async (id: string, o: { reason: string }) => {
      const r = await json<{ id: string; state: string }>('POST', `/v1/approvals/${encodeURIComponent(id)}/reject`, { reason: o.reason });
      print(r, () => out(`approval ${r.id}: ${r.state}`));
    });

  p.command('rate')
    .description('Rate a finished task of yours from 1 (poor) to 5 (excellent) — the pilot\'s satisfaction score')
    .argument('<task>', 'the task id')
    .argument('<rating>', '1 to 5')
    .option('--comment <text>', 'what worked or did not')
    .action(async (task: string, rating: string, o: { comment?: string }) => {
      if (!/^[1-5]$/.test(rating)) throw new CliError('the rating is a whole number from 1 to 5', 2);
      const r = await json<{ taskId: string; rating: number }>('PUT', `/v1/tasks/${encodeURIComponent(task)}/rating`, { rating: Number(rating), ...(o.comment ? { comment: o.comment } : {}) });
      print(r, () => out(`task ${r.taskId}: rated ${r.rating}/5`));
    });

  p.command('reviews')
    .description('Tasks in review (Batched actions to accept or revert)')
    .action(async () => {
      const r = await json<{ items: Record<string, unknown>[] }>('GET', '/v1/reviews');
      print(r, () => table(r.items, ['taskId', 'state', 'pending']));
    });

  const policy = p.command('policy').description('The org policy');
  policy
    .command('show')
    .description('The active policy version and its document')
    .action(async () => {
      const r = await json<{ version: number; document: unknown }>('GET', '/v1/policies/active');
      print(r, () => out(JSON.stringify(r, null, 2)));
    });
  policy
    .command('diff')
    .description('What a policy document file changes against the active version')
    .argument('<file>', 'a policy document (JSON)')
    .action(async (file: string) => {
      const doc = readDocument(file);
      const active = await json<{ document: unknown }>('GET', '/v1/policies/active');
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
      const doc = readDocument(file);
      const actions = readDocument(o.actions);
      const draft = await json<{ id: string }>('POST', '/v1/policies', { note: 'steward policy simulate (temporary draft)', document: doc });
      try {
        const r = await json('POST', `/v1/policies/${draft.id}/simulate`, { actions });
        print(r, () => out(JSON.stringify(r, null, 2)));
      } finally {
        await json('DELETE', `/v1/policies/${draft.id}`).catch(() => undefined);
      }
    });

  const audit = p.command('audit').description('The audit trail');
  audit
    .command('search')
    .description('Search audit events')
    .option('--action <action>', 'an action type, e.g. email.send')
    .option('--limit <n>', 'how many', '50')
    .action(async (o: { action?: string; limit: string }) => {
      const q = new URLSearchParams({ limit: o.limit, ...(o.action ? { action: o.action } : {}) });
      const r = await json<{ items: Record<string, unknown>[] }>('GET', `/v1/audit-events?${q}`);
      print(r, () => table(r.items, ['occurredAt', 'action', 'outcome', 'actorId']));
    });
  audit
    .command('export')
    .description('Export the chain (to stdout)')
    .addOption(new Option('--format <format>', 'export format').choices(['ndjson', 'csv', 'cef', 'ocsf', 'ecs']).default('ndjson'))
    .action(async (o: { format: string }) => {
      const res = await api(loadLogin(), 'GET', `/v1/audit/export?format=${o.format}`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
    });
  audit
    .command('verify')
    .description('Verify an NDJSON export offline against its manifest and the auditor\'s public key')
    .argument('<export>', 'the NDJSON export file')
    .requiredOption('--manifest <file>', 'the export manifest (GET /v1/audit/export/manifest)')
    .requiredOption('--public-key <file>', 'your pinned copy of the checkpoint public key (PEM)')
    .action(async (exportPath: string, o: { manifest: string; publicKey: string }) => {
      const { verifyExport } = await import('@steward/audit');
      const result = await verifyExport(exportPath, readDocument(o.manifest) as Parameters<typeof verifyExport>[1], readFileSync(o.publicKey, 'utf8'));
      print(result, () => out(JSON.stringify(result)));
      if (!(result as { ok?: boolean }).ok) throw new CliError('the export does not verify', 1);
    });

  p.command('connectors')
    .description('Connectors installed in the org')
    .action(async () => {
      const r = await json<{ items: Record<string, unknown>[] }>('GET', '/v1/connectors');
      print(r, () => table(r.items, ['name', 'kind', 'status']));
    });
  return p;
}

function readDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`cannot read ${file}`, 2);
  }
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
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      process.stderr.write(`steward: ${err.message.replace(/^error: /, '').split('\n')[0]}\n`);
      return 2;
    }
    if (err instanceof CliError) {
      process.stderr.write(`steward: ${err.message.split('\n')[0]}\n`);
      return err.exitCode;
    }
    process.stderr.write(`steward: ${(err as Error).message?.split('\n')[0] ?? String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
