import { lookup as dnsLookup } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';

/**
 * Egress guard: outbound HTTP(S) from Steward (remote MCP servers, the web connector, SIEM and
 * webhook URLs) may only reach public addresses, unless an admin allowlisted the host.
 *
 * - `assertEgressAllowed(url, opts)` parses the URL, resolves the host and refuses when any
 *   resolved address is loopback, private, shared (CGNAT), link-local (cloud metadata),
 *   unique-local, multicast, unspecified, reserved or documentation space, including IPv6
 *   forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4).
 * - `guardedFetch(opts)` resolves once, checks, and connects to exactly the addresses it
 *   checked (the socket's `lookup` returns the pinned answer): a DNS answer that changes between
 *   the check and the connect (rebinding) is never used. Redirects are checked hop by hop.
 * - `guardedLookup(opts)` is a `lookup` for http/https agents or sockets of your own: it checks
 *   every resolved address at connect time. (IP-literal hosts never reach a `lookup`: check
 *   them with `assertEgressAllowed` first, as `guardedFetch` does.)
 *
 * There is no global switch: tests reach loopback fakes only by allowlisting their host.
 */

export type AddressKind =
  | 'public'
  | 'loopback'
  | 'private'
  | 'shared'
  | 'link-local'
  | 'unique-local'
  | 'multicast'
  | 'unspecified'
  | 'reserved'
  | 'documentation'
  | 'invalid';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses (injected in tests; default: the system resolver). */
export type EgressResolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface EgressOptions {
  /**
   * Hosts the operator allowed to reach even on non-public addresses: exact names or IP literals
   * ("siem.corp.internal", "10.0.0.5", "::1"), or "*.corp.internal" for any subdomain.
   */
  allowHosts?: readonly string[];
  /**
   * Hosts an org's admins allowed (same forms). They reach a non-public address only inside
   * `orgRanges`, the operator's ceiling: an org admin is not the operator, and the network the
   * API runs on (its database, its cache, other tenants' servers) is not theirs to open.
   */
  orgAllowHosts?: readonly string[];
  /** The ceiling for `orgAllowHosts`: addresses and CIDR ranges ("10.20.0.0/16", "fd12::/48"). None by default. */
  orgRanges?: readonly string[];
  resolver?: EgressResolver;
  /** Default ['http:', 'https:']. */
  protocols?: readonly string[];
}

export type EgressRefusalReason = 'bad_url' | 'protocol' | 'credentials_in_url' | 'address' | 'dns';

export class EgressRefusedError extends Error {
  readonly code = 'egress_refused';
  constructor(
    readonly reason: EgressRefusalReason,
    message: string,
    readonly host?: string,
    readonly address?: string,
  ) {
    super(message);
    this.name = 'EgressRefusedError';
  }
}

export const systemResolver: EgressResolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve(addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })));
    });
  });

// ---------------------------------------------------------------------------------------------
// Address classification

function parseIPv4(ip: string): number[] | null {
  if (isIP(ip) !== 4) return null;
  return ip.split('.').map(Number);
}

