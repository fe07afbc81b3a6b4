import { ConnectorError } from '../errors';
import { ConnectorHub } from '../hub';
import { extractContext, parseManifest, resolveTool, undoCall } from '../manifest';
import { argumentProblems } from '../arguments';
import { fakeApi } from '../test-support/fake-api';
import { createDocuSignServer, createSalesforceServer, createSlackServer, docusignManifest, salesforceManifest, slackManifest } from './saas';

describe('Slack, Salesforce and DocuSign against loopback fakes', () => {
  let token = 'tok';
  const getCredential = async () => ({ accessToken: token });
  const hub = new ConnectorHub({ timeoutMs: 5000 });
  let slack: Awaited<ReturnType<typeof fakeApi>>;
  let sf: Awaited<ReturnType<typeof fakeApi>>;
  let ds: Awaited<ReturnType<typeof fakeApi>>;
  const envelope = { envelopeId: 'env-1', status: 'created', emailSubject: 'NDA', recipients: { signers: [{ email: 'bob@partner.example', name: 'Bob' }] } };

  beforeAll(async () => {
    slack = await fakeApi(
      (c) => {
        if (c.path === '/api/search.messages') {
          return { json: { ok: true, messages: { matches: [{ channel: { id: 'C1', name: 'shared-vendor', is_ext_shared: true }, user: 'U2', text: 'hi', ts: '1.2', permalink: 'https://x' }] } } };
        }
        if (c.path === '/api/chat.postMessage') {
          const p = new URLSearchParams(c.body);
          if (p.get('channel') === 'C404') return { json: { ok: false, error: 'channel_not_found' } };
          return { json: { ok: true, channel: p.get('channel'), ts: '1700000000.0001' } };
        }
        if (c.path === '/api/chat.delete') return { json: { ok: true } };
        if (c.path === '/api/conversations.info') {
          const id = new URLSearchParams(c.body).get('channel');
          if (id === 'C404') return { json: { ok: false, error: 'channel_not_found' } };
          // C1 is shared with a vendor (Slack Connect), C3's invitation to another company is pending; the rest are the org's own.
          return { json: { ok: true, channel: { id, is_ext_shared: id === 'C1', is_pending_ext_shared: id === 'C3' } } };
        }
        return undefined;
      },
      { expired: () => ({ json: { ok: false, error: 'token_expired' } }) },
    );
    sf = await fakeApi(
      (c) => {
        const base = '/services/data/v62.0';
        if (c.method === 'GET' && c.path === `${base}/query`) return { json: { totalSize: 1, done: true, records: [{ Id: '001000000000001AAA', Name: 'ACME' }] } };
        if (c.method === 'GET' && c.path === `${base}/sobjects/Account/001000000000001AAA`) return { json: { Id: '001000000000001AAA', Name: 'ACME', Rating: 'Warm' } };
        if (c.method === 'PATCH' && c.path === `${base}/sobjects/Account/001000000000001AAA`) return { status: 204, text: '' };
        return undefined;
      },
      { expired: () => ({ status: 401, json: [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }] }) },
    );
    ds = await fakeApi((c) => {
      const base = '/restapi/v2.1/accounts/acc-1';
      if (c.method === 'GET' && c.path === `${base}/envelopes`) return { json: { envelopes: [envelope] } };
      if (c.method === 'GET' && c.path === `${base}/envelopes/env-1`) return { json: envelope };
      if (c.method === 'POST' && c.path === `${base}/envelopes`) return { status: 201, json: { envelopeId: 'env-1', status: 'created' } };
      if (c.method === 'PUT' && c.path === `${base}/envelopes/env-1`) return { json: { envelopeId: 'env-1' } };
      if (c.method === 'PUT' && c.path === `${base}/folders/recyclebin`) return { json: {} };
      return undefined;
    });
    await hub.addBuiltin('slack', createSlackServer({ baseUrl: slack.url, getCredential }));
    await hub.addBuiltin('salesforce', createSalesforceServer({ baseUrl: sf.url, getCredential }));
    await hub.addBuiltin('docusign', createDocuSignServer({ baseUrl: ds.url, accountId: 'acc-1', getCredential }));
  });
  beforeEach(() => (token = 'tok'));
  afterAll(async () => {
    await hub.close();
    await Promise.all([slack.close(), sf.close(), ds.close()]);
  });

  it('manifests are valid', () => {
    for (const m of [slackManifest, salesforceManifest, docusignManifest]) expect(() => parseManifest(m)).not.toThrow();
  });

  it('Slack: search (untrusted, external for shared channels), post, delete; errors mapped', async () => {
    const found = await hub.callTool('slack', 'slack.search', { query: 'invoice' });
    expect(found.labels).toEqual(['external', 'untrusted']);
    expect(slack.calls[0].authorization).toBe('Bearer tok');
    const posted = await hub.callTool('slack', 'slack.post_message', { channel: 'C2', text: 'Status: done' });
    expect(posted.structuredContent).toEqual({ channel: 'C2', ts: '1700000000.0001' });
    expect(new URLSearchParams(slack.calls.at(-1)!.body).get('text')).toBe('Status: done');
    expect(extractContext(resolveTool(slackManifest, 'slack.post_message'), { channel: 'C1', text: 'x' })).toEqual({ connector: 'slack', resources: ['slack:channel/C1'] });
    // A channel shared with another company gets a post only from a call that says so, which is decided as reaching outside the org.
    for (const shared of ['C1', 'C3']) {
      const posts = slack.calls.filter((c) => c.path === '/api/chat.postMessage').length;
      const refused = await hub.callTool('slack', 'slack.post_message', { channel: shared, text: 'Customer list attached' }).catch((e: ConnectorError) => e);
      expect(refused).toMatchObject({ code: 'bad_arguments', message: expect.stringContaining(`${shared} is shared with people outside the org`) });
      expect(slack.calls.filter((c) => c.path === '/api/chat.postMessage').length).toBe(posts);
    }
    expect((await hub.callTool('slack', 'slack.post_message', { channel: 'C1', text: 'Status: done', sharedOutside: true })).structuredContent).toEqual({ channel: 'C1', ts: '1700000000.0001' });
    expect(extractContext(resolveTool(slackManifest, 'slack.post_message'), { channel: 'C1', text: 'x', sharedOutside: true })).toEqual({ connector: 'slack', resources: ['slack:channel/C1'], outside: true });
    expect(extractContext(resolveTool(slackManifest, 'slack.post_message'), { channel: 'C1', text: 'x', sharedOutside: 'yes' })).toEqual({ connector: 'slack', resources: ['slack:channel/C1'] });
    await hub.callTool('slack', 'slack.delete_message', { channel: 'C1', ts: '1700000000.0001' });
    expect(slack.calls.at(-1)!.path).toBe('/api/chat.delete');
    expect(await hub.callTool('slack', 'slack.post_message', { channel: 'C404', text: 'x' }).catch((e: ConnectorError) => e.code)).toBe('bad_arguments');
    // A channel by name, or a user (a direct message), is one destination under several spellings the policy would
    // see apart: an agent's call names it by id, refused before anything reaches Slack.
    const before = slack.calls.length;
    for (const c of ['#exec', 'exec', 'U0ALICE', 'c0exec']) {
      expect(await hub.callTool('slack', 'slack.post_message', { channel: c, text: 'x' }).catch((e: ConnectorError) => e)).toMatchObject({ code: 'bad_arguments', message: expect.stringContaining('is not a channel id') });
      expect(await hub.callTool('slack', 'slack.delete_message', { channel: c, ts: '1700000000.0001' }).catch((e: ConnectorError) => e.code)).toBe('bad_arguments');
    }
    expect(slack.calls.length).toBe(before);
    // The pinned definition says so too (a remote copy of it, or a model reading it, sees the shape).
    expect(argumentProblems(slackManifest.tools.find((t) => t.name === 'slack.post_message')!, { channel: '#exec', text: 'x' })).toMatch(/pattern/);
    token = 'expired';
    expect(await hub.callTool('slack', 'slack.search', { query: 'x' }).catch((e: ConnectorError) => e.code)).toBe('auth_required');
  });

  it('Salesforce: query and update with the previous values kept for undo; 401 → auth_required', async () => {
    const q = await hub.callTool('salesforce', 'salesforce.query', { soql: 'SELECT Id, Name FROM Account' });
    expect(q.structuredContent).toMatchObject({ totalSize: 1, records: [{ Name: 'ACME' }] });
    expect(sf.calls[0].query.get('q')).toBe('SELECT Id, Name FROM Account');
    expect(await hub.callTool('salesforce', 'salesforce.query', { soql: 'DELETE FROM Account' }).catch((e: ConnectorError) => e.code)).toBe('bad_arguments');
    const args = { sobject: 'Account', id: '001000000000001AAA', fields: { Rating: 'Hot' } };
    const upd = await hub.callTool('salesforce', 'salesforce.update_record', args);
    expect(upd.structuredContent).toMatchObject({ previous: { Rating: 'Warm' } });
    expect(sf.calls.at(-1)).toMatchObject({ method: 'PATCH', body: '{"Rating":"Hot"}' });
    expect(undoCall(resolveTool(salesforceManifest, 'salesforce.update_record'), args, upd.structuredContent)).toEqual({
      tool: 'salesforce.update_record',
      args: { sobject: 'Account', id: '001000000000001AAA', fields: { Rating: 'Warm' } },
    });
    token = 'expired';
    const err = await hub.callTool('salesforce', 'salesforce.query', { soql: 'SELECT Id FROM Account' }).catch((e: ConnectorError) => e);
    expect(err).toMatchObject({ code: 'auth_required' });
    expect((err as ConnectorError).message).toMatch(/INVALID_SESSION_ID/);
  });

  it('DocuSign: read, create a draft (not sent), send only to the named recipients', async () => {
    expect((await hub.callTool('docusign', 'docusign.list_envelopes', { fromDate: '2026-01-01' })).structuredContent).toMatchObject({ envelopes: [{ envelopeId: 'env-1', recipients: ['bob@partner.example'] }] });
    ds.calls.length = 0;
    const draftArgs = { emailSubject: 'NDA', documentName: 'nda.pdf', documentBase64: 'JVBERi0=', signers: [{ email: 'bob@partner.example', name: 'Bob' }] };
    expect(extractContext(resolveTool(docusignManifest, 'docusign.create_draft_envelope'), draftArgs).recipients).toEqual(['bob@partner.example']);
    await hub.callTool('docusign', 'docusign.create_draft_envelope', draftArgs);
    expect(ds.calls.map((c) => c.method)).toEqual(['POST']);
    expect(JSON.parse(ds.calls[0].body)).toMatchObject({ status: 'created', recipients: { signers: [{ email: 'bob@partner.example', recipientId: '1' }] } });

    const wrong = await hub.callTool('docusign', 'docusign.send_envelope', { envelopeId: 'env-1', recipients: ['alice@acme.example'] }).catch((e: ConnectorError) => e);
    expect(wrong).toMatchObject({ code: 'bad_arguments' });
    expect(ds.calls.filter((c) => c.method === 'PUT')).toEqual([]);
    const sendArgs = { envelopeId: 'env-1', recipients: ['Bob@Partner.example'] };
    expect(resolveTool(docusignManifest, 'docusign.send_envelope').action).toBe('contract.send');
    expect(extractContext(resolveTool(docusignManifest, 'docusign.send_envelope'), sendArgs)).toMatchObject({ recipients: ['bob@partner.example'] });
    await hub.callTool('docusign', 'docusign.send_envelope', sendArgs);
    expect(JSON.parse(ds.calls.at(-1)!.body)).toEqual({ status: 'sent' });
  });

  it('an unreachable upstream gives a clear error', async () => {
    const dead = await fakeApi(() => undefined);
    const url = dead.url;
    await dead.close();
    await hub.addBuiltin('sf-dead', createSalesforceServer({ baseUrl: url, getCredential }));
    const err = await hub.callTool('sf-dead', 'salesforce.query', { soql: 'SELECT Id FROM Account' }).catch((e: ConnectorError) => e);
    expect(err).toMatchObject({ code: 'upstream_unreachable' });
    expect((err as ConnectorError).message).toMatch(/ECONNREFUSED/);
  });
});
