import type { DataSource } from 'typeorm';
import { assertEgressAllowed, classifyAddress, EgressRefusedError, type EgressResolver, guardedFetch, isHostAllowlisted, newId } from '@steward/common';
import { inOrg } from '@steward/db';
import { gcmOpen, gcmSeal, type KeyProvider, newDataKey } from '@steward/vault';
import { toEcs } from './ecs';
import { exportRange, type ExportLine } from './export';
import { cursorPages } from './pages';
import { DROPPED_CTE, PURGED_SQL } from './retention';
import { AuditKeyring } from './keyring';
import { recordEvent } from './record';

/**
 * SIEM push: sealed audit entries sent in batches to an HTTP endpoint in Splunk HEC
 * format, with retries and exponential backoff; a batch that keeps failing goes to a
 * dead-letter table and the sink moves past it (one poison batch never blocks the org).
 * Delivery is at least once: a SIEM may see a batch again after a crash mid-way.
 */


const tokenAad = (orgId: string, sinkId: string) => `audit-siem-sink|${orgId}|${sinkId}`;

/** Seals a HEC token for storage: AES-256-GCM under a fresh data key wrapped by the KEK, bound to the org and the sink. */
export async function sealSinkToken(keys: KeyProvider, orgId: string, sinkId: string, token: string): Promise<{ tokenSealed: Buffer; tokenWrappedKey: string }> {
  const dataKey = newDataKey();
  try {
    const aad = tokenAad(orgId, sinkId);
    return { tokenSealed: gcmSeal(dataKey, Buffer.from(token, 'utf8'), aad), tokenWrappedKey: await keys.wrap(dataKey, aad) };
  } finally {
    dataKey.fill(0);
  }
}

export async function openSinkToken(keys: KeyProvider, orgId: string, sinkId: string, sealed: Buffer, wrappedKey: string): Promise<string> {
  const aad = tokenAad(orgId, sinkId);
  const dataKey = await keys.unwrap(wrappedKey, aad);
  try {
    return gcmOpen(dataKey, sealed, aad).toString('utf8');
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Where a sink may point (checked without DNS, when a sink is saved and before every push):
 * https:// to a public host. A host on a non-public address (IP literal, localhost, *.internal,
 * *.local) — a local forwarder, a SIEM inside the network — only when the operator allowlisted it
 * (STEWARD_EGRESS_ALLOW_HOSTS), and then http:// too. Returns the normalized base URL (no
 * trailing slash), or throws with the reason. DNS answers are checked by checkSinkUrl and, at
 * every push, by the guarded fetch that connects only to the addresses it checked.
 */
export function validateSinkUrl(raw: string, allowHosts: readonly string[] = []): string {
  const u = sinkUrlSyntax(raw);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const allowed = isHostAllowlisted(host, allowHosts);
  if (u.protocol === 'http:' && !allowed) throw new Error('url must be https:// (http:// only for a host the operator allowlisted)');
  if (!allowed) {
    const kind = classifyAddress(host);
    if ((kind !== 'invalid' && kind !== 'public') || /(^|\.)localhost$/i.test(host) || /\.(internal|local)$/i.test(host)) {
      throw new Error('url must not point to a private or special address (unless the operator allowlisted the host)');
    }
  }
  return u.toString().replace(/\/+$/, '');
}

/** The URL's shape only: parses, http(s), no credentials, query or fragment. */
export function sinkUrlSyntax(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error('url is not a valid URL');
  }
  if (u.username || u.password) throw new Error('url must not carry credentials');
  if (u.search || u.hash) throw new Error('url must not have a query or fragment');
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('url must be https://');
  return u;
}

/**
 * validateSinkUrl, then the host's DNS answers: refused when one is private or special (unless
 * allowlisted). A name that does not resolve from here is accepted (every push checks again).
 */
export async function checkSinkUrl(raw: string, options: { allowHosts?: readonly string[]; resolver?: EgressResolver } = {}): Promise<string> {
  const url = validateSinkUrl(raw, options.allowHosts);
  try {
    await assertEgressAllowed(url, options);
  } catch (err) {
    if (err instanceof EgressRefusedError && err.reason === 'dns') return url;
    throw new Error(`url ${(err as Error).message.replace(/^egress refused: /, 'refused: ')}`, { cause: err });
  }
  return url;
}

