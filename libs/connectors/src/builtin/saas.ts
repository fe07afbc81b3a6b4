import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { ConnectorError } from '../errors';
import type { ConnectorManifest } from '../manifest';
import { defineTool } from '../tool-result';
import { bearer, restJson, trimSlash, wrapNetwork, type SaasOptions } from './common';

const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', properties, required });
const str = { type: 'string' };

// ---------------------------------------------------------------------------------------------
// Slack, on the official @slack/web-api client.

const SLACK_AUTH_ERRORS = new Set(['invalid_auth', 'not_authed', 'token_expired', 'token_revoked', 'account_inactive', 'missing_scope', 'no_permission']);

function slackError(err: unknown): ConnectorError {
  const e = err as { code?: string; data?: { error?: string }; statusCode?: number; original?: unknown; message?: string };
  if (e?.code === 'slack_webapi_platform_error') {
    const code = e.data?.error ?? 'unknown';
    if (SLACK_AUTH_ERRORS.has(code)) return new ConnectorError('auth_required', `Slack refused the credential (${code}); authorise the connector again`, { upstream: code });
    if (['channel_not_found', 'not_in_channel', 'invalid_arguments', 'msg_too_long', 'no_text', 'is_archived'].includes(code)) return new ConnectorError('bad_arguments', `Slack: ${code}`, { upstream: code });
    return new ConnectorError('upstream_error', `Slack: ${code}`, { upstream: code });
  }
  if (e?.code === 'slack_webapi_http_error') {
    if (e.statusCode === 401 || e.statusCode === 403) return new ConnectorError('auth_required', `Slack: HTTP ${e.statusCode}; authorise the connector again`, { status: e.statusCode });
    return new ConnectorError('upstream_error', `Slack: HTTP ${e.statusCode}`, { status: e.statusCode });
  }
  if (e?.code === 'slack_webapi_request_error') return wrapNetwork('Slack', e.original ?? err);
  return wrapNetwork('Slack', err);
}

/** A conversation id as Slack writes it (C… public, G… private, D… direct): what slack.search returns. */
const CHANNEL_ID = /^[CGD][A-Z0-9]{1,20}$/;

/**
 * `channelNames`: a channel may also be named ("#exec") — for Steward's own notices, which are no
 * agent's action. An agent's call names its channel by id: the policy decides on the channel as the
 * call writes it, and "#exec", "exec" and C0EXEC (or a user id, which opens a direct message) are
 * one destination that a rule on any one of them would not see as the others.
 */
