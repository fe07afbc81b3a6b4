import type { ActionType } from './catalog';

/** What the gate knows about one action when it asks for a decision. */
export interface ActionContext {
  connector?: string;
  /** Paths, URLs or ids the action touches. */
  resources?: string[];
  hosts?: string[];
  /** Mail recipients (addresses). */
  recipients?: string[];
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

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

export function isInternal(domain: string, orgDomains: string[]): boolean {
  return orgDomains.some((d) => domain === d.toLowerCase() || domain.endsWith(`.${d.toLowerCase()}`));
}

export function toFacts(principal: PolicyPrincipal, action: ActionType, ctx: ActionContext, org: OrgInfo): Facts {
  const recipients = (ctx.recipients ?? []).map((r) => r.toLowerCase());
  const domains = [...new Set(recipients.map(domainOf).filter(Boolean))].sort();
  const me = principal.email?.toLowerCase();
  const others = (ctx.attendees ?? []).map((a) => a.toLowerCase()).filter((a) => a !== me);
  return {
    type: action,
    userId: principal.userId,
    groups: [...principal.groupIds].sort(),
    workflow: ctx.workflow ?? null,
    connector: ctx.connector ?? null,
    resources: ctx.resources ?? [],
    hosts: (ctx.hosts ?? []).map((h) => h.toLowerCase()),
    recipientScope: domains.length === 0 ? 'none' : domains.every((d) => isInternal(d, org.domains)) ? 'internal' : 'external',
    recipientDomains: domains,
    invitesOthers: others.length > 0,
    labels: [...new Set(ctx.labels ?? [])].sort(),
    tainted: ctx.tainted === true,
    amount: typeof ctx.amount === 'number' ? ctx.amount : null,
    at: ctx.at ? new Date(ctx.at) : new Date(),
    rateExceeded: ctx.rateExceeded ?? [],
  };
}

const clockCache = new Map<string, Intl.DateTimeFormat>();
const DAYS: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

/** ISO weekday (1 = Monday) and minute of the day of an instant in a time zone. */
export function localClock(at: Date, timeZone: string): { day: number; minute: number } {
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

export function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}