/** One HEC event per line (Splunk accepts concatenated JSON objects; newlines keep it readable). */
export function toHecLine(line: ExportLine): string {
  const event = toEcs(line);
  const at = Date.parse(String(event['@timestamp'] ?? ''));
  const time = Number.isFinite(at) ? Math.round(at) / 1000 : Date.now() / 1000;
  return JSON.stringify({ time, host: 'steward', source: 'steward:audit', sourcetype: '_json', event });
}

export interface PushToSiemOptions {
  /** Default: a guarded fetch that connects only to checked public addresses (or allowlisted hosts). */
  fetchImpl?: typeof fetch;
  /** Hosts the operator allowed on non-public addresses (STEWARD_EGRESS_ALLOW_HOSTS). */
  allowHosts?: readonly string[];
  /** DNS resolver for the guarded fetch (tests inject one). */
  resolver?: EgressResolver;
  maxAttempts?: number;
  baseDelayMs?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /**
   * How long one sink may take in one round (default 30 s): a slow or unanswering endpoint is left
   * where it got to and taken up again next round, so that it holds back no other sink, org or duty.
   */
  budgetMs?: number;
  /** Ends the round at once (the worker stopping): requests in flight are aborted, nothing more is sent. */
  signal?: AbortSignal;
}

export interface SinkPushResult {
  sinkId: string;
  delivered: number;
  deadLettered: number;
  lastSeq: number;
  error: string | null;
}

interface SinkRow {
  id: string;
  url: string;
  token_sealed: Buffer;
  token_wrapped_key: string;
  batch_size: number;
  last_seq: string;
}

class PermanentError extends Error {}
/** An answer that says the sink itself is wrong (its token refused, its URL gone), not this batch: nothing is dead-lettered, the sink waits. */
class SinkError extends Error {}
const SINK_STATUSES = new Set([401, 403, 404]);

