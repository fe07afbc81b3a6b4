import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { inOrg, queryReturning } from '@steward/db';
import { newId } from '@steward/common';
import type { CanonicalEvent } from './event';
import { type AuditKeyring, monthOf } from './keyring';
import { recordEvent } from './record';

/**
 * Retention, per org in whole months: once a month is past the org's retention, that
 * org's month key is destroyed — the month's sealed fields become unreadable while the
 * chain still verifies (it covers the ciphertext). Legal holds keep what they cover
 * readable: a held event's fields are re-sealed under the org's hold key first. A month's
 * partition is dropped (detached concurrently, never blocking appends) only once every
 * org's retention has passed it and no hold touches it. Every purge is an audit event.
 */
export const HOLD_KEY_MONTH = '9999-01-01';

export interface Hold {
  id: string;
  userId: string | null;
  fromAt: Date;
  untilAt: Date | null;
}

function addMonths(month: string, n: number): string {
  const d = new Date(`${month}T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + n);
  return monthOf(d);
}

/** The first month still kept: months before it are past retention. */
export function retentionCutoff(now: Date, months: number): string {
  return addMonths(monthOf(now), -months);
}

function overlaps(h: Hold, from: Date, to: Date): boolean {
  return h.fromAt < to && (h.untilAt === null || h.untilAt > from);
}

/**
 * The org's legal holds, locked for the rest of the transaction: placing or releasing a hold, an
 * erasure and a retention purge take it before they read or change holds, so none of them decides
 * on holds another is changing (a hold placed while a purge ran could otherwise lose its data).
 */
/**
 * The months whose partitions were dropped for an org, as its audit.partition_drop events on record
 * say (each names its month and every month dropped before it): a SQL expression over the org id `$1`.
 */
export const DROPPED_MONTHS_SQL = `coalesce((SELECT array_agg(DISTINCT m ORDER BY m) FROM audit_events d
    CROSS JOIN LATERAL (SELECT d.canonical::jsonb->'payload'->>'month' AS m
                        UNION SELECT jsonb_array_elements_text(coalesce(d.canonical::jsonb->'payload'->'months', '[]'::jsonb))) x
   WHERE d.org_id = $1 AND d.action = 'audit.partition_drop' AND x.m IS NOT NULL), '{}'::text[])`;

/** The dropped months as a CTE (`dropped`), for PURGED_SQL. */
export const DROPPED_CTE = `dropped AS (SELECT unnest(${DROPPED_MONTHS_SQL}) AS month)`;

/**
 * Whether a chain entry `c` whose event is gone was purged by retention (the verifier's rule, which
 * the SIEM push follows too): before the org's purge point, in a month whose drop is on record.
 * Needs DROPPED_CTE in the statement, and the org id as `$1`.
 */
export const PURGED_SQL = `coalesce(c.occurred_at < (SELECT h.purged_before FROM audit_heads h WHERE h.org_id = $1)
  AND to_char(date_trunc('month', c.occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') IN (SELECT month FROM dropped), false)`;

/**
 * How many of the org's chain entries each dropped month held when it was dropped, as its
 * audit.partition_drop events say (each carries the counts of every month dropped before it too):
 * a SQL expression over the org id `$1`, a JSON object month → count.
 */
export const DROPPED_COUNTS_SQL = `coalesce((SELECT jsonb_object_agg(k, n) FROM (
    SELECT x.k, max(x.v::bigint) AS n FROM audit_events d
     CROSS JOIN LATERAL jsonb_each_text(coalesce(d.canonical::jsonb->'payload'->'counts', '{}'::jsonb)) AS x(k, v)
     WHERE d.org_id = $1 AND d.action = 'audit.partition_drop' GROUP BY x.k) c), '{}'::jsonb)`;

export async function lockHolds(em: EntityManager, orgId: string): Promise<void> {
  await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('steward:legal-holds:' || $1, 0))`, [orgId]);
}

/** Held by a partition drop from its first org's drop record until the partition is gone (every org's: one partition holds them all). */
const PARTITION_DROP_LOCK = `hashtextextended('steward:audit-partition-drop', 0)`;

/**
 * Taken by a hold's creation, first in its transaction (before anything that reads the audit trail):
 * waits while a partition is being dropped, so that a hold is either seen by the drop or placed
 * after it. Shared: holds of different orgs do not wait for each other. Waits at most `waitMs`;
 * past it throws PartitionDropUnderway (nothing done: the caller may try again shortly).
 */
export async function lockAgainstPartitionDrop(em: EntityManager, waitMs = 20_000): Promise<void> {
  const [{ got, was }]: { got: boolean; was: string }[] = await em.query(`SELECT pg_try_advisory_xact_lock_shared(${PARTITION_DROP_LOCK}) AS got, current_setting('lock_timeout') AS was`);
  if (got) return;
  await em.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.round(waitMs))}ms`]);
  try {
    await em.query(`SELECT pg_advisory_xact_lock_shared(${PARTITION_DROP_LOCK})`);
  } catch (err) {
    // 55P03 lock_not_available: the drop outlasted the wait (the transaction is aborted; nothing was written).
    if ((err as { code?: string }).code === '55P03' || (err as { driverError?: { code?: string } }).driverError?.code === '55P03') throw new PartitionDropUnderway();
    throw err;
  }
  await em.query(`SELECT set_config('lock_timeout', $1, true)`, [was]);
}

/** An audit partition is being dropped: a legal hold waits for it, and this one waited too long. */
export class PartitionDropUnderway extends Error {
  constructor() {
    super('an audit partition is being dropped; try again in a minute');
    this.name = 'PartitionDropUnderway';
  }
}

async function holdsOf(em: EntityManager, orgId: string): Promise<Hold[]> {
  const rows: { id: string; user_id: string | null; from_at: Date; until_at: Date | null }[] = await em.query(
    'SELECT id, user_id, from_at, until_at FROM legal_holds WHERE org_id = $1 AND released_at IS NULL',
    [orgId],
  );
  return rows.map((r) => ({ id: r.id, userId: r.user_id, fromAt: r.from_at, untilAt: r.until_at }));
}

export interface OrgPurge {
  orgId: string;
  cutoff: string;
  destroyedMonths: string[];
  keptByHold: string[];
  heldEvents: number;
}

/** Destroys the org's month keys past retention, keeping held events readable. */
export async function purgeOrg(ds: DataSource, keyring: AuditKeyring, orgId: string, now = new Date()): Promise<OrgPurge> {
  return inOrg(ds, { orgId: orgId }, async (em) => {
    const [org] = await em.query('SELECT audit_retention_months AS months FROM orgs WHERE id = $1', [orgId]);
    const cutoff = retentionCutoff(now, Number(org?.months ?? 6));
    await lockHolds(em, orgId);
    // Copies kept by holds released since (one a purge wrote while the hold was being released included).
    await em.query('DELETE FROM audit_held_payloads p USING legal_holds h WHERE p.org_id = $1 AND h.org_id = p.org_id AND h.id = p.hold_id AND h.released_at IS NOT NULL', [orgId]);
    const holds = await holdsOf(em, orgId);
    const months: { month: string }[] = await em.query(
      `SELECT DISTINCT to_char(month, 'YYYY-MM-DD') AS month FROM audit_keys WHERE org_id = $1 AND wrapped IS NOT NULL AND month < $2 AND month <> $3 ORDER BY 1`,
      [orgId, cutoff, HOLD_KEY_MONTH],
    );
    const report: OrgPurge = { orgId, cutoff, destroyedMonths: [], keptByHold: [], heldEvents: 0 };
    for (const { month } of months) {
      const from = new Date(`${month}T00:00:00Z`);
      const to = new Date(`${addMonths(month, 1)}T00:00:00Z`);
      const covering = holds.filter((h) => overlaps(h, from, to));
      if (covering.some((h) => h.userId === null)) {
        report.keptByHold.push(month);
        continue;
      }
      const key = await keyring.key(em, orgId, month, false);
      if (key && covering.length) {
        const holdKey = (await keyring.key(em, orgId, HOLD_KEY_MONTH, true))!;
        for (const h of covering) {
          // The person's own events and those about them (an agent acting on their behalf: the
          // derived subject_id), each through its index; the exact test is below.
          const window = `org_id = $1 AND key_month = $2 AND occurred_at >= GREATEST($4::timestamptz, $5::timestamptz) AND occurred_at < LEAST(coalesce($6::timestamptz, 'infinity'), $7::timestamptz)`;
          const rows: { canonical: string }[] = await em.query(
            `SELECT canonical FROM audit_events WHERE actor_id = $3::uuid AND ${window}
             UNION ALL
             SELECT canonical FROM audit_events WHERE subject_id = $3::uuid AND actor_id IS DISTINCT FROM $3::uuid AND ${window}`,
            [orgId, month, h.userId, h.fromAt, from, h.untilAt, to],
          );
          // Keys looked up once per person and generation; the copies written in one statement.
          const keys = new Map<string, Promise<Buffer | null>>();
          const ids: string[] = [];
          const copies: string[] = [];
          for (const r of rows) {
            const e = JSON.parse(r.canonical) as CanonicalEvent;
            if (!e.sealed || (e.actor.id !== h.userId && e.sealed.subject !== h.userId)) continue;
            const fields = await openUnderOwnKey(em, keyring, orgId, e, keys);
            if (!fields) continue; // already erased
            ids.push(e.id);
            copies.push(keyring.seal(holdKey, e.id, fields));
          }
          await em.query(
            'INSERT INTO audit_held_payloads (org_id, event_id, hold_id, sealed) SELECT $1, t.e, $2, t.s FROM unnest($3::uuid[], $4::text[]) AS t(e, s) ON CONFLICT DO NOTHING',
            [orgId, h.id, ids, copies],
          );
          report.heldEvents += ids.length;
        }
      }
      // The month key and every person's key of that month.
      await em.query('UPDATE audit_keys SET wrapped = NULL, destroyed_at = now() WHERE org_id = $1 AND month = $2 AND wrapped IS NOT NULL', [orgId, month]);
      keyring.forget(orgId, month);
      report.destroyedMonths.push(month);
    }
    if (report.destroyedMonths.length || report.keptByHold.length) {
      await recordEvent(em, keyring, {
        id: newId(),
        orgId,
        occurredAt: new Date(),
        actor: { type: 'system', id: null },
        action: 'audit.purge',
        outcome: 'success',
        client: 'system',
        payload: { cutoff, destroyedMonths: report.destroyedMonths, keptByHold: report.keptByHold, heldEvents: report.heldEvents },
      });
    }
    return report;
  });
}

/**
 * An event's sealed fields if still readable: under its month key, or (past retention)
 * under the hold key when a legal hold kept it. null when shredded.
 */
export async function readSealed(em: EntityManager, keyring: AuditKeyring, orgId: string, e: CanonicalEvent): Promise<Record<string, unknown> | null> {
  if (!e.sealed) return {};
  const own = await openUnderOwnKey(em, keyring, orgId, e);
  if (own) return own;
  // Only a hold still in force keeps a copy readable (a released hold's copies are deleted with it).
  const [held] = await em.query(
    'SELECT p.sealed FROM audit_held_payloads p JOIN legal_holds h ON h.org_id = p.org_id AND h.id = p.hold_id AND h.released_at IS NULL WHERE p.org_id = $1 AND p.event_id = $2 LIMIT 1',
    [orgId, e.id],
  );
  if (!held) return null;
  const holdKey = await keyring.key(em, orgId, HOLD_KEY_MONTH, false);
  return holdKey ? keyring.open(holdKey, e.id, held.sealed) : null;
}

/** The sealed fields under the key that sealed them (the month's, or the person's), or null when that key is gone. */
async function openUnderOwnKey(em: EntityManager, keyring: AuditKeyring, orgId: string, e: CanonicalEvent, cache?: Map<string, Promise<Buffer | null>>): Promise<Record<string, unknown> | null> {
  const s = e.sealed!;
  let key: Buffer | null;
  if (s.subject !== undefined) {
    const k = `${s.month}/${s.subject}/${s.gen ?? 0}`;
    let hit = cache?.get(k);
    if (!hit) {
      hit = keyring.subjectKeyAt(em, orgId, s.month, s.subject, s.gen ?? 0);
      cache?.set(k, hit);
    }
    key = await hit;
  } else key = await keyring.key(em, orgId, s.month, false);
  return key ? keyring.open(key, e.id, s.ct) : null;
}

export interface Erasure {
  id: string;
  subject: string;
  keysDestroyed: number;
  erasedAt: string;
}

/** An erasure that a legal hold forbids (the hold's legal obligation comes first). */
export class ErasureBlockedError extends Error {
  constructor(readonly holdIds: string[]) {
    super(`The person is under legal hold (${holdIds.length} active hold${holdIds.length === 1 ? '' : 's'}); release the hold before erasing.`);
  }
}

/**
 * Erases one person's audit fields, in the caller's transaction (which must also record the
 * `audit.erase` event): destroys every key that sealed fields about them (all months, all
 * generations), so those fields can no longer be read by anyone; the chain still verifies.
 * Refused while a legal hold covers the person (or the whole org). Events recorded afterwards
 * get a fresh key. Call keyring.forgetSubject() after the commit.
 */
export async function eraseSubjectIn(em: EntityManager, orgId: string, subject: string, requestedBy: string | null): Promise<Erasure> {
  await lockHolds(em, orgId);
  const holds: { id: string }[] = await em.query('SELECT id FROM legal_holds WHERE org_id = $1 AND released_at IS NULL AND (user_id IS NULL OR user_id::text = $2)', [orgId, subject]);
  if (holds.length) throw new ErasureBlockedError(holds.map((h) => h.id));
  const destroyed = await queryReturning(em, 'UPDATE audit_keys SET wrapped = NULL, destroyed_at = now() WHERE org_id = $1 AND subject = $2 AND wrapped IS NOT NULL RETURNING month', [
    orgId,
    subject,
  ]);
  const id = newId();
  const [row] = await em.query('INSERT INTO audit_erasures (org_id, id, subject, requested_by, keys_destroyed) VALUES ($1, $2, $3, $4, $5) RETURNING erased_at', [
    orgId,
    id,
    subject,
    requestedBy,
    destroyed.length,
  ]);
  return { id, subject, keysDestroyed: destroyed.length, erasedAt: new Date(row.erased_at).toISOString() };
}

/** eraseSubjectIn in a transaction of its own, recorded as done by the system (jobs, tests). */
export async function eraseSubject(ds: DataSource, keyring: AuditKeyring, orgId: string, subject: string, reason: string): Promise<Erasure> {
  const erasure = await inOrg(ds, { orgId }, async (em) => {
    const e = await eraseSubjectIn(em, orgId, subject, null);
    await recordEvent(em, keyring, {
      id: newId(),
      orgId,
      occurredAt: new Date(),
      actor: { type: 'system', id: null },
      action: 'audit.erase',
      target: { type: 'User', id: subject },
      outcome: 'success',
      client: 'system',
      payload: { erasure: e.id, keysDestroyed: e.keysDestroyed },
      // The reason may name the person: sealed under the org's key, not the erased person's.
      sensitive: { reason },
      subject: null,
    });
    return e;
  });
  keyring.forgetSubject(orgId, subject);
  return erasure;
}

export interface PartitionDrop {
  partition: string;
  month: string;
}

/**
 * Drops monthly partitions that every org's retention has passed and no hold touches.
 * Detaching and dropping need the table owner (ownerDs); the per-org reads use the runtime role.
 */
export async function dropExpiredPartitions(ds: DataSource, ownerDs: DataSource, keyring: AuditKeyring, now = new Date()): Promise<PartitionDrop[]> {
  const orgs: string[] = (await ds.query('SELECT org_id FROM steward_list_orgs()')).map((r: { org_id: string }) => r.org_id);
  const kept: { oldest: string | null } = { oldest: null };
  const holds: Hold[] = [];
  for (const org of orgs) {
    await inOrg(ds, { orgId: org }, async (em) => {
      const [o] = await em.query('SELECT audit_retention_months AS months FROM orgs WHERE id = $1', [org]);
      const cutoff = retentionCutoff(now, Number(o?.months ?? 6));
      if (kept.oldest === null || cutoff < kept.oldest) kept.oldest = cutoff;
      holds.push(...(await holdsOf(em, org)));
    });
  }
  const oldestKept = kept.oldest;
  if (oldestKept === null) return [];
  // Each partition by its real bounds, not its name: partitions made on a database whose TimeZone
  // was not UTC (before the fix of 1766620800000) start hours off their UTC month, and judging them by
  // their name would drop events of the next month, held ones included.
  const parts: { name: string; lo: Date; hi: Date }[] = await ownerDs.query(`SELECT name, lo, hi FROM (${PARTITION_BOUNDS_SQL}) b ORDER BY lo`);
  const keptFrom = new Date(`${oldestKept}T00:00:00Z`);
  const dropped: PartitionDrop[] = [];
  for (const { name, lo, hi } of parts) {
    const month = `${name.slice(13, 17)}-${name.slice(18, 20)}-01`;
    const from = new Date(lo);
    const to = new Date(hi);
    if (to > keptFrom) continue;
    if (holds.some((h) => overlaps(h, from, to))) continue;
    // From the holds' last read to the drop, no hold is placed anywhere (lockAgainstPartitionDrop):
    // one placed meanwhile would otherwise come after its org's record and before the detach.
    // A session lock, on the connection that detaches and drops (those run outside a transaction);
    // not waited for: taken by another worker's drop (or a hold being placed), this round leaves it.
    const runner = ownerDs.createQueryRunner();
    await runner.connect();
    let locked = false;
    let broken: unknown = null;
    try {
      [{ locked }] = await runner.query(`SELECT pg_try_advisory_lock(${PARTITION_DROP_LOCK}) AS locked`);
      if (!locked) break;
      // Another worker may have dropped it meanwhile; a detach cut short earlier (its records written) is finished.
      const [state]: { pending: boolean }[] = await runner.query(
        `SELECT i.inhdetachpending AS pending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass AND c.relname = $1`,
        [name],
      );
      if (state?.pending) {
        await detachAndDrop(runner, name, true);
        dropped.push({ partition: name, month });
      } else if (state && (await dropOne(ds, runner, keyring, orgs, name, month, from, to))) dropped.push({ partition: name, month });
    } finally {
      if (locked) await runner.query(`SELECT pg_advisory_unlock(${PARTITION_DROP_LOCK})`).catch((err: unknown) => (broken = err ?? new Error('unlock failed')));
      // A connection that may still hold the lock is closed, not pooled (it would keep every hold waiting).
      const release = (runner as unknown as { releasePostgresConnection?: (err?: unknown) => Promise<void> }).releasePostgresConnection;
      if (broken && release) await release.call(runner, broken);
      else await runner.release();
    }
  }
  return dropped;
}

/** Every monthly partition of audit_events with its real bounds (from its definition, whatever its name says). */
export const PARTITION_BOUNDS_SQL = `SELECT c.relname AS name, b.m[1]::timestamptz AS lo, b.m[2]::timestamptz AS hi
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
  CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS m) b
  WHERE p.relname = 'audit_events' AND c.relname ~ '^audit_events_[0-9]{4}_[0-9]{2}$'`;

/** Records the drop in every org, then detaches and drops the partition; false when a hold over its range turned up (kept). */
async function dropOne(ds: DataSource, owner: QueryRunner, keyring: AuditKeyring, orgs: string[], name: string, month: string, from: Date, to: Date): Promise<boolean> {
  // Every org's holds read again under the drop lock (no hold can be placed now): one placed since
  // the first read, over this month, keeps the partition, and no org has recorded anything yet.
  for (const org of orgs) {
    const held = await inOrg(ds, { orgId: org }, async (em) => (await holdsOf(em, org)).some((h) => overlaps(h, from, to)));
    if (held) return false;
  }
  // Record the purge point first, so that verification accepts the gap it leaves (each org under its
  // hold lock, as releases and purges take it).
  for (const org of orgs) {
    await inOrg(ds, { orgId: org }, async (em) => {
      await lockHolds(em, org);
      await em.query('INSERT INTO audit_heads (org_id) VALUES ($1) ON CONFLICT (org_id) DO NOTHING', [org]);
      await em.query('UPDATE audit_heads SET purged_before = GREATEST(coalesce(purged_before, $2), $2) WHERE org_id = $1', [org, to]);
      // Every month dropped so far, carried by each new drop event: the older drop events go with
      // the partitions later drops remove, and the verifier still finds every dropped month on record.
      const [{ months, counts }]: { months: string[]; counts: Record<string, number> }[] = await em.query(`SELECT ${DROPPED_MONTHS_SQL} AS months, ${DROPPED_COUNTS_SQL} AS counts`, [org]);
      // With how many of the org's chain entries each UTC month the partition spans held in it: the
      // verifier accepts no more missing there. (A partition off its UTC month spans two; a month so
      // split between partitions adds up what each of their drops took.)
      const spanned: Record<string, number> = {};
      for (let m = monthOf(from); new Date(`${m}T00:00:00Z`) < to; m = addMonths(m, 1)) {
        const start = new Date(Math.max(from.getTime(), Date.parse(`${m}T00:00:00Z`)));
        const end = new Date(Math.min(to.getTime(), Date.parse(`${addMonths(m, 1)}T00:00:00Z`)));
        const [{ n }]: { n: number }[] = await em.query(`SELECT count(*)::int AS n FROM audit_chain WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3`, [org, start, end]);
        spanned[m] = (counts[m] ?? 0) + n;
      }
      await recordEvent(em, keyring, {
        id: newId(),
        orgId: org,
        occurredAt: new Date(),
        actor: { type: 'system', id: null },
        action: 'audit.partition_drop',
        outcome: 'success',
        client: 'system',
        payload: { month, partition: name, months: [...new Set([...months, ...Object.keys(spanned)])].sort(), counts: { ...counts, ...spanned } },
      });
    });
  }
  await detachAndDrop(owner, name, false);
  return true;
}

/**
 * Detaches (CONCURRENTLY: appends go on) and drops the partition, with no statement time limit: the
 * detach waits for every transaction that uses the table (a long report's included), and one cut
 * short leaves it pending detach, which the next round finishes (`finalize`) without recording again.
 */
async function detachAndDrop(owner: QueryRunner, name: string, finalize: boolean): Promise<void> {
  await owner.query(`SET statement_timeout = 0`);
  try {
    await owner.query(`ALTER TABLE audit_events DETACH PARTITION ${name} ${finalize ? 'FINALIZE' : 'CONCURRENTLY'}`);
    await owner.query(`DROP TABLE ${name}`);
  } finally {
    await owner.query(`RESET statement_timeout`);
  }
}