export function createSlackServer(opts: SaasOptions & { channelNames?: boolean }): McpServer {
  const svc = 'Slack';
  const server = new McpServer({ name: 'steward-slack', version: '1.0.0' });
  const client = async () =>
    new WebClient(await bearer(opts.getCredential, svc), {
      slackApiUrl: `${trimSlash(opts.baseUrl ?? 'https://slack.com')}/api/`,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      timeout: 30_000,
    });

  defineTool(server, svc, 'slack.search', { description: 'Search messages.', inputSchema: { query: z.string().max(1000), count: z.number().int().min(1).max(100).optional() }, readOnly: true }, async (a) => {
    try {
      const res = await (await client()).search.messages({ query: a.query, count: a.count ?? 20 });
      const matches = (res.messages?.matches ?? []).map((m) => ({
        channel: m.channel?.id,
        channelName: m.channel?.name,
        user: m.user ?? m.username,
        text: m.text,
        ts: m.ts,
        permalink: m.permalink,
        external: m.channel?.is_ext_shared === true,
      }));
      // Messages are written by other people: untrusted for the task; shared channels: external.
      return { data: { matches }, labels: ['untrusted', ...(matches.some((m) => m.external) ? ['external'] : [])] };
    } catch (err) {
      throw slackError(err);
    }
  });

  const channel = (c: string) => {
    if (!opts.channelNames && !CHANNEL_ID.test(c)) throw new ConnectorError('bad_arguments', `Slack: "${c.slice(0, 80)}" is not a channel id: name the channel by its id (C…, G… or D…, as slack.search returns it)`);
    return c;
  };

  defineTool(
    server,
    svc,
    'slack.post_message',
    { description: POST, inputSchema: { channel: z.string().max(80), text: z.string().min(1).max(40_000), threadTs: z.string().max(32).optional(), sharedOutside: z.boolean().optional() } },
    async (a) => {
      channel(a.channel);
      try {
        const slack = await client();
        // The policy decided on what the call says: a channel shared with another company (Slack Connect)
        // gets the post only if the call said so (`sharedOutside`), so that it was decided as reaching
        // people outside the org. Steward's own notices (channelNames) are no agent's action.
        if (!opts.channelNames && a.sharedOutside !== true) {
          const info = await slack.conversations.info({ channel: a.channel });
          const c = info.channel as { is_ext_shared?: boolean; is_pending_ext_shared?: boolean } | undefined;
          if (c?.is_ext_shared || c?.is_pending_ext_shared) {
            throw new ConnectorError('bad_arguments', `slack.post_message: ${a.channel} is shared with people outside the org (Slack Connect): nothing was posted; call again with sharedOutside: true, which the policy decides as a post outside the org`);
          }
        }
        const res = await slack.chat.postMessage({ channel: a.channel, text: a.text, thread_ts: a.threadTs });
        return { data: { channel: res.channel, ts: res.ts } };
      } catch (err) {
        throw err instanceof ConnectorError ? err : slackError(err);
      }
    },
  );

  defineTool(server, svc, 'slack.delete_message', { description: 'Delete a message the connector posted (the channel by its id).', inputSchema: { channel: z.string().max(80), ts: z.string().max(32) }, destructive: true }, async (a) => {
    channel(a.channel);
    try {
      await (await client()).chat.delete({ channel: a.channel, ts: a.ts });
      return { data: { channel: a.channel, ts: a.ts, deleted: true } };
    } catch (err) {
      throw slackError(err);
    }
  });
  return server;
}

const POST =
  'Post a message to a channel, named by its id (C…, G… or D…, as slack.search returns it). For a channel shared with people outside the org (Slack Connect; slack.search marks its messages external), set sharedOutside: true, or nothing is posted.';

export const slackManifest: ConnectorManifest = {
  id: 'slack',
  name: 'Slack',
  vendor: 'Slack',
  runtime: { kind: 'builtin' },
  auth: { kind: 'oauth2', authorizationUrl: 'https://slack.com/oauth/v2/authorize', tokenUrl: 'https://slack.com/api/oauth.v2.access', scopes: ['search:read', 'chat:write', 'channels:read', 'groups:read', 'im:read', 'mpim:read'] },
  credentialScope: 'user',
  tools: [
    { name: 'slack.search', description: 'Search messages.', inputSchema: obj({ query: str, count: { type: 'integer' } }, ['query']), action: 'saas.read', readOnly: true },
    {
      name: 'slack.post_message',
      description: POST,
      inputSchema: obj({ channel: { type: 'string', pattern: CHANNEL_ID.source }, text: str, threadTs: str, sharedOutside: { type: 'boolean' } }, ['channel', 'text']),
      action: 'chat.send',
      // A post to a channel shared outside the org is decided as reaching external recipients (the connector posts it only when the call says so).
      extract: { resources: [{ path: '/channel', prefix: 'slack:channel/' }], outside: ['/sharedOutside'] },
    },
    { name: 'slack.delete_message', description: 'Delete a message (the channel by its id).', inputSchema: obj({ channel: { type: 'string', pattern: CHANNEL_ID.source }, ts: str }, ['channel', 'ts']), action: 'chat.send', extract: { resources: [{ path: '/channel', prefix: 'slack:channel/' }] } },
  ],
};