/** 8 16-bit groups, or null. Accepts an embedded dotted quad and a zone id (dropped). */
function parseIPv6(input: string): number[] | null {
  let ip = input;
  const zone = ip.indexOf('%');
  if (zone >= 0) ip = ip.slice(0, zone);
  if (isIP(ip) !== 6) return null;
  const lastColon = ip.lastIndexOf(':');
  const last = ip.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIPv4(last);
    if (!v4) return null;
    ip = `${ip.slice(0, lastColon + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const parse = (s: string) => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const double = ip.indexOf('::');
  if (double < 0) {
    const groups = parse(ip);
    return groups.length === 8 ? groups : null;
  }
  const a = parse(ip.slice(0, double));
  const b = parse(ip.slice(double + 2));
  const fill = 8 - a.length - b.length;
  if (fill < 1) return null;
  return [...a, ...new Array<number>(fill).fill(0), ...b];
}

function inV4(ip: number[], base: [number, number, number, number], bits: number): boolean {
  const n = ((ip[0] << 24) | (ip[1] << 16) | (ip[2] << 8) | ip[3]) >>> 0;
  const b = ((base[0] << 24) | (base[1] << 16) | (base[2] << 8) | base[3]) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (n & mask) === (b & mask);
}

function classifyV4(ip: number[]): AddressKind {
  if (inV4(ip, [0, 0, 0, 0], 8)) return 'unspecified';
  if (inV4(ip, [127, 0, 0, 0], 8)) return 'loopback';
  if (inV4(ip, [10, 0, 0, 0], 8) || inV4(ip, [172, 16, 0, 0], 12) || inV4(ip, [192, 168, 0, 0], 16)) return 'private';
  if (inV4(ip, [100, 64, 0, 0], 10)) return 'shared';
  if (inV4(ip, [169, 254, 0, 0], 16)) return 'link-local';
  if (inV4(ip, [224, 0, 0, 0], 4)) return 'multicast';
  if (inV4(ip, [192, 0, 2, 0], 24) || inV4(ip, [198, 51, 100, 0], 24) || inV4(ip, [203, 0, 113, 0], 24)) return 'documentation';
  if (inV4(ip, [192, 0, 0, 0], 24) || inV4(ip, [198, 18, 0, 0], 15) || inV4(ip, [240, 0, 0, 0], 4)) return 'reserved';
  return 'public';
}

function classifyV6(g: number[]): AddressKind {
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  const v4 = (hi: number, lo: number) => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
  if (zeroUpTo(8)) return 'unspecified';
  if (zeroUpTo(7) && g[7] === 1) return 'loopback';
  // IPv4-mapped ::ffff:a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d, IPv4-compatible ::a.b.c.d
  if (zeroUpTo(5) && g[5] === 0xffff) return classifyV4(v4(g[6], g[7]));
  if (zeroUpTo(4) && g[4] === 0xffff && g[5] === 0) return classifyV4(v4(g[6], g[7]));
  if (zeroUpTo(6)) return classifyV4(v4(g[6], g[7]));
  // NAT64 64:ff9b::/96 embeds a.b.c.d in its last 32 bits; the local-use 64:ff9b:1::/48 may put it
  // elsewhere (RFC 6052), so nothing there counts as public.
  if (g[0] === 0x64 && g[1] === 0xff9b) return g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0 ? classifyV4(v4(g[6], g[7])) : 'reserved';
  // 6to4 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD
  if (g[0] === 0x2002) {
    const inner = classifyV4(v4(g[1], g[2]));
    return inner === 'public' ? 'public' : inner;
  }
  if ((g[0] & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0] & 0xffc0) === 0xfec0) return 'private'; // deprecated site-local
  if ((g[0] & 0xfe00) === 0xfc00) return 'unique-local';
  if ((g[0] & 0xff00) === 0xff00) return 'multicast';
  if (g[0] === 0x2001 && g[1] === 0x0db8) return 'documentation';
  if (g[0] === 0x0100 && g[1] === 0 && g[2] === 0 && g[3] === 0) return 'reserved'; // discard-only
  if (g[0] === 0x2001 && g[1] === 0) return 'reserved'; // Teredo: tunnels to arbitrary IPv4
  return 'public';
}

/** What kind of address this is; anything that is not an IP literal is 'invalid'. */
export function classifyAddress(address: string): AddressKind {
  const raw = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const v4 = parseIPv4(raw);
  if (v4) return classifyV4(v4);
  const v6 = parseIPv6(raw);
  if (v6 && v6.length === 8) return classifyV6(v6);
  return 'invalid';
}

// ---------------------------------------------------------------------------------------------
// Checks

function normaliseHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

export function isHostAllowlisted(host: string, allowHosts: readonly string[] = []): boolean {
  const h = normaliseHost(host);
  return allowHosts.some((entry) => {
    const e = normaliseHost(entry.trim());
    if (!e) return false;
    if (e.startsWith('*.')) return h.endsWith(e.slice(1)) && h.length > e.length - 1;
    if (isIP(e) === 6 && isIP(h) === 6) {
      const a = parseIPv6(e);
      const b = parseIPv6(h);
      return !!a && !!b && a.every((x, i) => x === b[i]);
    }
    return h === e;
  });
}

const rangeLists = new Map<string, BlockList>();

/** A BlockList of "address" or "address/prefix" entries (entries already validated: see parseEgressRange). */
function rangesOf(ranges: readonly string[]): BlockList {
  const key = ranges.join(',');
  let list = rangeLists.get(key);
  if (!list) {
    list = new BlockList();
    for (const r of ranges) {
      const parsed = parseEgressRange(r);
      if (parsed) list.addSubnet(parsed.network, parsed.prefix, parsed.family);
    }
    if (rangeLists.size > 256) rangeLists.clear();
    rangeLists.set(key, list);
  }
  return list;
}

/** "10.0.0.0/8", "fd00::/8" or a single address → its parts, or null when it is neither. */
export function parseEgressRange(entry: string): { network: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [network = '', bits, extra] = entry.trim().split('/');
  if (extra !== undefined) return null;
  const kind = isIP(network);
  if (!kind) return null;
  const max = kind === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return null;
  return { network, prefix, family: kind === 4 ? 'ipv4' : 'ipv6' };
}

/** Whether `address` (also written inside an IPv6 one) lies in one of `ranges`. */
export function inEgressRanges(address: string, ranges: readonly string[] = []): boolean {
  if (!ranges.length) return false;
  const raw = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const list = rangesOf(ranges);
  const kind = isIP(raw);
  if (!kind) return false;
  if (kind === 4) return list.check(raw, 'ipv4');
  // An IPv6 address is in a range written in IPv6 (::1, fd12::/48, 64:ff9b::/96), or, when it
  // carries an IPv4 address (mapped, NAT64, 6to4), in a range written in IPv4 that holds that one.
  if (list.check(raw, 'ipv6')) return true;
  const v6 = parseIPv6(raw);
  const v4 = v6 ? embeddedV4(v6) : null;
  // (::1 and the rest of ::/104 are IPv6's own loopback and unspecified, not IPv4's 0.0.0.0/8.)
  return v4 !== null && !v4.startsWith('0.') && list.check(v4, 'ipv4');
}

/** Whether either allowlist (the operator's or the org's) names the host. */
export function isEgressAllowlisted(host: string, opts: EgressOptions = {}): boolean {
  return isHostAllowlisted(host, opts.allowHosts) || isHostAllowlisted(host, opts.orgAllowHosts);
}

/** The egress rules for one org: the operator's allowlist, the org's, and the operator's ceiling on the org's. */
export function orgEgressOptions(
  config: { STEWARD_EGRESS_ALLOW_HOSTS: readonly string[]; STEWARD_EGRESS_ORG_RANGES: readonly string[] },
  orgHosts: readonly string[],
  extra: Pick<EgressOptions, 'resolver'> = {},
): EgressOptions {
  return { allowHosts: config.STEWARD_EGRESS_ALLOW_HOSTS, orgAllowHosts: orgHosts, orgRanges: config.STEWARD_EGRESS_ORG_RANGES, ...extra };
}

/** A host only the org's allowlist names: its non-public addresses pass only inside the operator's ranges. */
function refuseOutsideOrgRanges(host: string, address: string, ranges: readonly string[] | undefined): EgressRefusedError | null {
  const kind = classifyAddress(address);
  if (kind === 'public' || inEgressRanges(address, ranges)) return null;
  return new EgressRefusedError(
    'address',
    `egress refused: ${host} resolves to ${address}, a ${kind} address outside the ranges the operator lets an org's allowlist open (STEWARD_EGRESS_ORG_RANGES)`,
    host,
    address,
  );
}

