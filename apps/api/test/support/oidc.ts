import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The real OpenID provider (oidc-provider) in a child process on loopback; see oidc-provider.mjs. */
export interface TestIdp {
  issuer: string;
  /** Who signs in at the next authorization request. */
  setAccount(sub: string, claims: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

export async function startIdp(clientId: string, clientSecret: string, redirectUri: string): Promise<TestIdp> {
  const child: ChildProcess = spawn(process.execPath, [join(__dirname, 'oidc-provider.mjs'), clientId, clientSecret, redirectUri], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d.toString()));
  const issuer = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve((JSON.parse(line) as { issuer: string }).issuer));
    child.once('exit', (code) => reject(new Error(`oidc-provider exited ${code}: ${stderr}`)));
  });
  return {
    issuer,
    async setAccount(sub, claims) {
      const res = await fetch(`${issuer}/_test/account`, { method: 'POST', body: JSON.stringify({ sub, claims }) });
      if (res.status !== 204) throw new Error(`setAccount: ${res.status}`);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * A browser at the provider: follows redirects with the provider's cookies until the provider
 * sends it to `stopAt` (Steward's callback), and returns that URL.
 */
export async function browseUntil(start: string, stopAt: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = start;
  for (let hop = 0; hop < 20; hop++) {
    if (url.startsWith(stopAt)) return new URL(url);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`the provider stopped at ${url}: ${res.status} ${(await res.text()).slice(0, 300)}`);
    url = new URL(location, url).href;
  }
  throw new Error('too many redirects');
}