// ---------------------------------------------------------------------------------------------
// Salesforce: a small typed client of the REST API (jsforce is large and brings its own
// HTTP stack, session handling and CLI; two endpoints are all this connector needs).

export interface SalesforceOptions extends SaasOptions {
  /** The org's instance URL (https://acme.my.salesforce.com); `baseUrl` overrides it in tests. */
  instanceUrl?: string;
  apiVersion?: string;
}

const SOBJECT = /^[A-Za-z][A-Za-z0-9_]{0,79}$/;
const SF_ID = /^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$/;

export function createSalesforceServer(opts: SalesforceOptions): McpServer {
  const svc = 'Salesforce';
  const f = opts.fetch ?? fetch;
  const base = () => `${trimSlash(opts.baseUrl ?? opts.instanceUrl ?? '')}/services/data/${opts.apiVersion ?? 'v62.0'}`;
  const server = new McpServer({ name: 'steward-salesforce', version: '1.0.0' });
  if (!opts.baseUrl && !opts.instanceUrl) throw new ConnectorError('bad_arguments', 'Salesforce: instanceUrl is required');

  defineTool(server, svc, 'salesforce.query', { description: 'Run a SOQL query (read only).', inputSchema: { soql: z.string().max(20_000) }, readOnly: true }, async (a) => {
    if (!/^\s*select\b/i.test(a.soql)) throw new ConnectorError('bad_arguments', 'Salesforce: only SELECT queries');
    const token = await bearer(opts.getCredential, svc);
    const res = await restJson<{ totalSize: number; done: boolean; records: Record<string, unknown>[] }>(svc, f, `${base()}/query?q=${encodeURIComponent(a.soql)}`, { token });
    return { data: { totalSize: res.totalSize, done: res.done, records: res.records } };
  });

  defineTool(
    server,
    svc,
    'salesforce.update_record',
    { description: 'Update fields of one record; the previous values are returned for undo.', inputSchema: { sobject: z.string().regex(SOBJECT), id: z.string().regex(SF_ID), fields: z.record(z.string().regex(SOBJECT), z.unknown()) } },
    async (a) => {
      const names = Object.keys(a.fields);
      if (!names.length) throw new ConnectorError('bad_arguments', 'Salesforce: no fields to update');
      const token = await bearer(opts.getCredential, svc);
      const url = `${base()}/sobjects/${a.sobject}/${a.id}`;
      const current = await restJson<Record<string, unknown>>(svc, f, `${url}?fields=${names.map(encodeURIComponent).join(',')}`, { token });
      const previous = Object.fromEntries(names.map((n) => [n, current?.[n] ?? null]));
      await restJson(svc, f, url, { token, method: 'PATCH', body: JSON.stringify(a.fields) });
      return { data: { sobject: a.sobject, id: a.id, updated: names, previous } };
    },
  );
  return server;
}

export const salesforceManifest: ConnectorManifest = {
  id: 'salesforce',
  name: 'Salesforce',
  vendor: 'Salesforce',
  runtime: { kind: 'builtin' },
  auth: { kind: 'oauth2', authorizationUrl: 'https://login.salesforce.com/services/oauth2/authorize', tokenUrl: 'https://login.salesforce.com/services/oauth2/token', scopes: ['api', 'refresh_token'] },
  credentialScope: 'org',
  tools: [
    { name: 'salesforce.query', description: 'Run a SOQL query (read only).', inputSchema: obj({ soql: str }, ['soql']), action: 'saas.read', readOnly: true },
    {
      name: 'salesforce.update_record',
      description: 'Update fields of one record.',
      inputSchema: obj({ sobject: str, id: str, fields: { type: 'object' } }, ['sobject', 'id', 'fields']),
      action: 'saas.write',
      extract: { resources: ['/sobject', '/id'] },
      reversible: { undo: { tool: 'salesforce.update_record', args: { sobject: '/args/sobject', id: '/args/id', fields: '/result/previous' } } },
    },
  ],
};