function refuseAddress(host: string, address: string): EgressRefusedError | null {
  const kind = classifyAddress(address);
  if (kind === 'public') return null;
  return new EgressRefusedError(
    'address',
    kind === 'invalid'
      ? `egress refused: ${host} resolved to "${address}", which is not an IP address`
      : `egress refused: ${host} resolves to ${address}, a ${kind} address (allowlist the host to reach it)`,
    host,
    address,
  );
}

/**
 * Addresses no allowlist opens: link-local (169.254.0.0/16, fe80::/10: where clouds serve instance
 * metadata and credentials) and the metadata services clouds put elsewhere (AWS's fd00:ec2::254,
 * Alibaba's 100.100.100.200, Azure's WireServer 168.63.129.16), however the address is written. An org's allowlist serves connectors and notifications on private
 * networks; nothing Steward calls needs these, and what answers there can hand out the host's keys.
 */
const METADATA_V6 = [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254];
/** Alibaba's metadata service, and Azure's WireServer (the VM agent's channel to the host). */
const METADATA_V4 = ['100.100.100.200', '168.63.129.16'];

/** The IPv4 address an IPv6 one carries (mapped, translated, compatible, NAT64 /96, 6to4), or null. */
function embeddedV4(g: number[]): string | null {
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  if ((zeroUpTo(5) && g[5] === 0xffff) || (zeroUpTo(4) && g[4] === 0xffff && g[5] === 0) || zeroUpTo(6)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return null;
}

function refuseAlways(host: string, address: string): EgressRefusedError | null {
  const raw = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const v6 = isIP(raw) === 6 ? parseIPv6(raw) : null;
  // (Written as an IPv4 address or carried inside an IPv6 one: a dual-stack socket reaches it either way.)
  const asV4 = v6 ? embeddedV4(v6) : raw;
  const metadata = (asV4 !== null && METADATA_V4.includes(asV4)) || (!!v6 && v6.every((x, i) => x === METADATA_V6[i]));
  if (!metadata && classifyAddress(address) !== 'link-local') return null;
  return new EgressRefusedError('address', `egress refused: ${host} resolves to ${address}, a link-local or cloud metadata address, which no allowlist opens`, host, address);
}

export interface EgressCheck {
  url: URL;
  /** Host name without brackets, lower case. */
  host: string;
  /** The checked addresses to connect to (empty only when the host is allowlisted by name and was not resolved). */
  addresses: ResolvedAddress[];
  allowlisted: boolean;
}

export function parseEgressUrl(input: string | URL, opts: EgressOptions = {}): URL {
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : new URL(input.href);
  } catch {
    throw new EgressRefusedError('bad_url', `egress refused: "${String(input).slice(0, 200)}" is not a valid URL`);
  }
  const protocols = opts.protocols ?? ['http:', 'https:'];
  if (!protocols.includes(url.protocol)) {
    throw new EgressRefusedError('protocol', `egress refused: protocol ${url.protocol} is not allowed (only ${protocols.join(', ')})`);
  }
  if (url.username || url.password) {
    throw new EgressRefusedError('credentials_in_url', 'egress refused: URLs may not carry credentials (user:password@)');
  }
  if (!url.hostname) throw new EgressRefusedError('bad_url', 'egress refused: the URL has no host');
  return url;
}

