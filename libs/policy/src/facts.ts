import type { PolicyDocument } from './document';
import type { ActionType } from './catalog';

/** What the gate knows about one action when it asks for a decision. */
export interface ActionContext {
  connector?: string;
  /** Paths, URLs or ids the action touches. */
  resources?: string[];
  hosts?: string[];
  /** Mail recipients (addresses). */
  recipients?: string[];
  /**
   * The action reaches people outside the org other than through the addresses it names (a Slack
   * channel shared with another company): its recipients are external, whatever `recipients` says.
   */
  outside?: boolean;
  /** Calendar attendees (addresses). */
  attendees?: string[];
  amount?: number;
  /** Labels found in the arguments or attached to data read earlier ("pii", "confidential"). */
  labels?: string[];
  /** The task has read untrusted content. */
  tainted?: boolean;
  /** When the action happens (default: now). */
  at?: Date | string;
  /** The workflow the task runs under. */
  workflow?: string;
  /** Rate limit ids whose reservation failed (the gate reserves atomically, then passes the result). */
  rateExceeded?: string[];
}

export interface PolicyPrincipal {
  userId: string;
  groupIds: string[];
  /** The user's own address, so that inviting only oneself is not "inviting others". */
  email?: string;
}

export interface OrgInfo {
  /** The org's own mail domains. */
  domains: string[];
}

/** The normalised facts both evaluators (and the CASL check) decide on. */
export interface Facts {
  type: ActionType;
  userId: string;
  groups: string[];
  workflow: string | null;
  connector: string | null;
  resources: string[];
  hosts: string[];
  recipientScope: 'none' | 'internal' | 'external';
  recipientDomains: string[];
  invitesOthers: boolean;
  labels: string[];
  tainted: boolean;
  amount: number | null;
  at: Date;
  rateExceeded: string[];
}

/**
 * The fact lists a condition matches one value of. An action naming several values in a list that
 * some rule has a condition on is decided for each value alone (the engine's decideEach; the CASL
 * check likewise), the most restrictive standing.
 */
export type SplitKey = 'resources' | 'hosts' | 'recipientDomains' | 'labels';
export const SPLIT_KEYS: readonly SplitKey[] = ['resources', 'hosts', 'recipientDomains', 'labels'];
/** At most this many single-value decisions per action; past it the action is refused (Forbidden, `split_limit`). */
export const SPLIT_MAX = 4096;

/** The lists some rule of `action` has a condition on. */
export function splitKeys(document: Pick<PolicyDocument, 'rules'>, action: string): SplitKey[] {
  return SPLIT_KEYS.filter((k) => document.rules.some((r) => r.actions.includes(action as never) && r.when?.[k] !== undefined));
}

/** A list the policy's conditions test, with one test per condition on it: a value's signature is which tests it passes. */
export interface SplitList {
  key: SplitKey;
  tests: ((value: string) => boolean)[];
}

/**
 * The facts to decide one by one: every combination of one value of each list that names values
 * its tests tell apart (the first value of each signature stands for the others, which no
 * condition can decide differently); `[f]` when nothing needs splitting, null past SPLIT_MAX
 * combinations. The engine and the CASL check split alike through this one function.
 */
export function eachValue(f: Facts, lists: readonly SplitList[]): Facts[] | null {
  let n = 1;
  const parts: [SplitKey, string[]][] = [];
  for (const { key, tests } of lists) {
    const values = f[key];
    if (values.length < 2) continue;
    const seen = new Set<string>();
    const reps: string[] = [];
    for (const v of values) {
      let sig = '';
      for (const t of tests) sig += t(v) ? '1' : '0';
      if (!seen.has(sig)) {
        seen.add(sig);
        reps.push(v);
      }
    }
    if (reps.length < 2) continue;
    parts.push([key, reps]);
    n *= reps.length;
    if (n > SPLIT_MAX) return null;
  }
  if (parts.length === 0) return [f];
  let each: Facts[] = [f];
  for (const [k, reps] of parts) each = each.flatMap((g) => reps.map((v) => ({ ...g, [k]: [v] })));
  return each;
}