// ---------------------------------------------------------------------------------------------
// DocuSign eSignature REST v2.1: a small typed client (the docusign-esign SDK is a large
// generated client on superagent with its own auth flow; five calls are all this connector needs).

export interface DocuSignOptions extends SaasOptions {
  accountId: string;
}

interface Envelope {
  envelopeId: string;
  status: string;
  emailSubject?: string;
  sentDateTime?: string;
  recipients?: { signers?: { email: string; name: string }[]; carbonCopies?: { email: string; name: string }[] };
}

export function createDocuSignServer(opts: DocuSignOptions): McpServer {
  const svc = 'DocuSign';
  const f = opts.fetch ?? fetch;
  if (!/^[A-Za-z0-9-]{1,64}$/.test(opts.accountId)) throw new ConnectorError('bad_arguments', 'DocuSign: accountId is not valid');
  const base = () => `${trimSlash(opts.baseUrl ?? 'https://www.docusign.net')}/restapi/v2.1/accounts/${opts.accountId}`;
  const server = new McpServer({ name: 'steward-docusign', version: '1.0.0' });
  const envId = z.string().regex(/^[A-Za-z0-9-]{1,64}$/);

  const getEnvelope = async (token: string, id: string) => restJson<Envelope>(svc, f, `${base()}/envelopes/${id}?include=recipients`, { token });
  const summary = (e: Envelope) => ({
    envelopeId: e.envelopeId,
    status: e.status,
    emailSubject: e.emailSubject,
    sentDateTime: e.sentDateTime,
    recipients: [...(e.recipients?.signers ?? []), ...(e.recipients?.carbonCopies ?? [])].map((r) => r.email),
  });

  defineTool(server, svc, 'docusign.list_envelopes', { description: 'List envelopes changed since a date.', inputSchema: { fromDate: z.string().max(64), status: z.string().max(64).optional() }, readOnly: true }, async (a) => {
    const token = await bearer(opts.getCredential, svc);
    const q = new URLSearchParams({ from_date: a.fromDate, ...(a.status ? { status: a.status } : {}) });
    const res = await restJson<{ envelopes?: Envelope[] }>(svc, f, `${base()}/envelopes?${q}`, { token });
    return { data: { envelopes: (res.envelopes ?? []).map(summary) } };
  });

  defineTool(server, svc, 'docusign.get_envelope', { description: 'Read one envelope with its recipients.', inputSchema: { envelopeId: envId }, readOnly: true }, async (a) => {
    const token = await bearer(opts.getCredential, svc);
    return { data: summary(await getEnvelope(token, a.envelopeId)) };
  });

  defineTool(
    server,
    svc,
    'docusign.create_draft_envelope',
    {
      description: 'Create a draft envelope (not sent).',
      inputSchema: {
        emailSubject: z.string().max(100),
        documentName: z.string().max(100),
        documentBase64: z.string().max(20_000_000),
        fileExtension: z.string().regex(/^[a-z0-9]{1,8}$/).optional(),
        signers: z.array(z.object({ email: z.email(), name: z.string().max(100) })).min(1).max(50),
      },
    },
    async (a) => {
      const token = await bearer(opts.getCredential, svc);
      const body = {
        status: 'created',
        emailSubject: a.emailSubject,
        documents: [{ documentId: '1', name: a.documentName, fileExtension: a.fileExtension ?? 'pdf', documentBase64: a.documentBase64 }],
        recipients: { signers: a.signers.map((s, i) => ({ email: s.email, name: s.name, recipientId: String(i + 1), routingOrder: '1' })) },
      };
      const res = await restJson<{ envelopeId: string; status: string }>(svc, f, `${base()}/envelopes`, { token, method: 'POST', body: JSON.stringify(body) });
      return { data: { envelopeId: res.envelopeId, status: res.status } };
    },
  );

  defineTool(server, svc, 'docusign.delete_draft_envelope', { description: 'Move a draft envelope to the recycle bin.', inputSchema: { envelopeId: envId }, destructive: true }, async (a) => {
    const token = await bearer(opts.getCredential, svc);
    await restJson(svc, f, `${base()}/folders/recyclebin`, { token, method: 'PUT', body: JSON.stringify({ envelopeIds: [a.envelopeId] }) });
    return { data: { envelopeId: a.envelopeId, deleted: true } };
  });

  defineTool(
    server,
    svc,
    'docusign.send_envelope',
    {
      description: 'Send a draft envelope. The recipients must be named and must match the envelope exactly.',
      inputSchema: { envelopeId: envId, recipients: z.array(z.email()).min(1).max(50) },
    },
    async (a) => {
      const token = await bearer(opts.getCredential, svc);
      const env = await getEnvelope(token, a.envelopeId);
      // The gate decided on the named recipients: refuse if the envelope would go to anyone else.
      const actual = summary(env).recipients.map((r) => r.toLowerCase()).sort();
      const named = [...new Set(a.recipients.map((r) => r.toLowerCase()))].sort();
      if (actual.join(',') !== named.join(',')) {
        throw new ConnectorError('bad_arguments', `DocuSign: the envelope's recipients (${actual.join(', ')}) differ from the ones named (${named.join(', ')})`);
      }
      if (env.status !== 'created') throw new ConnectorError('conflict', `DocuSign: the envelope is ${env.status}, not a draft`);
      const res = await restJson<{ envelopeId?: string }>(svc, f, `${base()}/envelopes/${a.envelopeId}`, { token, method: 'PUT', body: JSON.stringify({ status: 'sent' }) });
      return { data: { envelopeId: res?.envelopeId ?? a.envelopeId, status: 'sent' } };
    },
  );
  return server;
}