/** Resolves `host` and checks every address (refuses when any is not public, unless allowlisted). */
export async function checkHost(host: string, opts: EgressOptions = {}): Promise<Omit<EgressCheck, 'url'>> {
  const h = normaliseHost(host);
  const byOperator = isHostAllowlisted(h, opts.allowHosts);
  const byOrg = !byOperator && isHostAllowlisted(h, opts.orgAllowHosts);
  const allowlisted = byOperator || byOrg;
  const refuse = (address: string) =>
    refuseAlways(h, address) ?? (byOperator ? null : byOrg ? refuseOutsideOrgRanges(h, address, opts.orgRanges) : refuseAddress(h, address));
  const literal = isIP(h);
  if (literal) {
    const refusal = refuse(h);
    if (refusal) throw refusal;
    return { host: h, addresses: [{ address: h, family: literal === 6 ? 6 : 4 }], allowlisted };
  }
  const resolver = opts.resolver ?? systemResolver;
  let addresses: ResolvedAddress[];
  try {
    addresses = await resolver(h);
  } catch (err) {
    throw new EgressRefusedError('dns', `egress refused: ${h} could not be resolved (${(err as Error).message})`, h);
  }
  if (!addresses.length) throw new EgressRefusedError('dns', `egress refused: ${h} has no addresses`, h);
  for (const a of addresses) {
    const refusal = refuse(a.address);
    if (refusal) throw refusal;
  }
  return { host: h, addresses, allowlisted };
}

/** Parses, resolves and checks a URL; throws EgressRefusedError with the reason. */
export async function assertEgressAllowed(input: string | URL, opts: EgressOptions = {}): Promise<EgressCheck> {
  const url = parseEgressUrl(input, opts);
  return { url, ...(await checkHost(url.hostname, opts)) };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | ResolvedAddress[], family?: number) => void;

function answer(addresses: ResolvedAddress[], options: { all?: boolean; family?: number | string }, callback: LookupCallback): void {
  const wanted = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
  const list = wanted ? addresses.filter((a) => a.family === wanted) : addresses;
  if (!list.length) {
    const err: NodeJS.ErrnoException = new Error('no address of the requested family');
    err.code = 'ENOTFOUND';
    callback(err, '', 0);
    return;
  }
  if (options.all) callback(null, list);
  else callback(null, list[0].address, list[0].family);
}

/**
 * A `lookup` for http/https agents and sockets: resolves and checks every address at connect
 * time (an answer that rebinds to a private address between two connects is refused).
 */
