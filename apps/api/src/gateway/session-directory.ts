import { createHmac, timingSafeEqual } from 'node:crypto';
import { Agent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';

/**
 * Where each MCP session lives when the API runs as several processes behind a load balancer
 * (GATEWAY_ADVERTISE_URL set). A session is state in the process that opened it: the SDK server
 * with what the client declared, the upstream connections and their sessions, the streams in
 * progress and their event log. Rather than asking the load balancer for affinity on
 * `Mcp-Session-Id`, every process records its sessions in Redis (`<prefix>:mcp:session:<id>` →
 * its URL, org and user, signed), and a process that gets a request of a session it does not hold
 * passes the request on to the one that does, streams included.
 *
 * - Entries are signed with a key derived from STEWARD_TOKEN_PEPPER (which every process has and
 *   Redis never sees), so a value written into Redis by anyone else cannot send requests, and the
 *   Bearer tokens they carry, to an address of its choosing.
 * - A passed-on request carries a signed, short-lived marker: the process that holds the session
 *   does not count it again against the per-address and per-token limits (the first process
 *   counted it, with the client's real address), and never passes it on a second time.
 * - A session whose process is gone (unreachable) is forgotten, and the client is answered 404,
 *   on which an MCP client starts a new session (as after any restart).
 * - The sessions of a user are a sorted set by expiry, so the per-user limit holds across processes.
 */
export interface SessionHome {
  url: string;
  orgId: string;
  userId: string;
}

/** The header a passed-on request carries: `<unix ms>.<signature>`. */
export const FORWARD_HEADER = 'x-steward-mcp-forwarded';
const MARKER_MAX_AGE_MS = 30_000;
/** Headers that belong to one hop (RFC 9110 §7.6.1) and are never passed on. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', FORWARD_HEADER]);

export class SessionDirectory {
  private readonly key: Buffer;
  private readonly touched = new Map<string, number>();
  private readonly probes = new Map<string, { ok: Promise<boolean>; until: number }>();
  // No cap on sockets: each forwarded SSE stream holds one for as long as it is open, and a request
  // queued behind them would wait for a stream to end.
  private readonly agent = new Agent({ keepAlive: true, maxFreeSockets: 64 });

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** This process's URL (GATEWAY_ADVERTISE_URL); null: the directory is off. */
    readonly self: string | null,
    pepper: string,
    /** How long an unused session lives (GATEWAY_SESSION_IDLE_SECONDS). */
    private readonly idleSeconds: number,
  ) {
    this.key = createHmac('sha256', pepper).update('steward/mcp-session-directory/v1').digest();
  }

  get enabled(): boolean {
    return this.self !== null;
  }

  private sessionKey = (sid: string) => `${this.prefix}:mcp:session:${sid}`;
  private userKey = (orgId: string, userId: string) => `${this.prefix}:mcp:user:${orgId}:${userId}`;
  private sign = (...parts: string[]) => createHmac('sha256', this.key).update(parts.join('\n')).digest('base64url');

  /** Records a session this process opened (before its id reaches the client). */
  async publish(sid: string, orgId: string, userId: string): Promise<void> {
    if (!this.self) return;
    await this.record(sid, orgId, userId);
    this.touched.set(sid, Date.now());
  }

  private async record(sid: string, orgId: string, userId: string): Promise<void> {
    const value = JSON.stringify({ url: this.self, orgId, userId, sig: this.sign(sid, this.self!, orgId, userId) });
    const ttl = this.idleSeconds + 60;
    await this.redis
      .multi()
      .set(this.sessionKey(sid), value, 'EX', ttl)
      .zadd(this.userKey(orgId, userId), Date.now() + ttl * 1000, sid)
      .expire(this.userKey(orgId, userId), ttl)
      .exec();
  }

  /**
   * A session of this process was used: its entry lives on, written again at most every quarter of
   * the idle time (so that it comes back should Redis have lost it).
   */
  touch(sid: string, orgId: string, userId: string): void {
    if (!this.self) return;
    const last = this.touched.get(sid) ?? 0;
    if (Date.now() - last < (this.idleSeconds * 1000) / 4) return;
    this.touched.set(sid, Date.now());
    void this.record(sid, orgId, userId).catch(() => this.touched.delete(sid));
  }

  /** A session ended (closed, idle or its process stopping): other processes answer 404 for it from now on. */
  async remove(sid: string, orgId: string, userId: string, url = this.self): Promise<void> {
    this.touched.delete(sid);
    if (!this.self || !url) return;
    // Only the entry that still names that process (an id is never reused, but stay exact).
    const current = await this.lookup(sid);
    const m = this.redis.multi().zrem(this.userKey(orgId, userId), sid);
    if (current?.url === url) m.del(this.sessionKey(sid));
    await m.exec();
  }

  /** Where a session lives; null when unknown, expired or its entry is not signed by a process of this deployment. */
  async lookup(sid: string): Promise<SessionHome | null> {
    if (!this.self || !/^[0-9a-f-]{36}$/.test(sid)) return null;
    const raw = await this.redis.get(this.sessionKey(sid));
    if (!raw) return null;
    try {
      const v = JSON.parse(raw) as { url?: unknown; orgId?: unknown; userId?: unknown; sig?: unknown };
      if (typeof v.url !== 'string' || typeof v.orgId !== 'string' || typeof v.userId !== 'string' || typeof v.sig !== 'string') return null;
      if (!same(v.sig, this.sign(sid, v.url, v.orgId, v.userId))) return null;
      return { url: v.url, orgId: v.orgId, userId: v.userId };
    } catch {
      return null;
    }
  }

  /**
   * Open sessions of a user, across processes. Entries whose session is gone are dropped first: no
   * directory entry any more, an entry naming this process for a session it does not hold, or one
   * naming a process that no longer accepts connections.
   */
  async countFor(orgId: string, userId: string, heldHere: (sid: string) => boolean): Promise<number> {
    const key = this.userKey(orgId, userId);
    await this.redis.zremrangebyscore(key, '-inf', Date.now());
    const sids = await this.redis.zrange(key, '0', '-1');
    let open = 0;
    for (const sid of sids) {
      const home = await this.lookup(sid);
      const gone = !home || (home.url === this.self ? !heldHere(sid) : !(await this.reachable(home.url)));
      if (gone) await this.remove(sid, orgId, userId, home?.url ?? this.self);
      else open++;
    }
    return open;
  }

  /** Whether a process accepts connections at its URL (a TCP connect, answered for 5 s). */
  private reachable(url: string): Promise<boolean> {
    const hit = this.probes.get(url);
    if (hit && hit.until > Date.now()) return hit.ok;
    const { hostname, port, protocol } = new URL(url);
    const ok = new Promise<boolean>((resolve) => {
      const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || (protocol === 'https:' ? 443 : 80)) });
      const done = (r: boolean) => {
        socket.destroy();
        resolve(r);
      };
      socket.setTimeout(1000, () => done(false));
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    });
    if (this.probes.size > 256) this.probes.clear();
    this.probes.set(url, { ok, until: Date.now() + 5000 });
    return ok;
  }

  /**
   * At start: every entry naming this process for a session it does not hold is left from before
   * (a restart at the same address, as a container restarted in its pod has): forgotten.
   */
  async forgetOwn(heldHere: (sid: string) => boolean): Promise<number> {
    if (!this.self) return 0;
    let cursor = '0';
    let forgotten = 0;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', this.sessionKey('*'), 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const sid = key.slice(this.sessionKey('').length);
        const home = await this.lookup(sid);
        if (home?.url !== this.self || heldHere(sid)) continue;
        await this.remove(sid, home.orgId, home.userId);
        forgotten++;
      }
    } while (cursor !== '0');
    return forgotten;
  }

  /** The marker of a request passed on for a session. */
  marker(sid: string, method: string, now = Date.now()): string {
    return `${now}.${this.sign('forward', String(now), sid, method)}`;
  }

  /** Whether a request was passed on by a process of this deployment (recently, for this session and method). */
  isForwarded(req: Request): boolean {
    const header = req.headers[FORWARD_HEADER];
    const sid = req.headers['mcp-session-id'];
    if (!this.self || typeof header !== 'string' || typeof sid !== 'string') return false;
    const [at, sig] = header.split('.', 2);
    const t = Number(at);
    if (!sig || !Number.isSafeInteger(t) || Math.abs(Date.now() - t) > MARKER_MAX_AGE_MS) return false;
    return same(sig, this.sign('forward', String(t), sid, req.method));
  }

  /**
   * Passes a request on to the process holding its session and streams the answer back (an SSE
   * stream stays open as long as the client's). 'unreachable': that process could not be reached
   * (nothing was sent); 'lost': it was reached but stopped answering before its answer began (the
   * request may have been acted on); in both the caller answers. 'sent' otherwise.
   */
  forward(home: SessionHome, req: Request, res: Response, sid: string): Promise<'sent' | 'unreachable' | 'lost'> {
    // The holder's own origin, always, with the request's path and query: never a host the request
    // names (a request line in absolute form, `POST http://elsewhere/mcp`, would otherwise choose it).
    const holder = new URL(home.url);
    const asked = new URL(req.originalUrl, 'http://request.invalid');
    const target = new URL(holder.origin);
    target.pathname = asked.pathname;
    target.search = asked.search;
    const headers: IncomingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && v !== undefined) headers[k] = v;
    // The body as the JSON parser read it (the raw stream was consumed): the same message, re-serialised.
    const body = req.body !== undefined && req.method === 'POST' ? Buffer.from(JSON.stringify(req.body)) : null;
    if (body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(body.length);
    }
    headers[FORWARD_HEADER] = this.marker(sid, req.method);
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: 'sent' | 'unreachable' | 'lost') => {
        if (!settled) {
          settled = true;
          resolve(r);
        }
      };
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const out = send(target, { method: req.method, headers, ...(target.protocol === 'http:' ? { agent: this.agent } : {}) }, (answer) => {
        const copied: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(answer.headers)) if (!HOP.has(k) && v !== undefined) copied[k] = v;
        res.writeHead(answer.statusCode ?? 502, copied);
        res.flushHeaders();
        answer.pipe(res);
        answer.on('error', () => res.destroy());
        done('sent');
      });
      // A process that does not accept the connection within 5 s of being asked is taken for gone.
      let connectTimer: NodeJS.Timeout | undefined;
      out.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => out.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), 5000);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      out.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(connectTimer);
        if (settled) {
          res.destroy();
          return;
        }
        if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN'].includes(err.code ?? '')) return done('unreachable');
        // Reached, then lost: the request may have been acted on; the client is told so (502), not 404.
        done('lost');
      });
      // The client went away: so does the request passed on (an SSE stream ends on both sides).
      res.on('close', () => {
        if (!res.writableFinished) out.destroy();
      });
      out.end(body ?? undefined);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
