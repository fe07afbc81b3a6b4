import { ACTION_TYPE_NAMES } from '@steward/policy';
import { CATALOG, REMOTE_CATALOG } from './catalog';
import { ManifestError } from './errors';
import { extractContext, parseManifest, resolveTool, reversibleCall, select, undoCall, type ToolMapping } from './manifest';
import { scanToolDefinition } from './pinning';

describe('manifests', () => {
  it('every catalog entry is valid, maps only catalog action types, and partner entries run remotely', () => {
    for (const m of CATALOG) {
      expect(() => parseManifest(m)).not.toThrow();
      for (const t of m.tools) expect(ACTION_TYPE_NAMES).toContain(t.action);
      // Our own descriptions pass the scanner we apply to remote servers.
      for (const t of m.tools) expect(scanToolDefinition(t)).toEqual([]);
    }
    expect(REMOTE_CATALOG.map((m) => m.id).sort()).toEqual(['apollo', 'clay', 'factset', 'legalzoom', 'msci', 'outreach', 'wordpress']);
    expect(REMOTE_CATALOG.every((m) => m.runtime.kind === 'remote')).toBe(true);
    expect(new Set(CATALOG.map((m) => m.id)).size).toBe(CATALOG.length);
  });

  it('refuses a bad manifest listing every problem', () => {
    const bad = {
      id: 'Bad Id',
      name: '',
      vendor: 'X',
      runtime: { kind: 'remote', url: 'ftp://x' },
      auth: { kind: 'password' },
      credentialScope: 'team',
      tools: [
        { name: 'send', description: 'd', inputSchema: { type: 'object', properties: { to: { type: 'string' } } }, action: 'email.sendd', extract: { recipients: ['/too', 'to'] } },
        { name: 'send', description: 'd', inputSchema: { type: 'array' }, action: 'email.send', reversible: { tool: 'draft', undo: { tool: 'nope', args: { id: '/result/id', x: '/other' } } } },
      ],
      extra: true,
    };
    let err: unknown;
    try {
      parseManifest(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    const problems = (err as ManifestError).problems.join('\n');
    for (const expected of [
      /^id: lower-case/m,
      /^name: /m,
      /^runtime\.url: /m,
      /^auth\.kind: /m,
      /^credentialScope: /m,
      /^tools\[0\]\.action: must be one of the catalog's action types/m,
      /^tools\[0\]\.extract\.recipients\[1\]: /m,
      /^tools\[1\]\.inputSchema: inputSchema must be a JSON Schema with "type": "object"/m,
      /^\(manifest\): Unrecognized key: "extra"|^: Unrecognized key/m,
    ]) {
      expect(problems).toMatch(expected);
    }
    expect((err as ManifestError).code).toBe('bad_manifest');
    expect((err as ManifestError).problems.length).toBeGreaterThanOrEqual(9);
  });

  it('checks cross references once the shape is right', () => {
    const m = {
      id: 'mail',
      name: 'Mail',
      vendor: 'X',
      runtime: { kind: 'builtin' },
      auth: { kind: 'none' },
      credentialScope: 'user',
      tools: [
        { name: 'send', description: '', inputSchema: { type: 'object', properties: { to: {} } }, action: 'email.send', extract: { recipients: ['/too'] }, reversible: { tool: 'draft', undo: { tool: 'nope', args: { x: '/other' } }, finalize: { tool: 'send_draft', args: { id: '/elsewhere' } } } },
        { name: 'send', description: '', inputSchema: { type: 'object' }, action: 'email.draft' },
      ],
    };
    expect(() => parseManifest(m)).toThrow(ManifestError);
    try {
      parseManifest(m);
    } catch (e) {
      expect((e as ManifestError).problems).toEqual(
        expect.arrayContaining([
          'tools[1].name: duplicate tool name "send" (also tools[0])',
          'tools[0].extract.recipients[0]: "/too" does not name a property of the tool\'s inputSchema',
          'tools[0].reversible.tool: no tool named "draft" in this manifest',
          'tools[0].reversible.undo.tool: no tool named "nope" in this manifest',
          'tools[0].reversible.undo.args.x: undo selectors read "/args/..." or "/result/..."',
          'tools[0].reversible.finalize.tool: no tool named "send_draft" in this manifest',
          'tools[0].reversible.finalize.args.id: finalize selectors read "/args/..." or "/result/..."',
        ]),
      );
    }
  });
});

describe('extractContext', () => {
  const mapping: ToolMapping = {
    connector: 'x',
    tool: 't',
    action: 'payment.execute',
    extract: {
      recipients: ['/to', '/cc', { path: '/people/*/email' }],
      attendees: ['/attendees/*'],
      urls: ['/link'],
      hosts: [{ path: '/endpoint', as: 'host' }],
      resources: [{ path: '/file', prefix: 'drive:' }],
      amount: ['/amount/value', '/total'],
      labels: ['/classification'],
    },
  };

  it('reads a URL as a fetch does: a scheme without its slashes, tabs inside, controls around and upper case do not hide the host or the resource', () => {
    const web: ToolMapping = { connector: 'web', tool: 'web.fetch', action: 'web.read', extract: { urls: ['/url'] } };
    for (const url of ['https:/pastebin.com/raw/x', 'https:pastebin.com/raw/x', 'ht\ttps://pastebin.com/raw/x', 'https://paste\nbin.com/raw/x', '\u0001 https://pastebin.com/raw/x ', 'HTTPS://PASTEBIN.COM/raw/./x', 'https://pastebin.com./raw/x']) {
      // What the web connector's fetch requests: the URL the WHATWG parser makes of it.
      expect(new URL(url.trim().replace('\u0001', '').trim()).hostname.replace(/\.$/, '')).toBe('pastebin.com');
      const ctx = extractContext(web, { url });
      expect({ url, hosts: ctx.hosts, resources: ctx.resources }).toEqual({ url, hosts: ['pastebin.com'], resources: [expect.stringMatching(/^https:\/\/pastebin\.com\.?\/raw\/x$/)] });
    }
    // A host and port without a scheme is a host, not a scheme; a number after a scheme is an IPv4 host.
    expect(extractContext(web, { url: 'http:134744072/x' }).hosts).toEqual(['8.8.8.8']);
    // An address that is not one is kept as written (outside every org domain), not dropped.
    expect(extractContext({ connector: 'x', tool: 't', action: 'saas.write', extract: { recipients: ['/to'] } }, { to: 'a@evil.example., b@[10.0.0.1], a..b@acme.example, ok@acme.example' }).recipients).toEqual(['a@evil.example. [unreadable]', 'b@[10.0.0.1] [unreadable]', 'a..b@acme.example [unreadable]', 'ok@acme.example']);
    expect(extractContext(web, { url: 'docs.example.com:8443/a' }).hosts).toEqual(['docs.example.com']);
  });

  it('reads every decision input declaratively', () => {
    const ctx = extractContext(mapping, {
      to: 'Alice <Alice@Acme.example>, bob@partner.example',
      cc: ['carol@acme.example'],
      people: [{ email: 'dave@x.example' }, { name: 'no email' }],
      attendees: [{ email: 'e@acme.example', responseStatus: 'needsAction' }, 'f@acme.example'],
      link: 'https://Docs.Example.com/a?b=1',
      endpoint: 'api.vendor.example:8443',
      file: 'f-1',
      amount: { value: '1250.50', currency: 'EUR' },
      classification: 'confidential',
    });
    expect(ctx).toEqual({
      connector: 'x',
      recipients: ['alice@acme.example', 'bob@partner.example', 'carol@acme.example', 'dave@x.example'],
      attendees: ['e@acme.example', 'f@acme.example'],
      resources: ['drive:f-1', 'https://docs.example.com/a?b=1'],
      hosts: ['api.vendor.example', 'docs.example.com'],
      amount: 1250.5,
      labels: ['confidential'],
    });
  });

  it('never throws on odd arguments and leaves out what it did not find', () => {
    expect(extractContext(mapping, null)).toEqual({ connector: 'x' });
    expect(extractContext(mapping, { to: 42, amount: 'lots', total: 7, attendees: 'x' })).toEqual({ connector: 'x', amount: 7 });
  });

  it('reads amounts so that a rule on them fails closed: the largest of all found, and one that is no plain number above every limit', () => {
    const pay: ToolMapping = { connector: 'erp', tool: 'pay', action: 'saas.write', extract: { amount: ['/total', '/lines/*/amount'] } };
    expect(extractContext(pay, { lines: [{ amount: 10 }, { amount: 9000 }, { amount: '25.5' }] }).amount).toBe(9000);
    expect(extractContext(pay, { total: 12, lines: [{ amount: 300 }] }).amount).toBe(300);
    for (const odd of ['5,000', '$5000', { value: 1 }, 'lots']) expect(extractContext(pay, { total: odd }).amount).toBe(Number.MAX_SAFE_INTEGER);
    expect(extractContext(pay, { total: null }).amount).toBeUndefined();
    expect(extractContext({ connector: 'y', tool: 'z', action: 'unknown' }, { a: 1 })).toEqual({ connector: 'y' });
  });

  it('selects with escaped pointers and wildcards over objects', () => {
    expect(select({ 'a/b': { 'c~d': [1, 2] } }, '/a~1b/c~0d')).toEqual([1, 2]);
    expect(select({ m: { x: { v: 1 }, y: { v: 2 } } }, '/m/*/v')).toEqual([1, 2]);
    expect(select({ list: ['a', 'b'] }, '/list/1')).toEqual(['b']);
  });

  it('builds reversible and undo calls', () => {
    const m = { id: 'mail', tools: [{ name: 'send', description: '', inputSchema: { type: 'object' }, action: 'email.send' as const, reversible: { tool: 'draft', args: { to: '/args/to', mode: { const: 'draft' } }, undo: { tool: 'delete_draft', args: { id: '/result/draft/id', to: '/args/to' } } } }] };
    const mapping2 = resolveTool(m, 'send');
    const call = reversibleCall(mapping2, { to: ['a@x.example'], body: 'b' });
    expect(call).toEqual({ tool: 'draft', args: { to: ['a@x.example'], mode: 'draft' } });
    expect(undoCall(mapping2, call!.args, { draft: { id: 'd1' } })).toEqual({ tool: 'delete_draft', args: { id: 'd1', to: ['a@x.example'] } });
    expect(reversibleCall(resolveTool(m, 'other'), {})).toBeNull();
  });
});