async function post(fetchImpl: typeof fetch, url: string, token: string, body: string, timeoutMs: number, stop?: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await fetchImpl(`${url}/services/collector/event`, {
      method: 'POST',
      headers: { Authorization: `Splunk ${token}`, 'Content-Type': 'application/json' },
      body,
      redirect: 'manual',
      signal: stop ? AbortSignal.any([AbortSignal.timeout(timeoutMs), stop]) : AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new Error(`request failed: ${(err as Error).name === 'TimeoutError' ? 'timeout' : ((err as Error).message ?? 'error')}`.slice(0, 500), { cause: err });
  }
  // Drain the body without keeping it (a HEC error text never carries the token, but keep it short anyway).
  const text = (await res.text().catch(() => '')).slice(0, 200).replace(/\s+/g, ' ');
  if (res.status >= 200 && res.status < 300) return;
  const msg = `HTTP ${res.status}${text ? `: ${text}` : ''}`;
  if (SINK_STATUSES.has(res.status)) throw new SinkError(msg);
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new PermanentError(msg);
  throw new Error(msg);
}

async function deliver(fetchImpl: typeof fetch, url: string, token: string, body: string, o: { maxAttempts: number; baseDelayMs: number; timeoutMs: number; signal?: AbortSignal }): Promise<{ ok: boolean; attempts: number; error: string | null; sinkLevel?: boolean }> {
  let attempts = 0;
  let error: string | null = null;
  while (attempts < o.maxAttempts) {
    // Stopping: not sent, and not dead-lettered either (the next round sends it).
    if (o.signal?.aborted) return { ok: false, attempts, error: 'stopped', sinkLevel: true };
    attempts++;
    try {
      await post(fetchImpl, url, token, body, o.timeoutMs, o.signal);
      return { ok: true, attempts, error: null };
    } catch (err) {
      error = (err as Error).message.split(token).join('[redacted]');
      if (err instanceof SinkError || o.signal?.aborted) return { ok: false, attempts, error: o.signal?.aborted ? 'stopped' : error, sinkLevel: true };
      if (err instanceof PermanentError) break;
      if (attempts < o.maxAttempts) await new Promise((r) => setTimeout(r, o.baseDelayMs * 2 ** (attempts - 1) * (0.75 + Math.random() * 0.5)));
    }
  }
  return { ok: false, attempts, error };
}

/**
 * Chain entries from `fromSeq`, a page at a time, each with its event (null when the row is gone) and
 * whether that absence is retention's: before the purge point, in a month whose drop is on record
 * (the verifier's own rule).
 */
function sinkPages(ds: DataSource, orgId: string, fromSeq: number, toSeq: number): AsyncGenerator<{ seq: number; hash: string; canonical: string | null; purged: boolean }[]> {
  const pages = cursorPages<{ seq: string; hash: string; canonical: string | null; purged: boolean }>(
    ds,
    orgId,
    `WITH ${DROPPED_CTE}
     SELECT c.seq, encode(c.hash, 'hex') AS hash, e.canonical, ${PURGED_SQL} AS purged
       FROM audit_chain c
       LEFT JOIN LATERAL (SELECT ev.canonical FROM audit_events ev
                           WHERE ev.org_id = c.org_id AND ev.occurred_at = c.occurred_at AND ev.id = c.event_id OFFSET 0) e ON true
      WHERE c.org_id = $1 AND c.seq >= $2 AND c.seq <= $3 ORDER BY c.seq`,
    [orgId, fromSeq, toSeq],
    2000,
  );
  return (async function* () {
    for await (const rows of pages) yield rows.map((r) => ({ seq: Number(r.seq), hash: r.hash, canonical: r.canonical, purged: r.purged }));
  })();
}

/**
 * Pushes the org's sealed audit entries to each of its enabled SIEM sinks, from where each
 * sink left off. Never throws for a sink's failure: it is recorded on the sink (last_error),
 * and a batch past the retries is dead-lettered, audited and skipped.
 */
export async function pushToSiem(ds: DataSource, keyProvider: KeyProvider, orgId: string, options: PushToSiemOptions = {}): Promise<SinkPushResult[]> {
  const fetchImpl = options.fetchImpl ?? (guardedFetch({ allowHosts: options.allowHosts, resolver: options.resolver, maxRedirects: 0 }) as typeof fetch);
  const o = { maxAttempts: Math.max(1, options.maxAttempts ?? 4), baseDelayMs: options.baseDelayMs ?? 200, timeoutMs: options.timeoutMs ?? 10_000, ...(options.signal ? { signal: options.signal } : {}) };
  const sinks: SinkRow[] = await inOrg(ds, { orgId }, (em) =>
    em.query('SELECT id, url, token_sealed, token_wrapped_key, batch_size, last_seq FROM audit_siem_sinks WHERE org_id = $1 AND enabled AND (held_until IS NULL OR held_until <= now()) ORDER BY id', [orgId]),
  );
  if (!sinks.length) return [];
  const { toSeq } = await exportRange(ds, orgId);
  const results: SinkPushResult[] = [];
  for (const sink of sinks) {
    const r: SinkPushResult = { sinkId: sink.id, delivered: 0, deadLettered: 0, lastSeq: Number(sink.last_seq), error: null };
    results.push(r);
    if (r.lastSeq >= toSeq) continue;
    let url: string;
    let token: string;
    try {
      url = validateSinkUrl(sink.url, options.allowHosts);
      token = await openSinkToken(keyProvider, orgId, sink.id, sink.token_sealed, sink.token_wrapped_key);
    } catch (err) {
      r.error = (err as Error).message;
      await inOrg(ds, { orgId }, (em) => em.query('UPDATE audit_siem_sinks SET last_error = $3, updated_at = now() WHERE org_id = $1 AND id = $2', [orgId, sink.id, r.error]));
      continue;
    }
    const batchSize = Math.max(1, sink.batch_size);
    const until = Date.now() + (options.budgetMs ?? 30_000);
    let batch: ExportLine[] = [];
    /** Sends the batch and moves the sink on to `lastSeq` (past entries retention purged too: with none to send, it only moves on). */
    const flush = async (lastSeq: number): Promise<boolean> => {
      const fromSeq = batch[0]?.seq ?? lastSeq;
      const sent: { ok: boolean; attempts: number; error: string | null; sinkLevel?: boolean } = batch.length ? await deliver(fetchImpl, url, token, batch.map(toHecLine).join('\n'), o) : { ok: true, attempts: 0, error: null };
      if (sent.sinkLevel) {
        // The endpoint refused the sink itself (a rotated or disabled token, a URL gone): nothing moves on
        // and nothing is dead-lettered; the sink says why and starts from here once an admin fixed it.
        // (Stopped mid-way: the same, said as nothing.)
        if (options.signal?.aborted) return false;
        r.error = sent.error;
        // Asked again with backoff (30 s, doubling to an hour), not every round: an edit of the sink clears the wait.
        await inOrg(ds, { orgId }, (em) =>
          em.query(
            `UPDATE audit_siem_sinks SET last_error = $3, held_failures = held_failures + 1,
               held_until = now() + least(interval '30 seconds' * power(2, least(held_failures, 7)), interval '1 hour'), updated_at = now()
             WHERE org_id = $1 AND id = $2 AND url = $4 AND token_sealed = $5`,
            [orgId, sink.id, `${sent.error} (the sink waits: fix its URL or token)`.slice(0, 1000), sink.url, sink.token_sealed],
          ),
        );
        return false;
      }
      const advanced = await inOrg(ds, { orgId }, async (em) => {
        // Only while the sink is as this round read it: one disabled, or given another URL or token, meanwhile
        // gets nothing more from this round (its old endpoint may be the reason for the change).
        const [, n] = (await em.query(
          'UPDATE audit_siem_sinks SET last_seq = $4, last_error = $5, held_failures = 0, held_until = NULL, updated_at = now() WHERE org_id = $1 AND id = $2 AND last_seq = $3 AND enabled AND url = $6 AND token_sealed = $7',
          [orgId, sink.id, r.lastSeq, lastSeq, sent.error, sink.url, sink.token_sealed],
        )) as [unknown, number];
        if (!n) return false; // another worker moved this sink on, or it was edited or disabled: stop here
        if (!sent.ok) {
          await em.query('INSERT INTO audit_siem_dead_letters (org_id, sink_id, from_seq, to_seq, attempts, error) VALUES ($1, $2, $3, $4, $5, $6)', [orgId, sink.id, fromSeq, lastSeq, sent.attempts, sent.error]);
          await recordEvent(em, new AuditKeyring(keyProvider), {
            id: newId(),
            orgId,
            occurredAt: new Date(),
            actor: { type: 'system', id: null },
            action: 'audit.siem_dead_letter',
            target: { type: 'SiemSink', id: sink.id },
            outcome: 'failure',
            client: 'worker',
            payload: { fromSeq, toSeq: lastSeq, attempts: sent.attempts, error: sent.error },
          });
        }
        return true;
      });
      if (!advanced) return false;
      r.lastSeq = lastSeq;
      if (sent.ok) r.delivered += batch.length;
      else {
        r.deadLettered += batch.length;
        r.error = sent.error;
      }
      batch = [];
      return true;
    };
    let go = true;
    let seen = r.lastSeq;
    for await (const page of sinkPages(ds, orgId, r.lastSeq + 1, toSeq)) {
      let missing: number | null = null;
      for (const line of page) {
        if (line.canonical === null) {
          // An entry whose event retention purged (its month dropped) has nothing left to send; an event
          // gone otherwise is a gap in the trail: the sink stops there and says so, it does not skip it.
          if (line.purged) {
            seen = line.seq;
            continue;
          }
          missing = line.seq;
          break;
        }
        seen = line.seq;
        batch.push({ seq: line.seq, hash: line.hash, canonical: line.canonical });
        if (batch.length >= batchSize && !(go = await flush(seen))) break;
        // Out of time this round: what was sent stays sent; the rest goes next round.
        if (batch.length === 0 && Date.now() > until) {
          go = false;
          break;
        }
      }
      if (!go) break;
      if (missing !== null) {
        if (batch.length || seen > r.lastSeq) go = await flush(seen);
        r.error = `the event of seq ${missing} is missing from the trail (not purged by retention): the push stops there until the trail is verified`;
        await inOrg(ds, { orgId }, (em) => em.query('UPDATE audit_siem_sinks SET last_error = $3, updated_at = now() WHERE org_id = $1 AND id = $2', [orgId, sink.id, r.error]));
        go = false;
        break;
      }
    }
    if (go && seen > r.lastSeq) await flush(seen);
  }
  return results;
}
