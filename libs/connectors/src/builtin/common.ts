import { isInternal, domainOf } from '@steward/policy';
import { ConnectorError, fromHttpStatus, networkCode } from '../errors';

/** A credential handed in by the caller (the vault stays outside this library). */
export type Credential = { accessToken: string } | { apiKey: string };
export type GetCredential = () => Promise<Credential>;

export interface SaasOptions {
  /** Base URL of the API (default: the vendor's); tests point it at a loopback fake. */
  baseUrl?: string;
  getCredential: GetCredential;
  /** A fetch to use (default: global fetch); e.g. a guardedFetch for configurable hosts. */
  fetch?: typeof fetch;
}

export async function bearer(get: GetCredential, service: string): Promise<string> {
  let cred: Credential;
  try {
    cred = await get();
  } catch (err) {
    throw new ConnectorError('auth_required', `${service}: no usable credential (${(err as Error).message}); authorise the connector`, {}, { cause: err });
  }
  const token = 'accessToken' in cred ? cred.accessToken : cred.apiKey;
  if (!token) throw new ConnectorError('auth_required', `${service}: no credential; authorise the connector`);
  return token;
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** JSON over HTTP with statuses mapped to typed errors. */
export async function restJson<T>(service: string, f: typeof fetch, url: string, init: RequestInit & { token: string }): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${init.token}`);
  headers.set('accept', 'application/json');
  if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
  let res: Response;
  try {
    res = await f(url, { ...init, headers, signal: init.signal ?? AbortSignal.timeout(30_000) });
  } catch (err) {
    throw wrapNetwork(service, err);
  }
  const text = await res.text();
  if (!res.ok) throw fromHttpStatus(service, res.status, text);
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ConnectorError('upstream_error', `${service}: the answer is not JSON`, { status: res.status });
  }
}

export function wrapNetwork(service: string, err: unknown): ConnectorError {
  if (err instanceof ConnectorError) return err;
  const net = networkCode(err);
  const name = (err as Error)?.name;
  const timedOut = net === 'ETIMEDOUT' || name === 'TimeoutError' || name === 'AbortError' || (err as { code?: unknown })?.code === 'ABORT_ERR';
  const code = timedOut ? 'timeout' : net;
  if ((err as { code?: unknown })?.code === 'egress_refused') return new ConnectorError('egress_refused', `${service}: ${(err as Error).message}`);
  if (code === 'timeout') return new ConnectorError('timeout', `${service}: no answer in time`);
  return new ConnectorError('upstream_unreachable', `${service}: cannot reach the service (${code ?? (err as Error)?.message ?? String(err)})`, code ? { network: code } : {}, { cause: err });
}

/** Maps an SDK error carrying an HTTP response (gaxios, Slack) to a typed error. */
export function fromSdkError(service: string, err: unknown): ConnectorError {
  if (err instanceof ConnectorError) return err;
  const e = err as { response?: { status?: number; data?: unknown }; status?: number; message?: string };
  const status = e?.response?.status ?? (typeof e?.status === 'number' ? e.status : undefined);
  if (status) return fromHttpStatus(service, status, typeof e.response?.data === 'string' ? e.response.data : JSON.stringify(e.response?.data ?? e.message ?? ''));
  return wrapNetwork(service, err);
}

/** "external" when any address is outside the org's domains. */
export function externalLabel(addresses: string[], orgDomains: string[]): string[] {
  const domains = addresses.map((a) => domainOf(a)).filter(Boolean);
  return domains.some((d) => !isInternal(d, orgDomains)) ? ['external'] : [];
}

/**
 * "external" for mail unless every message's sender is an address inside the org's domains: fail
 * closed, so that a sender that cannot be read (no From, a name without an address, an address the
 * parser does not take) counts as outside mail, not as the org's own.
 */
export function senderLabel(froms: (string | null | undefined)[], orgDomains: string[], parse: (header: string) => string[], authResults?: (string | null | undefined)[]): string[] {
  for (const [i, from] of froms.entries()) {
    const domains = from ? parse(from).map((a) => domainOf(a)) : [];
    if (!domains.length || domains.some((d) => !d || !isInternal(d, orgDomains))) return ['external'];
    // An internal From the receiving server does not vouch for (spoofed from outside) is outside mail.
    if (authResults && domains.some((d) => !senderVouched(d, authResults[i]))) return ['external'];
  }
  return [];
}

/**
 * Whether the receiving mail server vouches for a message's From domain, by its verdict: the topmost
 * Authentication-Results header (the receiving server adds its own above whatever the sender wrote).
 * It vouches with `dmarc=pass` for that domain, or a `dkim=pass` signature of that domain (or a
 * parent of it). SPF alone checks the envelope sender, not the From, and does not vouch. A message
 * with no verdict at all never came in from outside through that server (mail inside the org's own
 * mail system): its From stands. Anything else — a verdict that fails, or that names another
 * domain — does not vouch: a forged internal sender is outside mail.
 */
export function senderVouched(fromDomain: string, authResults: string | null | undefined): boolean {
  if (authResults === null || authResults === undefined) return true;
  const domain = fromDomain.toLowerCase();
  const covers = (d: string | undefined) => {
    const x = (d ?? '').toLowerCase().replace(/^@/, '').replace(/^.*@/, '').replace(/\.$/, '');
    return x !== '' && (domain === x || domain.endsWith(`.${x}`));
  };
  // "authserv-id; method=result (comment) prop=value ...; ..." (RFC 8601); comments dropped.
  const results = authResults.replace(/\([^()]*\)/g, ' ').split(';').slice(1);
  for (const r of results) {
    const m = /^\s*(dmarc|dkim)\s*=\s*(\w+)/i.exec(r);
    if (!m || m[2]!.toLowerCase() !== 'pass') continue;
    const props = Object.fromEntries([...r.matchAll(/([\w.-]+)\s*=\s*("[^"]*"|[^\s;]+)/g)].map((p) => [p[1]!.toLowerCase(), p[2]!.replace(/^"|"$/g, '')]));
    if (m[1]!.toLowerCase() === 'dmarc' && (props['header.from'] === undefined ? true : covers(props['header.from']))) return true;
    if (m[1]!.toLowerCase() === 'dkim' && (covers(props['header.d']) || covers(props['header.i']))) return true;
  }
  return false;
}

export function noCrLf(value: string, field: string): string {
  if (/[\r\n]/.test(value)) throw new ConnectorError('bad_arguments', `${field} may not contain line breaks`);
  return value;
}