export function guardedLookup(opts: EgressOptions = {}): LookupFunction {
  const fn = (hostname: string, options: unknown, callback: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const o = (typeof options === 'object' && options ? options : typeof options === 'number' ? { family: options } : {}) as {
      all?: boolean;
      family?: number;
    };
    checkHost(hostname, opts).then(
      (checked) => answer(checked.addresses, o, cb),
      (err: Error) => cb(err as NodeJS.ErrnoException, '', 0),
    );
  };
  return fn as unknown as LookupFunction;
}

/** A lookup that answers only with addresses already checked (pins the connection to them). */
function pinnedLookup(checked: ResolvedAddress[]): LookupFunction {
  const fn = (_hostname: string, options: unknown, callback: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const o = (typeof options === 'object' && options ? options : {}) as { all?: boolean; family?: number };
    process.nextTick(() => answer(checked, o, cb));
  };
  return fn as unknown as LookupFunction;
}

/** http/https agents whose connections go only to checked addresses (see guardedLookup). */
export function createGuardedAgents(opts: EgressOptions = {}, agentOptions: http.AgentOptions = {}): { http: http.Agent; https: https.Agent } {
  const lookup = guardedLookup(opts);
  return { http: new http.Agent({ ...agentOptions, lookup }), https: new https.Agent({ ...agentOptions, lookup }) };
}

// ---------------------------------------------------------------------------------------------
// Guarded fetch

export interface GuardedFetchOptions extends EgressOptions {
  /** Redirects followed (each hop checked again); default 5. `redirect: 'manual'` returns them. */
  maxRedirects?: number;
  /** Per-request time limit (connect + headers), ms; default 30 s. */
  timeoutMs?: number;
  /** Called for every hop's URL before it is resolved and requested (e.g. a host allowlist of the caller). */
  beforeRequest?: (url: URL) => void | Promise<void>;
  /**
   * Keep connections open between requests (for a client that calls the same server again and
   * again, such as a remote MCP connector): each connection is reused only for requests whose host
   * resolved to the same checked addresses (a new answer gets connections of its own), and closes
   * after `idleMs` unused (default 4 s, below common servers' keep-alive timeouts) or on `close()`.
   * Default: a new connection per request.
   */
  keepAlive?: boolean | { idleMs?: number };
  /** The largest JSON answer (read whole, not streamed); larger fails the fetch with code ETOOBIG. Default 64 MiB. */
  maxJsonBytes?: number;
}

export type GuardedFetch = ((input: string | URL | Request, init?: RequestInit) => Promise<Response>) & {
  /** Closes the connections kept open (keepAlive); requests in flight finish first. */
  close(): void;
};

async function bodyBytes(body: RequestInit['body']): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return Buffer.from(await new Response(body as ConstructorParameters<typeof Response>[0]).arrayBuffer());
}

/**
 * A fetch that only reaches checked addresses and connects to the very addresses it checked.
 * Works with anything that takes a fetch (the MCP SDK's transports, small REST clients).
 */
/** Headers kept on a redirect to another origin (none of them a credential). */
const REDIRECT_SAFE_HEADERS = new Set(['accept', 'accept-encoding', 'accept-language', 'user-agent', 'content-type', 'content-length', 'cache-control', 'if-none-match', 'if-modified-since']);

