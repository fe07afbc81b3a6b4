import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { redisUrl } from '../../../test/support/db-urls';

/**
 * The README's first command, as a new user meets it: the API's own entry point with no
 * DATABASE_URL serves the embedded PostgreSQL (PGlite, one shared session) and runs the worker in
 * process. It must come up, take the first-run setup, sign in and run an offline demo task to the
 * end — everything on the single connection the embedded database allows.
 */
const ROOT = join(__dirname, '..', '..', '..');

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe('development mode (embedded PostgreSQL, worker in process)', () => {
  let child: ChildProcess | undefined;
  let dataDir: string;
  let output = '';
  const prefix = `steward-embedded-${randomBytes(4).toString('hex')}`;

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    child?.stdout?.destroy();
    child?.stderr?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    // The run's own Redis keys (its queues) go with it.
    const redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
    try {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
  });

  it('refuses to start in production without DATABASE_URL (the embedded database is for development): one line says what to set', async () => {
    const res = spawnSync(process.execPath, ['-r', join(ROOT, 'test/support/ts-child.cjs'), join(ROOT, 'apps/api/src/main.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'production',
        DATABASE_URL: '',
        REDIS_URL: redisUrl(),
        STEWARD_TOKEN_PEPPER: randomBytes(32).toString('base64url'),
        STEWARD_MASTER_KEY: `v1:${randomBytes(32).toString('base64')}`,
        STEWARD_AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
      },
    });
    expect(res.status).toBe(1);
    expect(res.stderr.trim()).toMatch(/DATABASE_URL is not set: the embedded PostgreSQL is for development only/);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('comes up, takes the first-run setup, signs in and runs a demo task to the end', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'steward-embedded-'));
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      // As `npm run dev` starts it.
      NODE_ENV: 'development',
      PORT: String(port),
      EMBEDDED_DB_PORT: String(await freePort()),
      STEWARD_DATA_DIR: dataDir,
      REDIS_URL: redisUrl(),
      REDIS_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      STEWARD_TOKEN_PEPPER: randomBytes(32).toString('base64url'),
      STEWARD_MASTER_KEY: `v1:${randomBytes(32).toString('base64')}`,
      STEWARD_AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
    };
    child = spawn(process.execPath, ['-r', join(ROOT, 'test/support/ts-child.cjs'), join(ROOT, 'apps/api/src/main.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const base = `http://127.0.0.1:${port}`;
    let token: string | undefined;
    for (let i = 0; i < 240 && !token; i++) {
      if (child.exitCode !== null) throw new Error(`the API exited (${child.exitCode}): ${output.slice(-2000)}`);
      token = /setup_[A-Za-z0-9_-]+/.exec(output)?.[0];
      if (!token) await new Promise((r) => setTimeout(r, 250));
    }
    expect(token).toBeDefined();
    expect((await (await fetch(`${base}/healthz`)).json()).status).toBeDefined();

    const json = { 'content-type': 'application/json' };
    const setup = await fetch(`${base}/v1/setup`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ setupToken: token, org: { name: 'Acme', slug: 'acme' }, owner: { email: 'you@acme.example', name: 'You', password: 'a long passphrase here' } }),
    });
    expect(setup.status).toBe(201);
    const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: json, body: JSON.stringify({ email: 'you@acme.example', password: 'a long passphrase here' }) });
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const created = await fetch(`${base}/v1/tasks`, { method: 'POST', headers: { ...json, cookie }, body: JSON.stringify({ prompt: '[script:read-only] summarise last week' }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    let task: { state: string; model: string | null; offlineModel: boolean } | undefined;
    // Up to 90 s: on a loaded machine (the browser tests beside it) the in-process worker is slow to start.
    for (let i = 0; i < 360; i++) {
      task = (await (await fetch(`${base}/v1/tasks/${id}`, { headers: { cookie } })).json()) as typeof task;
      if (task && ['completed', 'failed', 'in_review'].includes(task.state)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(task).toMatchObject({ state: 'completed', offlineModel: true });
    expect(output).not.toMatch(/timeout exceeded when trying to connect/);
  }, 180_000);
});