/** Whether a domain or one of its parent domains is in the set: a rule on "competitor.example" covers "mail.competitor.example". */
export function domainInSet(set: ReadonlySet<string>, domain: string): boolean {
  for (let at = 0; at >= 0; at = domain.indexOf('.', at) + 1 || -1) {
    if (set.has(at === 0 ? domain : domain.slice(at))) return true;
  }
  return false;
}

/** The domains with every parent domain of each (deduplicated): a list CASL's `$in` matches as domainInSet does. */
export function withParentDomains(domains: readonly string[]): string[] {
  const out = new Set<string>();
  for (const d of domains) for (let at = 0; at >= 0; at = d.indexOf('.', at) + 1 || -1) out.add(at === 0 ? d : d.slice(at));
  return [...out];
}

/**
 * A domain (or host glob) as policies and facts compare it: lower case, international labels in
 * their ASCII (punycode) form, no trailing dot — so that a rule on "Bücher.de." and a recipient
 * "kim@bücher.de" or "kim@xn--bcher-kva.de" meet. A glob's "*" labels stay as they are. (WHATWG
 * URL parsing, which browsers and Node share: the console explains decisions with this code too.)
 */
const PLAIN_DOMAIN = /^[a-z0-9-]+(?:\.[a-z0-9-]+)*$/;

