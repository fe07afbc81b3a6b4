import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { AuditKeyring } from '@steward/audit';
import { createLogger } from '@steward/common';
import { inOrg } from '@steward/db';
import { type ScriptedModelServer, startScriptedModelServer, startWorkerRuntime, type WorkerRuntime } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { newApiKey } from './support/fixtures';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * The `steward` CLI (apps/cli), built and run as a binary against a live API and worker
 * (the scripted model server, real PostgreSQL and Redis): login stores the key 0600 (read from
 * standard input or STEWARD_API_KEY; plain http only to a loopback address), `run --follow` shows
 * progress, keeps following while the task waits for an approval, resumes a dropped stream
 * without repeating events and ends with the task's result, bad flags and a missing login
 * give one line and exit code 2, an API that cannot be reached exit code 3; every command the
 * issue lists (approvals/approve/reject, reviews, policy show/diff/simulate, audit
 * search/export/verify, connectors) against the real routes.
 */
const ROOT = resolve(__dirname, '../../..');
const BIN = join(ROOT, 'apps/cli/dist/main.js');

describe('steward CLI against a live API', () => {
  let h: Harness;
  let org: SeededOrg;
  let model: ScriptedModelServer;
  let runtime: WorkerRuntime;
  let base: string;
  let key: string;
  let ws: string;
  const home = mkdtempSync(join(tmpdir(), 'steward-cli-'));
  const config = join(home, 'steward', 'config.json');
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /**
   * Runs the binary; its standard input is `input` (empty unless given), then closed. `printed(re)`
   * waits until what it printed so far matches (for a command still running) and answers the match.
   */
  const cli = (args: string[], env: Record<string, string> = {}, input = '') => {
    let printed = '';
    let exited = false;
    const run = new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      const child = execFile(process.execPath, [BIN, ...args], { env: { ...process.env, STEWARD_CONFIG: config, ...env }, timeout: 45_000 }, (err, stdout, stderr) => {
        exited = true;
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
      child.stdout?.on('data', (d: Buffer | string) => (printed += String(d)));
      child.stdin?.end(input);
    });
    return Object.assign(run, {
      printed: async (re: RegExp): Promise<RegExpExecArray> => {
        for (const until = Date.now() + 20_000; Date.now() < until; await sleep(100)) {
          const m = re.exec(printed);
          if (m) return m;
          if (exited) break;
        }
        throw new Error(`steward ${args.join(' ')} did not print ${re} (it printed: ${printed})`);
      },
    });
  };
  /** Runs the binary in a terminal (a pseudo-terminal from script(1)): stdin and stdout are TTYs; `input` is typed into it. */
  const inTerminal = (args: string[], env: Record<string, string> = {}, input = '') =>
    new Promise<{ code: number; output: string }>((done) => {
      const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
      const child = execFile('script', ['-qefc', [process.execPath, BIN, ...args].map(quote).join(' '), '/dev/null'], { env: { ...process.env, STEWARD_CONFIG: config, ...env }, timeout: 45_000 }, (err, stdout) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout.replace(/\r\n/g, '\n') }),
      );
      child.stdin?.end(input);
    });
  /** The pending approval of a files.delete, once the worker has asked for it (as the approver sees it). */
  const pendingDelete = async (cookie: string): Promise<{ id: string; taskId: string | null }> => {
    for (const until = Date.now() + 20_000; Date.now() < until; await sleep(200)) {
      const r = await h.http.get('/v1/approvals?state=pending').set('Cookie', cookie);
      const item = (r.body as { items?: { id: string; taskId: string | null; tool: string }[] }).items?.find((a) => a.tool === 'files.delete');
      if (item) return item;
    }
    throw new Error('no pending files.delete approval');
  };

  beforeAll(async () => {
    execFileSync('npx', ['tsc', '-b', 'apps/cli'], { cwd: ROOT, stdio: 'pipe' });
    h = await startHarness();
    await new Promise<void>((r) => h.app.getHttpServer().listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(h.app.getHttpServer().address() as AddressInfo).port}`;
    org = await seedOrg(h.ds, 'cli');
    key = (await newApiKey(h, await login(h, org.users.member.email), ['*'])).secret;
    ws = join(h.config.STEWARD_DATA_DIR, 'workspaces', org.id, org.users.member.id, 'numbers');
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, 'last-week.csv'), 'week,revenue\n46,1200000\n');
    model = await startScriptedModelServer();
    const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
    runtime = await startWorkerRuntime({
      redisUrl: h.config.REDIS_URL,
      prefix: h.config.REDIS_PREFIX,
      concurrency: 2,
      log: quiet,
      agentTasks: {
        ds: h.ds,
        redis: h.redis,
        redisPrefix: h.config.REDIS_PREFIX,
        keys,
        keyring: new AuditKeyring(keys),
        dataDir: h.config.STEWARD_DATA_DIR,
        model: { apiKey: 'offline-demo-model-key', baseURL: model.url, defaultModel: 'offline-demo-model', routes: {}, stream: false, maxTokens: 1024, offline: true, retry: { attempts: 2, baseDelayMs: 10 } },
        leaseSeconds: 5,
        relayIntervalMs: 100,
        log: quiet,
      },
    });
  });
  afterAll(async () => {
    await runtime?.close();
    await model?.close();
    await h?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('without a login, and with bad flags: one line on stderr and exit code 2', async () => {
    const none = await cli(['tasks']);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/^steward: not logged in/);
    const bad = await cli(['run', 'hello', '--no-such-flag']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/unknown option '--no-such-flag'/);
    const missing = await cli(['run']);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect((await cli(['login', '--url', 'not a url', '--api-key', key])).code).toBe(2);
    // No command, or a group without its command: a usage error in one line, not silence and 0.
    for (const args of [[], ['policy'], ['audit']]) {
      const none = await cli(args);
      expect({ args, code: none.code, lines: none.stderr.trim().split('\n').length }).toEqual({ args, code: 2, lines: 1 });
      expect(none.stderr).toMatch(/^steward: a command is missing: steward .*--help lists them/);
    }
    // A key with a character no key has is refused before anything is sent, and never echoed.
    const odd = await cli(['login', '--url', base, '--api-key-stdin'], {}, 'stw_abcdefghij\u0000klmnop');
    expect(odd.code).toBe(2);
    expect(odd.stderr).not.toContain('abcdefghij');
  });

  it('the workspace installs the command: node_modules/.bin/steward runs the built CLI', async () => {
    const version = await new Promise<{ code: number; stdout: string }>((done) =>
      execFile(join(ROOT, 'node_modules/.bin/steward'), ['--version'], { env: { ...process.env, STEWARD_CONFIG: config } }, (err, stdout) => done({ code: err ? 1 : 0, stdout })),
    );
    expect(version).toEqual({ code: 0, stdout: '0.1.0\n' });
  });

  it('login checks the key with the API and stores it in a 0600 file; a refused key is a one-line error', async () => {
    const refused = await cli(['login', '--url', base, '--api-key', 'stw_this_key_does_not_exist_0000']);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    const ok = await cli(['login', '--url', base, '--api-key', key]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(org.users.member.email);
    expect(ok.stdout).not.toContain(key);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(config, 'utf8'))).toEqual({ url: base, apiKey: key });
    // A config others may read is not used (as ssh does with a key), and says how to fix it.
    chmodSync(config, 0o644);
    const loose = await cli(['tasks']);
    chmodSync(config, 0o600);
    expect(loose.code).toBe(2);
    expect(loose.stderr.trim().split('\n')).toHaveLength(1);
    expect(loose.stderr).toMatch(/others may read it \(mode 0644\): run "chmod 600/);
    // A symlink at the config's place is replaced by the file, not followed: the key never lands where it points.
    const decoy = join(home, 'decoy.txt');
    writeFileSync(decoy, 'not for keys\n', { mode: 0o644 });
    const linked = join(home, 'linked', 'config.json');
    mkdirSync(dirname(linked), { recursive: true });
    symlinkSync(decoy, linked);
    expect((await cli(['login', '--url', base, '--api-key-stdin'], { STEWARD_CONFIG: linked }, key)).code).toBe(0);
    expect(readFileSync(decoy, 'utf8')).toBe('not for keys\n');
    expect(lstatSync(linked).isSymbolicLink()).toBe(false);
    expect(statSync(linked).mode & 0o777).toBe(0o600);
    expect(readdirSync(dirname(linked))).toEqual(['config.json']); // no temporary file left beside it
  });

  it('login reads the key from standard input or STEWARD_API_KEY, off the command line; plain http to a remote host is refused (exit 2)', async () => {
    const stored = (name: string) => join(home, name, 'config.json');
    const piped = await cli(['login', '--url', base, '--api-key-stdin'], { STEWARD_CONFIG: stored('stdin') }, `${key}\n`);
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);
    expect(piped.stdout).toContain(org.users.member.email);
    expect(statSync(stored('stdin')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(stored('stdin'), 'utf8'))).toEqual({ url: base, apiKey: key });
    // Without a key flag, a standard input that is not a terminal is read too.
    expect((await cli(['login', '--url', base], { STEWARD_CONFIG: stored('implicit') }, key)).code).toBe(0);
    expect(JSON.parse(readFileSync(stored('implicit'), 'utf8'))).toEqual({ url: base, apiKey: key });
    const env = await cli(['login', '--url', base], { STEWARD_CONFIG: stored('env'), STEWARD_API_KEY: key });
    expect(env.stderr).toBe('');
    expect(env.code).toBe(0);
    expect(JSON.parse(readFileSync(stored('env'), 'utf8'))).toEqual({ url: base, apiKey: key });

    for (const bad of [
      await cli(['login', '--url', base], { STEWARD_CONFIG: stored('none') }), // no key anywhere (an empty standard input)
      await cli(['login', '--url', base, '--api-key-stdin', '--api-key', key], { STEWARD_CONFIG: stored('none') }, key),
    ]) {
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    }
    const remote = await cli(['login', '--url', 'http://example.com', '--api-key-stdin'], { STEWARD_CONFIG: stored('remote') }, key);
    expect(remote.code).toBe(2);
    expect(remote.stderr.trim().split('\n')).toHaveLength(1);
    expect(remote.stderr).toMatch(/^steward: .*http:\/\/example\.com.*https/);
    expect(remote.stderr).not.toContain(key);
    expect(existsSync(stored('remote'))).toBe(false);
    expect(existsSync(stored('none'))).toBe(false);
  });

  it('run --follow shows the progress and ends with the task result; tasks --json lists it', async () => {
    const r = await cli(['run', '[script:read-only] Summarise last week', '--follow']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^task [0-9a-f-]{36} started$/);
    expect(r.stdout).toMatch(/action: workspace-files\/files\.read → executed \[autonomous\]/);
    expect(r.stdout).toMatch(/state: completed/);
    expect(lines.at(-2)).toBe('result (completed):');
    expect(lines.at(-1)).toMatch(/^Summary: .*week,revenue.*1200000/);
    const id = /^task (\S+) started/.exec(lines[0]!)![1];

    const list = await cli(['tasks', '--json']);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { items: { id: string; state: string }[] }).items.find((t) => t.id === id)?.state).toBe('completed');

    // The pilot's satisfaction score: `steward rate <task> <1-5>`.
    const rated = await cli(['rate', id, '4', '--comment', 'Saved me an hour']);
    expect(rated.stderr).toBe('');
    expect(rated.stdout.trim()).toBe(`task ${id}: rated 4/5`);
    const badRating = await cli(['rate', id, '6']);
    expect(badRating.code).toBe(2);
    expect(badRating.stderr.trim().split('\n')).toHaveLength(1);
    const [stored] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT rating, comment, client, user_id FROM task_ratings WHERE org_id = $1 AND task_id = $2`, [org.id, id]));
    expect(stored).toEqual({ rating: 4, comment: 'Saved me an hour', client: 'cli', user_id: org.users.member.id });
  });

  it('what a model writes reaches the terminal without its control sequences (no cursor moves, erased lines, clipboard writes or hidden links)', async () => {
    // What a model steered by what it read may write: erase the line above, set the clipboard, a hidden link, clear the screen (C1).
    const hostile = 'done\u001b[1A\u001b[2K\u001b]52;c;aGk=\u0007\u001b]8;;https://evil.example\u0007click\u001b]8;;\u0007\u009b2J';
    const r = await cli(['run', `[script:echo] ${hostile}`, '--follow']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('done\uFFFD[1A\uFFFD[2K\uFFFD]52;c;aGk=\uFFFD\uFFFD]8;;https://evil.example\uFFFDclick\uFFFD]8;;\uFFFD\uFFFD2J');
    // eslint-disable-next-line no-control-regex
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    // As JSON the output is whole, every control character escaped.
    const json = await cli(['run', `[script:echo] ${hostile}`, '--follow', '--json']);
    expect(json.code).toBe(0);
    // eslint-disable-next-line no-control-regex
    expect(json.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect((JSON.parse(json.stdout) as { result: string }).result).toBe(hostile);
  });

  it('policy show and diff, audit search and export (as the owner, with a config of their own)', async () => {
    const ownerKey = (await newApiKey(h, await login(h, org.users.owner.email), ['*'])).secret;
    const env = { STEWARD_CONFIG: join(home, 'owner', 'config.json') };
    expect((await cli(['login', '--url', base, '--api-key', ownerKey], env)).code).toBe(0);
    const show = await cli(['policy', 'show', '--json'], env);
    expect(show.code).toBe(0);
    const active = JSON.parse(show.stdout) as { version: number; document: { baseline: Record<string, string> } };
    expect(active.version).toBe(1);
    const file = join(home, 'policy.json');
    writeFileSync(file, JSON.stringify({ ...active.document, baseline: { ...active.document.baseline, 'file.read': 'batched' } }));
    const d = await cli(['policy', 'diff', file], env);
    expect(d.code).toBe(0);
    expect(d.stdout.trim()).toBe('changed\t/baseline/file.read');
    const bad = await cli(['policy', 'diff', join(home, 'missing.json')], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const search = await cli(['audit', 'search', '--json', '--limit', '10'], env);
    expect(search.code).toBe(0);
    expect((JSON.parse(search.stdout) as { items: unknown[] }).items.length).toBeGreaterThan(0);
    const badFormat = await cli(['audit', 'export', '--format', 'xml'], env);
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('approvals and connectors answer as JSON; an unknown approval is a one-line error with exit code 1', async () => {
    const a = await cli(['approvals', '--json']);
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout).items).toEqual([]);
    const c = await cli(['--json', 'connectors']);
    expect(c.code).toBe(0);
    expect(Array.isArray(JSON.parse(c.stdout).items)).toBe(true);
    const nope = await cli(['approve', '01a20000-0000-7000-8000-000000000000']);
    expect(nope.code).toBe(1);
    expect(nope.stderr.trim().split('\n')).toHaveLength(1);
    expect(nope.stderr).toMatch(/^steward: .*HTTP 404/);
  });

  it('a Watched delete waits: run --follow names the approval and keeps following; the approver rejects it (nothing deleted); a Batched write waits in reviews', async () => {
    const approverKey = (await newApiKey(h, await login(h, org.users.approver.email), ['*'])).secret;
    const approver = { STEWARD_CONFIG: join(home, 'approver', 'config.json') };
    expect((await cli(['login', '--url', base, '--api-key', approverKey], approver)).code).toBe(0);

    const following = cli(['run', '[script:cleanup] remove the old numbers', '--follow']);
    const pending = await pendingDelete(await login(h, org.users.approver.email));
    // It says so, and names the approval, while it waits (before anyone decides).
    expect((await following.printed(/^waiting for approval .*$/m))[0]).toContain(`steward approve ${pending.id}`);
    const listed = await cli(['approvals', '--json'], approver);
    expect(listed.code).toBe(0);
    const item = (JSON.parse(listed.stdout) as { items: { id: string; taskId: string | null; tool: string; actionType: string }[] }).items.find((a) => a.id === pending.id);
    expect(item).toMatchObject({ tool: 'files.delete', actionType: 'file.delete' });
    expect((await cli(['approvals'], approver)).stdout).toContain(`${item!.id}\tworkspace-files\tfiles.delete\tfile.delete\t`);
    // An approver is shown what the action would do (to stderr), and approves only with --yes where no terminal can ask.
    const unasked = await cli(['approve', item!.id], approver);
    expect(unasked.code).toBe(2);
    expect(unasked.stderr).toContain('workspace-files/files.delete (file.delete)');
    expect(unasked.stderr).toMatch(/arguments: \{\s+"path": "numbers\/last-week\.csv"/);
    expect(unasked.stderr.trim().split('\n').at(-1)).toBe('steward: approve what is shown with --yes (no terminal to ask)');
    // The requester may not decide their own request.
    const own = await cli(['approve', item!.id, '--yes']);
    expect(own.code).toBe(1);
    expect(own.stderr.trim().split('\n').at(-1)).toMatch(/^steward: .*HTTP 403/);
    const noReason = await cli(['reject', item!.id], approver);
    expect(noReason.code).toBe(2);
    const rejected = await cli(['reject', item!.id, '--reason', 'Keep the numbers'], approver);
    expect(rejected.stderr).toBe('');
    expect(rejected.stdout.trim()).toBe(`approval ${item!.id}: rejected`);
    expect(existsSync(join(ws, 'last-week.csv'))).toBe(true);
    const again = await cli(['reject', item!.id, '--reason', 'Twice'], approver);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^steward: .*HTTP 409/);

    // The follower saw the wait, then the task go on (the model is told a person said no) to its end.
    const watched = await following;
    expect(watched.stderr).toBe('');
    expect(watched.code).toBe(0);
    expect(/^task (\S+) started/.exec(watched.stdout)![1]).toBe(item!.taskId);
    expect(watched.stdout).toMatch(/action: workspace-files\/files\.delete → \S+ \[watched\]/);
    expect(watched.stdout.split('\n').filter((l) => l.startsWith('waiting for approval'))).toEqual([expect.stringContaining(`steward approve ${item!.id}`)]);
    expect(watched.stdout.trim().split('\n').at(-2)).toBe('result (completed):');
    expect(watched.stdout.trim().split('\n').at(-1)).toMatch(/^Cleanup not done: /);

    const batched = await cli(['run', 'Weekly exec brief', '--follow']);
    expect(batched.code).toBe(0);
    expect(batched.stdout).toMatch(/action: workspace-files\/files\.write → \S+ \[batched\]/);
    const reviewId = /^task (\S+) started/.exec(batched.stdout)![1];
    const reviews = await cli(['reviews'], approver);
    expect(reviews.code).toBe(0);
    expect(reviews.stdout.split('\n')).toContain(`${reviewId}\tin_review\t1\t0\t0\t0`);
    expect((JSON.parse((await cli(['reviews', '--json'], approver)).stdout) as { items: { taskId: string; pending: number }[] }).items).toContainEqual(expect.objectContaining({ taskId: reviewId, pending: 1 }));
  });

  it('reviews --gateway lists the Batched writes an MCP client made through the gateway, one line each (and as JSON)', async () => {
    const approverKey = (await newApiKey(h, await login(h, org.users.approver.email), ['*'])).secret;
    const approver = { STEWARD_CONFIG: join(home, 'gateway-approver', 'config.json') };
    expect((await cli(['login', '--url', base, '--api-key', approverKey], approver)).code).toBe(0);
    // A client names itself: with a tab, a line break and a right-to-left override, it must still be one cell of one line.
    const client = new McpClient({ name: 'cli-test-client\tfake\nrow\u202e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
    try {
      const r = await client.callTool({ name: 'workspace-files__files_write', arguments: { path: 'numbers/gateway-note.md', content: 'From the IDE' } });
      expect(r.isError).toBeFalsy();
      const actionId = (r._meta as Record<string, string>)['steward/action-id'];
      const listed = await cli(['reviews', '--gateway'], approver);
      expect(listed.code).toBe(0);
      expect(listed.stdout.split('\n').find((l) => l.startsWith(actionId))).toMatch(new RegExp(`^${actionId}\\t${org.users.member.id}\\tworkspace-files\\tfiles\\.write\\tcli-test-client\\\\tfake\\\\nrow\uFFFD\\tfiles\\.delete\\t\\d{4}-\\S+\\tpending$`));
      const json = JSON.parse((await cli(['reviews', '--gateway', '--json'], approver)).stdout) as { items: { actionId: string; reviewState: string }[] };
      expect(json.items).toContainEqual(expect.objectContaining({ actionId, reviewState: 'pending' }));
    } finally {
      await (client.transport as StreamableHTTPClientTransport).terminateSession().catch(() => undefined);
      await client.close();
    }
  });

  it('approve shows the arguments with bidirectional controls neutralised, asks in a terminal (no: nothing approved; yes: approved, it runs once)', async () => {
    const approverKey = (await newApiKey(h, await login(h, org.users.approver.email), ['*'])).secret;
    const approver = { STEWARD_CONFIG: join(home, 'terminal-approver', 'config.json') };
    expect((await cli(['login', '--url', base, '--api-key', approverKey], approver)).code).toBe(0);
    // A Watched delete through the gateway, of a file whose name carries a right-to-left override (it would show "...vsc.txt" reversed).
    const name = 'numbers/old-\u202etxt.csv';
    writeFileSync(join(ws, 'old-\u202etxt.csv'), 'week,revenue\n');
    const client = new McpClient({ name: 'terminal-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
    try {
      const call = client.callTool({ name: 'workspace-files__files_delete', arguments: { path: name } });
      let pending: { id: string } | undefined;
      for (const until = Date.now() + 20_000; !pending && Date.now() < until; await sleep(100)) {
        const r = await h.http.get('/v1/approvals?state=pending').set('Cookie', await login(h, org.users.approver.email));
        pending = (r.body as { items: { id: string; taskId: string | null; tool: string }[] }).items.find((a) => a.tool === 'files.delete' && a.taskId === null);
      }
      expect(pending).toBeDefined();
      const shown = await cli(['approve', pending!.id], approver);
      expect(shown.code).toBe(2);
      expect(shown.stderr).toContain('"path": "numbers/old-\uFFFDtxt.csv"');
      expect(shown.stderr).not.toMatch(/[\u202a-\u202e\u2066-\u2069]/);
      // In a terminal it asks; anything but yes approves nothing — end of input (Ctrl-D) included, which is no success either.
      const eof = await inTerminal(['approve', pending!.id], approver, '\x04');
      expect({ code: eof.code, end: /[^\n]*$/.exec(eof.output.trim())![0] }).toEqual({ code: 1, end: expect.stringMatching(/steward: not approved$/) });
      const no = await inTerminal(['approve', pending!.id], approver, 'n\n');
      expect(no.output).toContain('Approve this action? [y/N]');
      // (What is typed ahead is echoed before the question: the answer's line is the question's.)
      expect({ code: no.code, end: /[^\n]*$/.exec(no.output.trim())![0] }).toEqual({ code: 1, end: 'Approve this action? [y/N] steward: not approved' });
      expect((await h.http.get(`/v1/approvals/${pending!.id}`).set('Cookie', await login(h, org.users.approver.email))).body.state).toBe('pending');
      const yes = await inTerminal(['approve', pending!.id], approver, 'y\n');
      expect({ code: yes.code, end: /[^\n]*$/.exec(yes.output.trim())![0] }).toEqual({ code: 0, end: `Approve this action? [y/N] approval ${pending!.id}: approved` });
      // Approved, it runs (once): the workspace connector itself refuses such a path (nothing deleted).
      const ran = await call;
      expect({ isError: ran.isError, text: (ran.content as { text: string }[])[0]?.text }).toEqual({ isError: true, text: expect.stringMatching(/^The tool failed \(bad_arguments\): path refused \(invisible or bidirectional control character\)/) });
      expect(existsSync(join(ws, 'old-\u202etxt.csv'))).toBe(true);
      expect((await h.http.get(`/v1/approvals/${pending!.id}`).set('Cookie', await login(h, org.users.approver.email))).body.state).toBe('used');
      // Once: one call reached the connector (one outcome on record for the action).
      const actionId = (ran._meta as Record<string, string>)['steward/action-id'];
      const outcomes = async () =>
        (await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND decision = 'executed' AND canonical::jsonb->'payload'->>'actionId' = $2`, [org.id, actionId])))[0].n as number;
      for (const until = Date.now() + 5_000; (await outcomes()) === 0 && Date.now() < until; ) await sleep(100);
      await sleep(300);
      expect(await outcomes()).toBe(1);
    } finally {
      await (client.transport as StreamableHTTPClientTransport).terminateSession().catch(() => undefined);
      await client.close();
    }
  });

  it('run --follow waits through an approval given while it follows, then ends with the result and exit code 0', async () => {
    const following = cli(['run', '[script:cleanup] tidy the numbers folder', '--follow']);
    const approval = await pendingDelete(await login(h, org.users.approver.email));
    await following.printed(/^waiting for approval /m);
    const approved = await h.http.post(`/v1/approvals/${approval.id}/approve`).set('Cookie', await login(h, org.users.approver.email)).send({});
    expect(approved.status).toBe(200);
    const r = await following;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(/^task (\S+) started/.exec(lines[0]!)![1]).toBe(approval.taskId);
    // One line names the approval and where to decide it; the stream goes on after it.
    const waiting = lines.findIndex((l) => l.startsWith('waiting for approval'));
    expect(lines.filter((l) => l.startsWith('waiting for approval'))).toHaveLength(1);
    expect(lines[waiting]).toContain(approval.id);
    expect(lines[waiting]).toContain(`steward approve ${approval.id}`);
    expect(lines[waiting]).toMatch(/console/);
    expect(lines.slice(waiting)).toContain('state: completed');
    expect(lines.at(-2)).toBe('result (completed):');
    expect(lines.at(-1)).toBe('Cleanup done.');
    expect(existsSync(join(ws, 'last-week.csv'))).toBe(false);
    writeFileSync(join(ws, 'last-week.csv'), 'week,revenue\n46,1200000\n');
  });

  it('run --follow of a task that fails ends with its result, one line on stderr and exit code 4', async () => {
    // (A model answer cut inside a tool call: the task fails at once, as max_tokens.)
    const r = await cli(['run', '[script:read-only] [max-tokens-tool-always] Summarise last week', '--follow']);
    expect(r.code).toBe(4);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^steward: task [0-9a-f-]{36} failed/);
    expect(r.stdout.trim().split('\n').at(-2)).toBe('result (failed):');
  });

  it('run --follow resumes a dropped event stream after the last event it printed: each event once', async () => {
    // A proxy in front of the API that cuts the first event stream after its first events.
    const eventRequests: string[] = [];
    let cutAfter: number | null = null;
    const upstream = new URL(base);
    const proxy = createHttpServer((req, res) => {
      const cut = /\/events/.test(req.url ?? '') && eventRequests.push(req.url ?? '') === 1;
      let gone = false;
      const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.on('data', (chunk: Buffer) => {
          if (gone) return;
          const text = chunk.toString('utf8');
          if (cut && /^id: \d+$/m.test(text)) {
            gone = true;
            // The last event the client has whole: everything before the chunk's last blank line.
            const whole = text.slice(0, text.lastIndexOf('\n\n') + 2);
            cutAfter = Number([...whole.matchAll(/^id: (\d+)$/gm)].at(-1)?.[1] ?? 0);
            res.write(chunk, () => {
              res.socket?.destroy();
              up.destroy();
            });
            return;
          }
          res.write(chunk);
        });
        upRes.on('end', () => gone || res.end());
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const viaProxy = join(home, 'proxy', 'config.json');
      mkdirSync(join(home, 'proxy'));
      writeFileSync(viaProxy, JSON.stringify({ url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, apiKey: key }), { mode: 0o600 });
      const r = await cli(['run', '[script:read-only] [slow:500] Summarise last week again', '--follow'], { STEWARD_CONFIG: viaProxy });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(cutAfter).toBeGreaterThan(0);
      expect(eventRequests.length).toBeGreaterThanOrEqual(2);
      expect(new URL(eventRequests[1]!, 'http://x').searchParams.get('after')).toBe(String(cutAfter));
      const lines = r.stdout.trim().split('\n');
      // Each event of the task's log printed once: as many lines of each kind as it has events.
      const log = await (await fetch(`${base}/v1/tasks/${/^task (\S+) started/.exec(lines[0]!)![1]}/events?follow=false`, { headers: { authorization: `Bearer ${key}` } })).text();
      const kinds = [...log.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
      const count = (kind: string) => kinds.filter((k) => k === kind).length;
      expect(count('action')).toBe(1);
      expect(lines.filter((l) => l.startsWith('state: '))).toHaveLength(count('state'));
      expect(lines.filter((l) => l === 'model turn')).toHaveLength(count('model'));
      expect(lines.filter((l) => /^action: workspace-files\/files\.read → executed \[autonomous\]/.test(l))).toHaveLength(1);
      expect(lines.filter((l) => l === 'state: completed')).toHaveLength(1);
      expect(lines.at(-2)).toBe('result (completed):');
      expect(lines.at(-1)).toMatch(/^Summary: .*week,revenue.*1200000/);
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('policy simulate decides sample actions under a file and leaves no draft behind', async () => {
    const owner = { STEWARD_CONFIG: join(home, 'owner', 'config.json') };
    const active = JSON.parse((await cli(['policy', 'show', '--json'], owner)).stdout) as { document: { baseline: Record<string, string> } };
    const file = join(home, 'stricter.json');
    writeFileSync(file, JSON.stringify({ ...active.document, baseline: { ...active.document.baseline, 'file.read': 'watched' } }));
    const actions = join(home, 'actions.json');
    writeFileSync(actions, JSON.stringify([{ action: 'file.read', context: {} }, { action: 'email.send', context: {} }]));
    const sim = await cli(['policy', 'simulate', file, '--actions', actions], owner);
    expect(sim.stderr).toBe('');
    expect(sim.code).toBe(0);
    expect(sim.stdout.trim().split('\n')).toEqual(['2 action(s), 1 changed (1 stricter, 0 looser)', '0\tfile.read\tautonomous → watched\tchanged', '1\temail.send\twatched → watched']);
    const asJson = JSON.parse((await cli(['policy', 'simulate', file, '--actions', actions, '--json'], owner)).stdout) as { summary: { total: number } };
    expect(asJson.summary.total).toBe(2);
    // A document the API refuses: one line, exit code 1, and still no draft.
    writeFileSync(file, JSON.stringify({ baseline: { 'file.read': 'sometimes' } }));
    const refused = await cli(['policy', 'simulate', file, '--actions', actions], owner);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    // Actions that cannot be simulated (none, or not actions): refused before any draft is made (none created, none audited).
    const created = async () => (await h.http.get('/v1/audit-events?action=policy.create&limit=200').set('Cookie', await login(h, org.users.owner.email))).body.items.length;
    const before = await created();
    for (const bad of ['[]', '{}', '[1]', '[{"context":{}}]']) {
      writeFileSync(actions, bad);
      const r = await cli(['policy', 'simulate', file, '--actions', actions], owner);
      expect({ bad, code: r.code, lines: r.stderr.trim().split('\n').length }).toEqual({ bad, code: 2, lines: 1 });
    }
    expect(await created()).toBe(before);
    const drafts = await h.http.get('/v1/policies?status=draft').set('Cookie', await login(h, org.users.owner.email));
    expect(drafts.status).toBe(200);
    expect(drafts.body.items).toEqual([]);
  });

  it('policy simulate whose temporary draft cannot be deleted still prints its result, names the draft on stderr and exits 1; audit export to a terminal is refused (exit 2, nothing exported)', async () => {
    const ownerCookie = await login(h, org.users.owner.email);
    // A proxy in front of the API that refuses every DELETE of a policy (as an API in trouble would).
    const upstream = new URL(base);
    const proxy = createHttpServer((req, res) => {
      if (req.method === 'DELETE' && req.url?.startsWith('/v1/policies/')) {
        res.writeHead(503, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503 }));
        return;
      }
      const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const owner = { STEWARD_CONFIG: join(home, 'owner-proxied', 'config.json') };
    try {
      const ownerKey = (await newApiKey(h, ownerCookie, ['*'])).secret;
      expect((await cli(['login', '--url', `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, '--api-key', ownerKey], owner)).code).toBe(0);
      const active = JSON.parse((await cli(['policy', 'show', '--json'], owner)).stdout) as { document: Record<string, unknown> };
      const file = join(home, 'same.json');
      writeFileSync(file, JSON.stringify(active.document));
      const actions = join(home, 'one-action.json');
      writeFileSync(actions, JSON.stringify([{ action: 'file.read', context: {} }]));
      const sim = await cli(['policy', 'simulate', file, '--actions', actions], owner);
      expect(sim.stdout.trim().split('\n')[0]).toBe('1 action(s), 0 changed (0 stricter, 0 looser)');
      expect(sim.code).toBe(1);
      expect(sim.stderr.trim().split('\n')).toHaveLength(1);
      const left = /^steward: the temporary draft (\S+) was not deleted \(.*\): delete it in the console or with DELETE \/v1\/policies\/(\S+)$/.exec(sim.stderr.trim());
      expect(left?.[1]).toBe(left?.[2]);
      const drafts = (await h.http.get('/v1/policies?status=draft').set('Cookie', ownerCookie)).body.items as { id: string }[];
      expect(drafts.map((d) => d.id)).toEqual([left![1]]);
      expect((await h.http.delete(`/v1/policies/${left![1]}`).set('Cookie', ownerCookie)).status).toBe(204);

      // The export is data: not written to a terminal (what agents and upstreams wrote could drive it).
      const exports = async () => (await h.http.get('/v1/audit-events?action=audit.export&limit=200').set('Cookie', ownerCookie)).body.items.length;
      const before = await exports();
      const tty = await inTerminal(['audit', 'export'], owner);
      expect({ code: tty.code, output: tty.output.trim() }).toEqual({ code: 2, output: 'steward: the export is data, not for a terminal: write it with --output <file>, or pipe it' });
      // A target that cannot be written (a directory, a directory that does not exist) is a usage error, found before anything is exported.
      for (const [target, says] of [[home, 'it is a directory'], [join(home, 'no-such-dir', 'trail.ndjson'), 'no directory']]) {
        const r = await cli(['audit', 'export', '--output', target], owner);
        expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 2, stderr: `steward: cannot write ${target}: ${says}${says === 'no directory' ? ` ${join(home, 'no-such-dir')}` : ' (give a file name)'}` });
      }
      expect(await exports()).toBe(before);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });

  it('audit export --manifest, public-key and verify check the chain offline; other formats export; a changed byte fails', async () => {
    const owner = { STEWARD_CONFIG: join(home, 'owner', 'config.json') };
    const cp = await h.http.post('/v1/audit/checkpoints').set('Cookie', await login(h, org.users.owner.email));
    expect(cp.status).toBe(200);
    const manifest = join(home, 'manifest.json');
    const exported = await cli(['audit', 'export', '--manifest', manifest], owner);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { count: number; checkpoints: unknown[] };
    expect(m.checkpoints.length).toBeGreaterThan(0);
    expect(exported.stdout.trim().split('\n')).toHaveLength(m.count);
    const trail = join(home, 'trail.ndjson');
    writeFileSync(trail, exported.stdout);
    const pem = await cli(['audit', 'public-key'], owner);
    expect(pem.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    const key = join(home, 'audit-key.pem');
    writeFileSync(key, pem.stdout);

    const ok = await cli(['audit', 'verify', trail, '--manifest', manifest, '--public-key', key]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, checked: m.count });

    // The checkpoints the auditor holds (JSON lines, as pushed off the box) instead of the manifest's list.
    const held = join(home, 'checkpoints.jsonl');
    writeFileSync(held, `${m.checkpoints.map((c) => JSON.stringify(c)).join('\n')}\n`);
    const withHeld = await cli(['audit', 'verify', trail, '--manifest', manifest, '--public-key', key, '--checkpoints', held]);
    expect({ code: withHeld.code, stderr: withHeld.stderr }).toEqual({ code: 0, stderr: '' });
    // What was verified is named: the org and the range the manifest gives, checked against the held checkpoints.
    expect(JSON.parse(withHeld.stdout)).toMatchObject({ ok: true, org: org.id, fromSeq: 1, toSeq: m.count, checkpoints: 'held' });
    // Held checkpoints that cannot check this export (another org's) fail it: the manifest alone would be the server's word.
    const others = join(home, 'others.jsonl');
    writeFileSync(others, `${m.checkpoints.map((c) => JSON.stringify({ ...(c as object), org: '01a20000-0000-7000-8000-0000000000aa' })).join('\n')}\n`);
    const notOurs = await cli(['audit', 'verify', trail, '--manifest', manifest, '--public-key', key, '--checkpoints', others]);
    expect(notOurs.code).toBe(1);
    expect(JSON.parse(notOurs.stdout)).toMatchObject({ ok: false, reason: expect.stringContaining('is of org') });
    // A log that is not one: a one-line error naming the file and the line, exit 2.
    const broken = join(home, 'broken.jsonl');
    writeFileSync(broken, `${JSON.stringify(m.checkpoints[0])}\n{"org": "x", "seq": "one"}\n`);
    const notLog = await cli(['audit', 'verify', trail, '--manifest', manifest, '--public-key', key, '--checkpoints', broken]);
    expect(notLog.code).toBe(2);
    expect(notLog.stderr.trim()).toBe(`steward: ${broken}: line 2 of the checkpoint log is not a checkpoint`);
    writeFileSync(broken, 'not json\n');
    const notJson = await cli(['audit', 'verify', trail, '--manifest', manifest, '--public-key', key, '--checkpoints', broken]);
    expect({ code: notJson.code, stderr: notJson.stderr.trim() }).toEqual({ code: 2, stderr: `steward: ${broken}: line 1 of the checkpoint log is not JSON` });

    const lines = exported.stdout.trim().split('\n');
    const second = JSON.parse(lines[1]!) as { canonical: string };
    lines[1] = JSON.stringify({ ...second, canonical: second.canonical.replace(/"action":"/, '"action":"x') });
    const tampered = join(home, 'tampered.ndjson');
    writeFileSync(tampered, `${lines.join('\n')}\n`);
    const bad = await cli(['audit', 'verify', tampered, '--manifest', manifest, '--public-key', key]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe('steward: the export does not verify');
    expect((await cli(['audit', 'verify', join(home, 'none.ndjson'), '--manifest', manifest, '--public-key', key])).code).toBe(2);

    // --output writes the export whole (beside it, then renamed) and the manifest once it is complete.
    const out = join(home, 'out', 'trail.ndjson');
    mkdirSync(dirname(out), { recursive: true });
    const manifest2 = join(home, 'out', 'manifest.json');
    const toFile = await cli(['audit', 'export', '--output', out, '--manifest', manifest2], owner);
    expect({ code: toFile.code, stderr: toFile.stderr, stdout: toFile.stdout }).toEqual({ code: 0, stderr: '', stdout: '' });
    expect(readdirSync(dirname(out)).sort()).toEqual(['manifest.json', 'trail.ndjson']);
    expect((await cli(['audit', 'verify', out, '--manifest', manifest2, '--public-key', key])).code).toBe(0);
    // A file that cannot be written: exit 2, and no manifest describing an export that was not made.
    const nowhere = await cli(['audit', 'export', '--output', join(home, 'no-such-dir', 'trail.ndjson'), '--manifest', join(home, 'orphan.json')], owner);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(home, 'orphan.json'))).toBe(false);

    const ocsf = await cli(['audit', 'export', '--format', 'ocsf'], owner);
    expect(ocsf.code).toBe(0);
    expect(ocsf.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(m.count);
    expect(JSON.parse(ocsf.stdout.trim().split('\n')[0]!)).toHaveProperty('class_uid');
    const csv = await cli(['audit', 'export', '--format', 'csv'], owner);
    expect(csv.code).toBe(0);
    expect(csv.stdout.split('\n')[0]).toMatch(/seq/);

    // A reader that is gone before the output comes (`steward audit export | head -0`): the command ends quietly, no stack trace.
    const early = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(process.execPath, [BIN, 'audit', 'export'], { env: { ...process.env, ...owner }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
      child.on('close', (code) => done({ code, stderr }));
    });
    expect(early).toEqual({ code: 0, stderr: '' });
  });

  it('an API that cannot be reached: one line and exit code 3', async () => {
    const port = await new Promise<number>((done) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => done(p));
      });
    });
    const gone = `http://127.0.0.1:${port}`;
    const r = await cli(['login', '--url', gone, '--api-key', key], { STEWARD_CONFIG: join(home, 'gone', 'config.json') });
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^steward: cannot reach the Steward API at http:\/\/127\.0\.0\.1:\d+/);
    expect(existsSync(join(home, 'gone', 'config.json'))).toBe(false);
    const stale = join(home, 'stale', 'config.json');
    mkdirSync(join(home, 'stale'));
    writeFileSync(stale, JSON.stringify({ url: gone, apiKey: key }), { mode: 0o600 });
    const t = await cli(['tasks'], { STEWARD_CONFIG: stale });
    expect(t.code).toBe(3);
    expect(t.stderr).not.toContain(key);
  });
});
