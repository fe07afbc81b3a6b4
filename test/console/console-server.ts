import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const CONSOLE_DIR = join(__dirname, '..', '..', 'apps', 'admin-console');
const NEXT_BIN = join(__dirname, '..', '..', 'node_modules', 'next', 'dist', 'bin', 'next');
const SOURCES = ['app', 'components', 'lib', 'proxy.ts', 'server.mjs', 'next.config.ts', 'package.json', 'tsconfig.json'];

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** `next build` when there is no build or a source file is newer than it (CI always builds once). */
export function ensureConsoleBuild(): void {
  const buildId = join(CONSOLE_DIR, '.next', 'BUILD_ID');
  if (existsSync(buildId)) {
    const built = statSync(buildId).mtimeMs;
    if (SOURCES.every((s) => !existsSync(join(CONSOLE_DIR, s)) || newestMtime(join(CONSOLE_DIR, s)) <= built)) return;
  }
  const res = spawnSync(process.execPath, [NEXT_BIN, 'build'], {
    cwd: CONSOLE_DIR,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 540_000,
  });
  if (res.status !== 0) throw new Error(`next build failed (${res.status ?? res.signal}):\n${(res.stdout + res.stderr).slice(-6000)}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface ConsoleServer {
  url: string;
  output(): string;
  close(): Promise<void>;
}

/** The console's server (server.mjs, production mode) on a free loopback port, talking to the API at `apiUrl`. */
export async function startConsole(apiUrl: string, opts: { allInterfaces?: boolean; env?: Record<string, string> } = {}): Promise<ConsoleServer> {
  const port = await freePort();
  let out = '';
  const child: ChildProcess = spawn(process.execPath, opts.allInterfaces ? ['server.mjs'] : ['server.mjs', '-H', '127.0.0.1'], {
    cwd: CONSOLE_DIR,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production', STEWARD_API_URL: apiUrl, PORT: String(port), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the console exited (${child.exitCode}):\n${out}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (i > 300) throw new Error(`the console did not answer within 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    output: () => out,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