export function guardedFetch(opts: GuardedFetchOptions = {}): GuardedFetch {
  const maxRedirects = opts.maxRedirects ?? 5;
  const idleMs = typeof opts.keepAlive === 'object' ? (opts.keepAlive.idleMs ?? 4000) : 4000;
  // keepAlive: one agent per (scheme, host, port, checked addresses), its lookup pinned to those addresses.
  const agents = new Map<string, http.Agent>();
  const agentFor = (checked: EgressCheck): http.Agent | false => {
    if (!opts.keepAlive) return false;
    const key = `${checked.url.protocol}//${checked.host}:${checked.url.port}|${checked.addresses.map((a) => a.address).join(',')}`;
    let agent = agents.get(key);
    if (!agent) {
      // Bounded: an agent dropped here keeps serving its requests in flight; its idle connections close on their timeout.
      if (agents.size >= 16) agents.delete(agents.keys().next().value!);
      const options = { keepAlive: true, timeout: idleMs, lookup: pinnedLookup(checked.addresses) };
      agent = checked.url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
      agents.set(key, agent);
    }
    return agent;
  };
  const fetchFn = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    let url = input instanceof Request ? input.url : String(input);
    let method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init.headers).forEach((v, k) => headers.set(k, v));
    let body = await bodyBytes(init.body ?? (input instanceof Request && input.body ? await input.arrayBuffer() : undefined));
    const signal = init.signal ?? undefined;
    for (let hop = 0; ; hop++) {
      const parsed = parseEgressUrl(url, opts);
      if (opts.beforeRequest) await opts.beforeRequest(parsed);
      const checked: EgressCheck = { url: parsed, ...(await checkHost(parsed.hostname, opts)) };
      const res = await requestOnce(checked, method, headers, body, signal, opts.timeoutMs ?? 30_000, agentFor(checked), opts.maxJsonBytes ?? BUFFERED_MAX);
      const location = res.headers.get('location');
      if (init.redirect === 'manual' || ![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
      if (init.redirect === 'error') throw new TypeError(`redirect to ${location} refused (redirect: "error")`);
      if (hop >= maxRedirects) throw new EgressRefusedError('bad_url', `egress refused: more than ${maxRedirects} redirects`);
      await res.body?.cancel();
      const next = new URL(location, checked.url);
      if (next.origin !== checked.url.origin) {
        // To another origin only what describes the request goes along: every other header may be a
        // credential (an API's own "x-subscription-token", "x-api-key" …), not only authorization and cookies.
        for (const name of [...headers.keys()]) if (!REDIRECT_SAFE_HEADERS.has(name.toLowerCase())) headers.delete(name);
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
        headers.delete('content-type');
        headers.delete('content-length');
      }
      url = next.href;
    }
  };
  return Object.assign(fetchFn, {
    close(): void {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
    },
  });
}

/** A JSON media type (application/json, application/problem+json, ...). */
export const JSON_TYPE = /^\s*application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
/** The largest JSON answer read whole (larger ones fail, as a body past any sane limit). */
const BUFFERED_MAX = 64 * 1024 * 1024;

function requestOnce(
  checked: EgressCheck,
  method: string,
  headers: Headers,
  body: Buffer | undefined,
  signal: AbortSignal | undefined,
  timeoutMs: number,
  agent: http.Agent | false,
  maxJsonBytes: number,
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new Error('aborted'));
      return;
    }
    const { url } = checked;
    const mod = url.protocol === 'https:' ? https : http;
    const outHeaders: Record<string, string> = {};
    headers.forEach((v, k) => (outHeaders[k] = v));
    if (body) outHeaders['content-length'] = String(body.length);
    const req = mod.request(
      {
        protocol: url.protocol,
        hostname: checked.host,
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method,
        headers: outHeaders,
        // Connect to the checked addresses only: the name is never resolved again (a kept-alive
        // agent's lookup is pinned to the same addresses, and it is used for those alone).
        lookup: pinnedLookup(checked.addresses),
        servername: isIP(checked.host) ? undefined : checked.host,
        agent,
        signal,
      },
      (res) => {
        const resHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) v.forEach((x) => resHeaders.append(k, x));
          else if (v !== undefined) resHeaders.set(k, v);
        }
        const status = res.statusCode ?? 502;
        const nullBody = method === 'HEAD' || status === 204 || status === 304;
        const answer = (body: ReadableStream<Uint8Array> | Buffer | null) => {
          const response = new Response(body, { status, statusText: res.statusMessage, headers: resHeaders });
          Object.defineProperty(response, 'url', { value: url.href });
          resolve(response);
        };
        if (nullBody) {
          clearTimeout(timer);
          res.resume();
          answer(null);
        } else if (JSON_TYPE.test(String(res.headers['content-type'] ?? ''))) {
          // A JSON answer is read whole by its reader anyway: read here (within the time limit, at
          // most maxJsonBytes), without a web stream around the socket.
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > maxJsonBytes) req.destroy(Object.assign(new Error(`the answer from ${url.host} is larger than ${maxJsonBytes} bytes`), { code: 'ETOOBIG' }));
            else chunks.push(c);
          });
          res.on('end', () => {
            clearTimeout(timer);
            if (size <= maxJsonBytes) answer(Buffer.concat(chunks, size));
          });
          res.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
          });
        } else {
          clearTimeout(timer);
          answer(Readable.toWeb(res) as ReadableStream<Uint8Array>);
        }
      },
    );
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no response from ${url.host} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
