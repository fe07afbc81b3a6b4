import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RateLimit } from '@steward/policy';

const WINDOW_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/**
 * One reservation, atomic in Redis. The action (ARGV[3], its claim) is entered in the current
 * window's hash (its expiry set when it is the first) with the count it was given: this window's
 * actions up to it plus the previous window's, weighted by how much of it the sliding window still
 * covers (ARGV[2], 0–1; rounded up: the estimate errs towards the limit, never past it). So 20
 * deletes at 10:59:40 and 20 more at 11:00:05 are not 40 within a minute's reach of an hourly limit
 * of 20. An action already entered (in this window or the previous one) is the same action decided
 * again (its approval redeemed, the same call retried): it gets the count it was given then — no
 * second slot, and actions that came after it do not push it over the limit. (Its count comes back
 * negated, so that the caller knows it entered nothing: `release` leaves such an entry alone.)
 */
const RESERVE = `local seen = redis.call('HGET', KEYS[1], ARGV[3]) or redis.call('HGET', KEYS[2], ARGV[3])
if seen then return -tonumber(seen) end
local n = redis.call('HLEN', KEYS[1]) + 1
local count = n + math.ceil(redis.call('HLEN', KEYS[2]) * tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], ARGV[3], count)
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count`;

export interface Reservation {
  /** Ids of the limits this action went over (the policy raises the level for them). */
  exceeded: string[];
  /** Redis could not be asked: every limit counts as exceeded (fail safe). */
  unavailable: boolean;
  /** The window hashes this reservation entered its unit in (not those that already held it): what `release` takes back. */
  entered?: { key: string; unit: string }[];
}

/**
 * Reserves one slot of each rate limit that applies, atomically across processes (a Redis hash per
 * limit and window, all in one round trip). A reservation is made before the decision, so 21
 * concurrent file.delete calls against a limit of 20 give exactly one raised level. `unit` names
 * the action (its claim: a task's step, a gateway call): reserving again for the same unit takes
 * no second slot; without one, each reservation is a slot of its own. If Redis does not answer
 * within `timeoutMs`, every limit counts as exceeded: the level goes up, never down.
 */
export async function reserve(redis: Redis, orgId: string, userId: string, limits: RateLimit[], now: Date, timeoutMs = 250, prefix = 'steward', unit: string = randomUUID()): Promise<Reservation> {
  if (!limits.length) return { exceeded: [], unavailable: false };
  const pipeline = redis.pipeline();
  const hashes: string[] = [];
  for (const l of limits) {
    const window = WINDOW_MS[l.per];
    const start = Math.floor(now.getTime() / window) * window;
    const who = l.by === 'user' ? `u:${userId}` : 'org';
    // (`rls`: the actions of each window; the counters of earlier versions were under `rl`.)
    const key = `${prefix}:rls:${orgId}:${l.id}:${who}`;
    // Kept through the next window too, which weighs it.
    const stillCovered = (window - (now.getTime() - start)) / window;
    hashes.push(`${key}:${start}`);
    pipeline.eval(RESERVE, 2, `${key}:${start}`, `${key}:${start - window}`, String(2 * window + 1000), stillCovered.toFixed(6), unit);
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const results = await Promise.race([
      pipeline.exec(),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
    if (!results || results.some(([err]) => err)) return { exceeded: limits.map((l) => l.id), unavailable: true };
    const counts = results.map(([, v]) => Number(v));
    return {
      exceeded: limits.filter((l, i) => Math.abs(counts[i]!) > l.max).map((l) => l.id),
      unavailable: false,
      entered: hashes.flatMap((key, i) => (counts[i]! > 0 ? [{ key, unit }] : [])),
    };
  } catch {
    return { exceeded: limits.map((l) => l.id), unavailable: true };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Takes back the slots a reservation entered (an action that turned out to be another one already
 * counted: a call approved earlier, redeemed from a new session). Best effort: a slot left behind
 * errs towards the limit, never past it.
 */
export async function release(redis: Redis, reservation: Reservation): Promise<void> {
  if (!reservation.entered?.length) return;
  const pipeline = redis.pipeline();
  for (const { key, unit } of reservation.entered) pipeline.hdel(key, unit);
  await pipeline.exec().catch(() => undefined);
}
