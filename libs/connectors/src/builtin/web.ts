import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { guardedFetch, isHostAllowlisted, type EgressOptions } from '@steward/common';
import { z } from 'zod';
import { ConnectorError, fromHttpStatus } from '../errors';
import type { ConnectorManifest } from '../manifest';
import { defineTool } from '../tool-result';
import { bearer, trimSlash, wrapNetwork, type GetCredential } from './common';

/**
 * Web fetch and search. Fetches go only to hosts on the connector's allowlist (exact or
 * "*.example.com"; redirects are followed only to the same host, port and path, each hop checked), always through the egress guard (agent
 * tasks give it no private-address exemption: public addresses only), with a size and a time
 * limit. Search uses a Brave-Search-shaped API (GET {searchUrl}?q=... with X-Subscription-Token).
 * Everything read from the web is labelled "untrusted".
 */
export interface WebOptions {
  /** Hosts the connector may fetch from ("docs.example.com", "*.wikipedia.org"). */
  allowHosts: string[];
  egress?: EgressOptions;
  maxBytes?: number;
  timeoutMs?: number;
  searchUrl?: string;
  getSearchCredential?: GetCredential;
}

async function readCapped(res: Response, max: number, what: string): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let seen = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    seen += value.byteLength;
    if (seen > max) {
      await reader.cancel();
      throw new ConnectorError('result_too_large', `${what} is larger than ${max} bytes`, { limit: max });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A redirect the policy's decision covers: the same host, port and path (http → https, a trailing slash and the query aside). */
export function sameResource(from: URL, next: URL): boolean {
  const host = (u: URL) => u.hostname.toLowerCase().replace(/\.$/, '');
  const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '');
  const path = (u: URL) => u.pathname.replace(/\/+$/, '') || '/';
  if (host(from) !== host(next) || path(from) !== path(next)) return false;
  if (next.protocol === from.protocol) return port(next) === port(from);
  // An upgrade to https on the default ports.
  return from.protocol === 'http:' && next.protocol === 'https:' && port(from) === '80' && port(next) === '443';
}

const RAW_TEXT = /^<(script|style|noscript|template)(?=[\s>/]|$)/i;

/**
 * A page as plain text: tags, comments and script/style/noscript/template elements removed, a few
 * entities decoded, white space collapsed. One pass with indexOf, linear in the page whatever it
 * holds (the regular expressions it replaced were quadratic on "<!--" or "<script" repeated without
 * an end: a hostile page of 2 MiB held the process for minutes). What never closes stays as text,
 * as a browser would not hide it either.
 */
export function htmlToText(html: string): { title: string; text: string } {
  const lower = html.toLowerCase();
  const n = html.length;
  // What is not found from one position is not found from any later one: searched once.
  const absent = new Set<string>();
  const find = (needle: string, from: number): number => {
    if (absent.has(needle)) return -1;
    const at = lower.indexOf(needle, from);
    if (at < 0) absent.add(needle);
    return at;
  };
  let title = '';
  const titleAt = find('<title', 0);
  if (titleAt >= 0) {
    const gt = find('>', titleAt);
    const end = gt >= 0 ? lower.indexOf('</title>', gt) : -1;
    if (end >= 0) title = html.slice(gt + 1, end).trim();
  }
  const out: string[] = [];
  let i = 0;
  while (i < n) {
    const lt = html.indexOf('<', i);
    if (lt < 0) {
      out.push(html.slice(i));
      break;
    }
    out.push(html.slice(i, lt));
    if (html.startsWith('<!--', lt)) {
      const end = find('-->', lt + 4);
      if (end >= 0) {
        out.push(' ');
        i = end + 3;
        continue;
      }
    } else {
      const raw = RAW_TEXT.exec(html.slice(lt, lt + 10));
      if (raw) {
        const close = find(`</${raw[1]!.toLowerCase()}>`, lt);
        if (close >= 0) {
          out.push(' ');
          i = close + raw[1]!.length + 3;
          continue;
        }
      }
    }
    // A tag: up to its ">" (none left: the rest is text).
    const gt = lt + 1 < n && html[lt + 1] !== '>' ? find('>', lt + 1) : -1;
    if (gt < 0) {
      out.push(html.slice(lt, lt + 1));
      i = lt + 1;
      continue;
    }
    out.push(' ');
    i = gt + 1;
  }
  const text = out
    .join('')
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/\s+/g, ' ')
    .trim();
  return { title, text };
}

const FETCH = 'Fetch a web page (allowed hosts only) as text. A page that moved to another host is not followed: the answer says where it moved.';