export function asciiDomain(domain: string): string {
  // (The usual case, already in that form, at the cost of one test.)
  if (PLAIN_DOMAIN.test(domain)) return domain;
  const labels = domain.trim().toLowerCase().replace(/\.+$/, '').split('.');
  return labels
    .map((label) => {
      if (label.includes('*') || /^[a-z0-9-]*$/.test(label)) return label;
      try {
        return new URL(`http://${label}`).hostname;
      } catch {
        return label;
      }
    })
    .join('.');
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

export function isInternal(domain: string, orgDomains: string[]): boolean {
  // As orgDomains.some((d) => domain === d.toLowerCase() || domain.endsWith(`.${d.toLowerCase()}`)),
  // without a closure or a concatenated string per domain.
  for (let i = 0; i < orgDomains.length; i++) {
    const raw = orgDomains[i];
    if (raw === undefined && !(i in orgDomains)) continue;
    const d = raw.toLowerCase();
    if (domain === d) return true;
    const dot = domain.length - d.length - 1;
    if (dot >= 0 && domain.charCodeAt(dot) === 46 && domain.endsWith(d)) return true;
  }
  return false;
}

export function toFacts(principal: PolicyPrincipal, action: ActionType, ctx: ActionContext, org: OrgInfo): Facts {
  let domains: string[] = [];
  let recipientScope: Facts['recipientScope'] = 'none';
  const recipients = ctx.recipients;
  if (recipients && recipients.length) {
    const set = new Set<string>();
    for (const r of recipients) {
      const d = domainOf(r.toLowerCase());
      if (d) set.add(asciiDomain(d));
    }
    if (set.size) {
      domains = [...set].sort();
      recipientScope = domains.every((d) => isInternal(d, org.domains)) ? 'internal' : 'external';
    }
  }
  if (ctx.outside === true) recipientScope = 'external';
  let invitesOthers = false;
  const attendees = ctx.attendees;
  if (attendees && attendees.length) {
    const me = principal.email?.toLowerCase();
    for (const a of attendees) {
      if (a.toLowerCase() !== me) invitesOthers = true;
    }
  }
  const labels = ctx.labels;
  return {
    type: action,
    userId: principal.userId,
    groups: sortedCopy(principal.groupIds),
    workflow: ctx.workflow ?? null,
    connector: ctx.connector ?? null,
    resources: ctx.resources ?? [],
    hosts: ctx.hosts ? ctx.hosts.map((h) => h.toLowerCase()) : [],
    recipientScope,
    recipientDomains: domains,
    invitesOthers,
    labels: !labels || labels.length === 0 ? [] : labels.length === 1 ? [labels[0]] : [...new Set(labels)].sort(),
    tainted: ctx.tainted === true,
    amount: typeof ctx.amount === 'number' ? ctx.amount : null,
    at: ctx.at ? new Date(ctx.at) : new Date(),
    rateExceeded: ctx.rateExceeded ?? [],
  };
}

const NO_STRINGS: string[] = [];

/**
 * @internal The facts as decide() evaluates them: the same values as toFacts, except that the
 * lists the evaluator only searches (groups, recipient domains, labels) are taken as they are,
 * neither copied, sorted nor de-duplicated, and an `at` given as a Date is used as it is.
 * Never handed out: the evaluator only reads it.
 */
export function decisionFacts(principal: PolicyPrincipal, action: ActionType, ctx: ActionContext, org: OrgInfo): Facts {
  let domains = NO_STRINGS;
  let recipientScope: Facts['recipientScope'] = 'none';
  const recipients = ctx.recipients;
  if (recipients && recipients.length) {
    let internal = true;
    let found: string[] | null = null;
    for (const r of recipients) {
      const raw = domainOf(r.toLowerCase());
      const d = raw && asciiDomain(raw);
      if (d) {
        if (found === null) found = [d];
        else found.push(d);
        if (internal && !isInternal(d, org.domains)) internal = false;
      }
    }
    if (found !== null) {
      domains = found;
      recipientScope = internal ? 'internal' : 'external';
    }
  }
  if (ctx.outside === true) recipientScope = 'external';
  let invitesOthers = false;
  const attendees = ctx.attendees;
  if (attendees && attendees.length) {
    const me = principal.email?.toLowerCase();
    for (const a of attendees) {
      if (a.toLowerCase() !== me) invitesOthers = true;
    }
  }
  const hosts = ctx.hosts;
  const at = ctx.at;
  return {
    type: action,
    userId: principal.userId,
    groups: principal.groupIds,
    workflow: ctx.workflow ?? null,
    connector: ctx.connector ?? null,
    resources: ctx.resources ?? NO_STRINGS,
    hosts: hosts ? lowerCased(hosts) : NO_STRINGS,
    recipientScope,
    recipientDomains: domains,
    invitesOthers,
    labels: ctx.labels ?? NO_STRINGS,
    tainted: ctx.tainted === true,
    amount: typeof ctx.amount === 'number' ? ctx.amount : null,
    at: at instanceof Date ? at : at ? new Date(at) : new Date(),
    rateExceeded: ctx.rateExceeded ?? NO_STRINGS,
  };
}

/** As xs.map((h) => h.toLowerCase()). */
function lowerCased(xs: string[]): string[] {
  if (xs.length === 0) return NO_STRINGS;
  return xs.map(toLower);
}
const toLower = (x: string): string => x.toLowerCase();

/** A sorted copy (as `[...xs].sort()`), without sorting when already in order. */
function sortedCopy(xs: string[]): string[] {
  const out = [...xs];
  for (let i = 0; i < out.length; i++) {
    if (typeof out[i] !== 'string' || (i > 0 && out[i - 1] > out[i])) return out.sort();
  }
  return out;
}

const clockCache = new Map<string, Intl.DateTimeFormat>();
const DAYS: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

/** The reference implementation: Intl's wall clock of the instant in the zone. */
function intlClock(at: Date, timeZone: string): { day: number; minute: number } {
  let fmt = clockCache.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    clockCache.set(timeZone, fmt);
  }
  let day = 1;
  let hour = 0;
  let minute = 0;
  for (const part of fmt.formatToParts(at)) {
    if (part.type === 'weekday') day = DAYS[part.value] ?? 1;
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return { day, minute: hour * 60 + minute };
}

/*
 * Fast path: a zone's UTC offset is constant over a 15-minute UTC slot (present-day offsets are
 * whole multiples of 15 minutes and change at whole local quarter hours). The offset of a slot is
 * taken from Intl once, with seconds, and only used when it is a whole number of minutes and the
 * same at both ends of the slot; otherwise (historical LMT offsets, odd transitions) every instant
 * in the slot goes through Intl. The cache is bounded.
 */
const SLOT_MS = 900_000;
const MAX_SLOTS = 20_000;
const UNCACHEABLE = 0x7fffffff;
const offsetFormats = new Map<string, Intl.DateTimeFormat>();
const slotOffsets = new Map<string, Map<number, number>>();
let slotCount = 0;

/** Local minus UTC, in seconds, reduced to (-3.5, 3.5] days (the wall clock only gives weekday and time). */
function offsetSeconds(t: number, timeZone: string): number {
  let fmt = offsetFormats.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    offsetFormats.set(timeZone, fmt);
  }
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const part of fmt.formatToParts(t)) {
    if (part.type === 'weekday') day = DAYS[part.value] ?? 1;
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
    else if (part.type === 'second') second = Number(part.value);
  }
  const utcSeconds = Math.floor(t / 1000);
  const utcDayNo = Math.floor(utcSeconds / 86_400);
  const utcDay = ((((utcDayNo + 3) % 7) + 7) % 7) + 1;
  const utcSec = utcSeconds - utcDayNo * 86_400;
  const WEEK = 7 * 86_400;
  let diff = (((day - utcDay) * 86_400 + (hour * 3600 + minute * 60 + second) - utcSec) % WEEK + WEEK) % WEEK;
  if (diff > WEEK / 2) diff -= WEEK;
  return diff;
}

