/** Time-zone arithmetic without a library: offsets from Intl, one lookup per day at most. */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(zone, f);
  }
  return f;
}

export function isTimeZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

/** The zone's local wall-clock time at `at`, as the UTC fields of a Date. */
export function wallClock(zone: string, at: Date): Date {
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(at)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return new Date(Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second));
}

/** Minutes the zone is ahead of UTC at `at`. */
export function offsetMinutes(zone: string, at: Date): number {
  return Math.round((wallClock(zone, at).getTime() - Math.floor(at.getTime() / 1000) * 1000) / 60_000);
}

/** The instant of local midnight of the calendar day (y, m 0-based, d) in the zone. */
export function zonedMidnight(zone: string, y: number, m: number, d: number): Date {
  const guess = Date.UTC(y, m, d);
  let at = guess - offsetMinutes(zone, new Date(guess)) * 60_000;
  // Across a DST change the offset at the guess may differ from the one at the answer.
  at = guess - offsetMinutes(zone, new Date(at)) * 60_000;
  return new Date(at);
}

/** The first instant of the month (of `at`, in the zone) `delta` months away. */
export function monthStart(zone: string, at: Date, delta = 0): Date {
  const w = wallClock(zone, at);
  return zonedMidnight(zone, w.getUTCFullYear(), w.getUTCMonth() + delta, 1);
}