export function createWebServer(opts: WebOptions): McpServer {
  const svc = 'web';
  const max = opts.maxBytes ?? 2 * 1024 * 1024;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const server = new McpServer({ name: 'steward-web', version: '1.0.0' });
  const f = guardedFetch({
    ...opts.egress,
    timeoutMs,
    // A JSON answer is read whole by the guard before it is handed on: read no more than a page may hold.
    maxJsonBytes: max,
    beforeRequest: (url) => {
      if (!isHostAllowlisted(url.hostname, opts.allowHosts)) {
        throw new ConnectorError('bad_arguments', `web: ${url.hostname} is not on this connector's list of allowed hosts`, { host: url.hostname });
      }
    },
  });

  const get = async (url: string, headers: Record<string, string> = {}, redirect: 'follow' | 'manual' = 'follow') => {
    try {
      return await f(url, { headers: { 'user-agent': 'Steward/1.0 (+web connector)', ...headers }, signal: AbortSignal.timeout(timeoutMs), redirect });
    } catch (err) {
      if ((err as { code?: string }).code === 'egress_refused') throw new ConnectorError('egress_refused', `web: ${(err as Error).message}`);
      if ((err as { code?: string }).code === 'ETOOBIG') throw new ConnectorError('result_too_large', `web: the page is larger than ${max} bytes`, { limit: max });
      throw wrapNetwork(svc, err);
    }
  };

  defineTool(server, svc, 'web.fetch', { description: FETCH, inputSchema: { url: z.string().max(2048) }, readOnly: true }, async (a) => {
    // Redirects are followed only to what the policy decided on: the same host, port and path (http
    // → https, a trailing slash, another query). One anywhere else (another host, another port — another
    // service —, another path, which a rule on paths may tell apart) is not followed here: the model is
    // told where the page moved, and fetching it is another call, decided on that URL.
    let url = a.url;
    let res = await get(url, {}, 'manual');
    for (let hop = 0; [301, 302, 303, 307, 308].includes(res.status) && res.headers.get('location'); hop++) {
      await res.body?.cancel();
      const from = new URL(res.url || url);
      let next: URL;
      try {
        next = new URL(res.headers.get('location')!, from);
      } catch {
        throw new ConnectorError('upstream_error', `web: ${from.host} answered a redirect to a location that is not a URL`);
      }
      if (!sameResource(from, next)) {
        const movedTo = next.href.slice(0, 2048);
        return { data: { url: from.href, status: res.status, movedTo, title: '', text: `The page moved to ${movedTo}. It was not fetched: to read it, fetch that URL (another host, decided on its own).` }, labels: ['untrusted'] };
      }
      if (hop >= 5) throw new ConnectorError('upstream_error', `web: more than 5 redirects from ${new URL(a.url).host}`);
      url = next.href;
      res = await get(url, {}, 'manual');
    }
    if (!res.ok) throw fromHttpStatus(svc, res.status, '');
    const type = res.headers.get('content-type') ?? '';
    if (!/^(text\/|application\/(json|xml|xhtml\+xml|rss\+xml|atom\+xml))/i.test(type)) {
      await res.body?.cancel();
      throw new ConnectorError('bad_arguments', `web: ${type || 'unknown content type'} is not text`);
    }
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > max) {
      await res.body?.cancel();
      throw new ConnectorError('result_too_large', `web: the page is ${declared} bytes, more than ${max}`, { limit: max });
    }
    const body = await readCapped(res, max, 'the page');
    const page = /html/i.test(type) ? htmlToText(body) : { title: '', text: body };
    return { data: { url: res.url || a.url, status: res.status, contentType: type, title: page.title, text: page.text }, labels: ['untrusted'] };
  });

  defineTool(server, svc, 'web.search', { description: 'Search the web.', inputSchema: { query: z.string().min(1).max(400), count: z.number().int().min(1).max(20).optional() }, readOnly: true }, async (a) => {
    if (!opts.searchUrl) throw new ConnectorError('bad_arguments', 'web: no search API is configured');
    const key = opts.getSearchCredential ? await bearer(opts.getSearchCredential, 'web search') : undefined;
    const res = await get(`${trimSlash(opts.searchUrl)}?${new URLSearchParams({ q: a.query, count: String(a.count ?? 10) })}`, key ? { 'x-subscription-token': key, accept: 'application/json' } : {});
    if (!res.ok) throw fromHttpStatus('web search', res.status, '');
    const body = JSON.parse(await readCapped(res, max, 'the search answer')) as { web?: { results?: { title?: string; url?: string; description?: string }[] } };
    const results = (body.web?.results ?? []).map((r) => ({ title: r.title ?? '', url: r.url ?? '', description: r.description ?? '' }));
    return { data: { results }, labels: ['untrusted'] };
  });
  return server;
}

export const webManifest: ConnectorManifest = {
  id: 'web',
  name: 'Web',
  vendor: 'Steward',
  runtime: { kind: 'builtin' },
  auth: { kind: 'api_key', header: 'X-Subscription-Token' },
  credentialScope: 'org',
  tools: [
    { name: 'web.fetch', description: FETCH, inputSchema: { type: 'object', properties: { url: { type: 'string' } }, required: ['url'] }, action: 'web.read', extract: { urls: ['/url'] }, readOnly: true },
    { name: 'web.search', description: 'Search the web.', inputSchema: { type: 'object', properties: { query: { type: 'string' }, count: { type: 'integer' } }, required: ['query'] }, action: 'web.read', readOnly: true },
  ],
};