function slotOffset(slot: number, timeZone: string): number {
  let zone = slotOffsets.get(timeZone);
  if (zone) {
    const cached = zone.get(slot);
    if (cached !== undefined) return cached;
  }
  const start = slot * SLOT_MS;
  const a = offsetSeconds(start, timeZone);
  const b = offsetSeconds(start + SLOT_MS - 1, timeZone);
  const off = a === b && a % 60 === 0 && Math.abs(a) < 86_400 ? a / 60 : UNCACHEABLE;
  if (slotCount >= MAX_SLOTS) {
    slotOffsets.clear();
    slotCount = 0;
    zone = undefined;
  }
  if (!zone) {
    zone = new Map();
    slotOffsets.set(timeZone, zone);
  }
  zone.set(slot, off);
  slotCount++;
  return off;
}

/** ISO weekday (1 = Monday) and minute of the day of an instant in a time zone. */
export function localClock(at: Date, timeZone: string): { day: number; minute: number } {
  const t = at instanceof Date ? at.getTime() : NaN;
  // (Near the ends of the Date range a slot's ends may not be valid instants.)
  if (!(Math.abs(t) < 8.64e15 - SLOT_MS)) return intlClock(at, timeZone);
  // Validates the zone (and the instant) exactly as before: Intl throws the same errors.
  if (!clockCache.has(timeZone)) intlClock(at, timeZone);
  const off = slotOffset(Math.floor(t / SLOT_MS), timeZone);
  if (off === UNCACHEABLE) return intlClock(at, timeZone);
  const local = Math.floor(t / 60_000) + off;
  const dayNo = Math.floor(local / 1440);
  return { day: ((((dayNo + 3) % 7) + 7) % 7) + 1, minute: local - dayNo * 1440 };
}

/**
 * @internal localClock as one number, day × 1440 + minute, so that a condition can test it
 * without an object per call: the same clock, the same errors.
 */
export function localDayMinute(at: Date, timeZone: string): number {
  const t = at instanceof Date ? at.getTime() : NaN;
  if (Math.abs(t) < 8.64e15 - SLOT_MS) {
    if (!clockCache.has(timeZone)) intlClock(at, timeZone);
    const off = slotOffset(Math.floor(t / SLOT_MS), timeZone);
    if (off !== UNCACHEABLE) {
      const local = Math.floor(t / 60_000) + off;
      const dayNo = Math.floor(local / 1440);
      return (((((dayNo + 3) % 7) + 7) % 7) + 1) * 1440 + (local - dayNo * 1440);
    }
  }
  const { day, minute } = intlClock(at, timeZone);
  return day * 1440 + minute;
}

/** @internal The Intl-only clock, for tests that compare it with localClock. */
export const localClockIntl = intlClock;

export function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}