export const docusignManifest: ConnectorManifest = {
  id: 'docusign',
  name: 'DocuSign eSignature',
  vendor: 'DocuSign',
  runtime: { kind: 'builtin' },
  auth: { kind: 'oauth2', authorizationUrl: 'https://account.docusign.com/oauth/auth', tokenUrl: 'https://account.docusign.com/oauth/token', scopes: ['signature'] },
  credentialScope: 'org',
  tools: [
    { name: 'docusign.list_envelopes', description: 'List envelopes changed since a date.', inputSchema: obj({ fromDate: str, status: str }, ['fromDate']), action: 'saas.read', readOnly: true },
    { name: 'docusign.get_envelope', description: 'Read one envelope.', inputSchema: obj({ envelopeId: str }, ['envelopeId']), action: 'saas.read', extract: { resources: [{ path: '/envelopeId', prefix: 'docusign:envelope/' }] }, readOnly: true },
    {
      name: 'docusign.create_draft_envelope',
      description: 'Create a draft envelope (not sent).',
      inputSchema: obj({ emailSubject: str, documentName: str, documentBase64: str, fileExtension: str, signers: { type: 'array', items: obj({ email: str, name: str }) } }, ['emailSubject', 'documentName', 'documentBase64', 'signers']),
      action: 'saas.write',
      extract: { recipients: ['/signers/*/email'] },
      reversible: { undo: { tool: 'docusign.delete_draft_envelope', args: { envelopeId: '/result/envelopeId' } } },
    },
    { name: 'docusign.delete_draft_envelope', description: 'Move a draft envelope to the recycle bin.', inputSchema: obj({ envelopeId: str }, ['envelopeId']), action: 'saas.write' },
    {
      name: 'docusign.send_envelope',
      description: 'Send a draft envelope to its recipients.',
      inputSchema: obj({ envelopeId: str, recipients: { type: 'array', items: str } }, ['envelopeId', 'recipients']),
      action: 'contract.send',
      extract: { resources: [{ path: '/envelopeId', prefix: 'docusign:envelope/' }], recipients: ['/recipients'] },
    },
  ],
};
