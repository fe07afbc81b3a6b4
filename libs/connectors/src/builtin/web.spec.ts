import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConnectorError } from '../errors';
import { ConnectorHub } from '../hub';
import { extractContext, parseManifest, resolveTool } from '../manifest';
import { fakeApi } from '../test-support/fake-api';
import { createWebServer, htmlToText, webManifest } from './web';
import { scanText } from '../pinning';

describe('web connector against a loopback site and search API', () => {
  const hub = new ConnectorHub({ timeoutMs: 5000 });
  let site: Awaited<ReturnType<typeof fakeApi>>;

  beforeAll(async () => {
    site = await fakeApi((c) => {
      if (c.path === '/page') return { text: '<html><head><title>Docs</title><script>evil()</script></head><body><h1>Hello</h1> world</body></html>', headers: { 'content-type': 'text/html' } };
      if (c.path === '/big') return { text: 'x'.repeat(5000), headers: { 'content-type': 'text/plain' } };
      if (c.path === '/slow') return { text: 'late', delayMs: 1500 };
      if (c.path === '/binary') return { text: 'MZ', headers: { 'content-type': 'application/octet-stream' } };
      if (c.path === '/away') return { status: 302, text: '', headers: { location: 'http://localhost:1/elsewhere' } };
      if (c.path === '/moved') return { status: 301, text: '', headers: { location: '/page' } };
      if (c.path === '/docs') return { status: 301, text: '', headers: { location: '/docs/?from=short' } };
      if (c.path === '/docs/') return { text: '<title>Docs index</title>Index', headers: { 'content-type': 'text/html' } };
      if (c.path === '/port') return { status: 302, text: '', headers: { location: 'http://127.0.0.1:1/port' } };
      if (c.path === '/round') return { status: 302, text: '', headers: { location: '/round' } };
      if (c.path === '/search') {
        if (c.query.get('q') !== 'steward') return { json: { web: { results: [] } } };
        return { json: { web: { results: [{ title: 'Steward', url: 'https://steward.example', description: 'governance' }] } } };
      }
      return undefined;
    });
    await hub.addBuiltin(
      'web',
      createWebServer({ allowHosts: ['127.0.0.1'], egress: { allowHosts: ['127.0.0.1'] }, maxBytes: 1000, timeoutMs: 500, searchUrl: `${site.url}/search`, getSearchCredential: async () => ({ apiKey: 'k-1' }) }),
    );
    // Same connector but the egress guard does not allow loopback: the host allowlist alone is not enough.
    await hub.addBuiltin('web-public', createWebServer({ allowHosts: ['127.0.0.1'] }));
  });
  afterAll(async () => {
    await hub.close();
    await site.close();
  });

  it('has a valid manifest; fetch extracts the URL and its host', () => {
    expect(() => parseManifest(webManifest)).not.toThrow();
    expect(extractContext(resolveTool(webManifest, 'web.fetch'), { url: 'https://Docs.Example.com/a' })).toEqual({ connector: 'web', resources: ['https://docs.example.com/a'], hosts: ['docs.example.com'] });
    // A trailing dot names the same host (the egress guard fetches it): the policy sees it without.
    expect(extractContext(resolveTool(webManifest, 'web.fetch'), { url: 'https://docs.example.com./a' }).hosts).toEqual(['docs.example.com']);
    // Percent-encoded letters are the letters the server reads ("%66orms" is "forms"): a glob on /forms/** sees them so.
    expect(extractContext(resolveTool(webManifest, 'web.fetch'), { url: 'https://docs.google.com/%66orms/d/e/X/formResponse?entry.1=%e2%82%ac&q=a%2fb' }).resources).toEqual([
      'https://docs.google.com/forms/d/e/X/formResponse?entry.1=%E2%82%AC&q=a%2Fb',
    ]);
  });

  it('fetches an allowed page as text labelled untrusted', async () => {
    const res = await hub.callTool('web', 'web.fetch', { url: `${site.url}/page` });
    expect(res.structuredContent).toMatchObject({ title: 'Docs', text: 'Docs Hello world' });
    expect(res.labels).toEqual(['untrusted']);
  });

  it('searches', async () => {
    const res = await hub.callTool('web', 'web.search', { query: 'steward' });
    expect(res.structuredContent).toEqual({ results: [{ title: 'Steward', url: 'https://steward.example', description: 'governance' }] });
    expect(res.labels).toEqual(['untrusted']);
  });

  it('follows redirects only to what the policy decided on (same host, port and path: a trailing slash, a query); anywhere else the answer says where the page moved', async () => {
    site.calls.length = 0;
    const docs = await hub.callTool('web', 'web.fetch', { url: `${site.url}/docs` });
    expect(docs.structuredContent).toMatchObject({ url: `${site.url}/docs/?from=short`, title: 'Docs index' });
    // Another path (a rule on paths may tell it apart), another host, another port (another service): not followed.
    const moved = await hub.callTool('web', 'web.fetch', { url: `${site.url}/moved` });
    expect(moved.structuredContent).toMatchObject({ status: 301, movedTo: `${site.url}/page`, text: expect.stringContaining('It was not fetched') });
    const away = await hub.callTool('web', 'web.fetch', { url: `${site.url}/away` });
    expect(away.structuredContent).toMatchObject({ status: 302, movedTo: 'http://localhost:1/elsewhere', text: expect.stringContaining('It was not fetched') });
    expect(away.labels).toEqual(['untrusted']);
    const port = await hub.callTool('web', 'web.fetch', { url: `${site.url}/port` });
    expect(port.structuredContent).toMatchObject({ status: 302, movedTo: 'http://127.0.0.1:1/port' });
    expect(site.calls.map((c) => c.path)).toEqual(['/docs', '/docs/', '/moved', '/away', '/port']);
    expect(await hub.callTool('web', 'web.fetch', { url: `${site.url}/round` }).catch((e: ConnectorError) => e)).toMatchObject({ code: 'upstream_error', message: expect.stringContaining('more than 5 redirects') });
  });

  it('stops reading a JSON page at its limit: a large answer is not read whole first', async () => {
    // Far more than the kernel's socket buffers take in on this side and that (receive buffers grow up to 32 MiB on some hosts).
    const total = 128 * 1024 * 1024;
    let written = 0;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const more = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('close', () => (written = Math.min(written, total)));
      more();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const err = await hub.callTool('web', 'web.fetch', { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/data.json` }).catch((e: ConnectorError) => e);
      expect(err).toMatchObject({ code: 'result_too_large' });
      expect(written).toBeLessThan(total / 2);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses hosts off the list, oversize pages, binaries, slow pages and private addresses', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: ConnectorError) => e.code);
    expect(await code(hub.callTool('web', 'web.fetch', { url: 'http://localhost:1/x' }))).toBe('bad_arguments');
    expect(await code(hub.callTool('web', 'web.fetch', { url: `${site.url}/big` }))).toBe('result_too_large');
    expect(await code(hub.callTool('web', 'web.fetch', { url: `${site.url}/binary` }))).toBe('bad_arguments');
    expect(await code(hub.callTool('web', 'web.fetch', { url: `${site.url}/slow` }))).toBe('timeout');
    expect(await code(hub.callTool('web', 'web.fetch', { url: 'file:///etc/passwd' }))).toBe('egress_refused');
    const before = site.calls.length;
    expect(await code(hub.callTool('web-public', 'web.fetch', { url: `${site.url}/page` }))).toBe('egress_refused');
    expect(site.calls.length).toBe(before);
  });
});

describe('reading a page as text', () => {
  it('drops tags, comments and script/style/noscript/template elements; keeps what never closes as text', () => {
    expect(htmlToText('<html><head><title> Q3 plan </title><style>p{color:red}</style></head><body><p>Revenue&nbsp;<b>up</b> &amp; costs</p><!-- internal --><script>track()</script><SCRIPT type="x">more()</SCRIPT>Done</body></html>')).toEqual({
      title: 'Q3 plan',
      text: 'Q3 plan Revenue up & costs Done',
    });
    expect(htmlToText('a <!-- never closed').text).toBe('a <!-- never closed');
    expect(htmlToText('<script>never closed').text).toBe('never closed');
    expect(htmlToText('<scripts>kept</scripts> and 1 < 2').text).toBe('kept and 1 < 2');
  });

  it('reads hostile pages of 2 MiB (openings that never close, repeated) as text, in one pass', () => {
    for (const unit of ['<!--', '<script', '<title', '<a', '<']) {
      const page = unit.repeat(Math.floor((2 * 1024 * 1024) / unit.length));
      expect(typeof htmlToText(page).text).toBe('string');
    }
    // The same for a tool description full of comment openings (flagged for what it holds, not read again and again).
    expect(scanText('<!--'.repeat(24_000) + '-->').map((f) => f.reason)).toEqual(['contains an HTML comment (hidden from people who read rendered text)']);
    expect(scanText('x'.repeat(200_000)).map((f) => f.reason)).toEqual(['is longer than 100,000 characters (only the start was scanned)', 'contains a long encoded blob']);
  });
});
