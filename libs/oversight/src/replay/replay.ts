import type { DataSource } from 'typeorm';
import { inOrg } from '@steward/db';
import { type ActionType, ACTION_TYPE_NAMES, compilePolicy, decideRecorded, type Level, type PolicyDocument, rank, type RecordedFacts } from '@steward/policy';

/**
 * Policy replay: every agent action the gate decided in the last N days, decided again under a
 * policy (a draft before its activation, or any version) from the inputs the gate recorded with the
 * decision (`payload.facts`: the user and their groups then, the workflow, resources, hosts,
 * recipient scope and domains, labels, taint, amount, exceeded rate limits; the action type,
 * connector and time from the event). A Batched decision waits like Watched where the gate recorded
 * that the write has no reversible form, exactly as the gate does.
 *
 * Rate limits are replayed as they were reserved then (which limits were exceeded): a draft's new or
 * changed limits are not simulated. Events recorded before the gate stored its inputs are counted
 * as not replayable.
 */
export interface ReplayOptions {
  orgId: string;
  policy: PolicyDocument;
  days?: number;
  now?: Date;
  /** Only decisions recorded under this policy version. */
  policyVersion?: number;
  /** How many examples to return (default 20). */
  examples?: number;
  /** Return the id of every changed decision (tests, exports). */
  listChanged?: boolean;
  /** Days per read (two reads in flight: the database extracts the next while this process decides). */
  chunkDays?: number;
}

export interface ReplayExample {
  eventId: string;
  at: string;
  user: string;
  action: string;
  workflow: string | null;
  before: { level: Level; ruleIds: string[] };
  after: { level: Level; ruleIds: string[]; reason: string };
}

export interface ReplayResult {
  from: string;
  to: string;
  days: number;
  /** Decisions decided again. */
  replayed: number;
  /** Decision events without recorded inputs (written before the gate recorded them). */
  notReplayable: number;
  /** Decided at another level now. */
  changed: number;
  stricter: number;
  looser: number;
  /** Same level, other rules. */
  sameLevelOtherRules: number;
  approvalsPerDay: { before: number; after: number; delta: number };
  transitions: { from: Level; to: Level; count: number }[];
  byAction: { action: string; changed: number; stricter: number; looser: number }[];
  byUser: { user: string; changed: number; stricter: number; looser: number }[];
  byWorkflow: { workflow: string | null; changed: number; stricter: number; looser: number }[];
  examples: ReplayExample[];
  changedEventIds?: string[];
}

const DAY = 86_400_000;
const KNOWN = new Set<string>(ACTION_TYPE_NAMES);

interface Row {
  id: string;
  at: Date;
  action: string;
  connector: string | null;
  level: Level;
  canonical: string;
}

interface Tally {
  changed: number;
  stricter: number;
  looser: number;
}

function bump<K>(map: Map<K, Tally>, key: K, delta: number) {
  let t = map.get(key);
  if (!t) map.set(key, (t = { changed: 0, stricter: 0, looser: 0 }));
  t.changed++;
  if (delta > 0) t.stricter++;
  else t.looser++;
}

export async function replayPolicy(ds: DataSource, o: ReplayOptions): Promise<ReplayResult> {
  const days = o.days ?? 180;
  const to = o.now ?? new Date();
  const from = new Date(to.getTime() - days * DAY);
  const compiled = compilePolicy(o.policy);
  const chunk = (o.chunkDays ?? 7) * DAY;
  const ranges: [Date, Date][] = [];
  for (let t = from.getTime(); t < to.getTime(); t += chunk) ranges.push([new Date(t), new Date(Math.min(t + chunk, to.getTime()))]);

  // The events as stored (their canonical text): the parts a decision needs are cut out here, which is
  // several times cheaper than having the database parse each event's JSON.
  const read = (r: [Date, Date]): Promise<Row[]> =>
    inOrg(ds, { orgId: o.orgId }, (em) =>
      em.query(
        `SELECT id, occurred_at AS at, action, connector, level, canonical FROM audit_events
          WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND actor_type = 'agent_task'
            AND decision IN ('allowed', 'allowed_reversible', 'watched_pending', 'denied')`,
        [o.orgId, r[0], r[1]],
      ),
    );

  let replayed = 0;
  let notReplayable = 0;
  let stricter = 0;
  let looser = 0;
  let sameLevelOtherRules = 0;
  let watchedBefore = 0;
  let watchedAfter = 0;
  const transitions = new Map<string, number>();
  const byAction = new Map<string, Tally>();
  const byUser = new Map<string, Tally>();
  const byWorkflow = new Map<string | null, Tally>();
  const examples: ReplayExample[] = [];
  const exampleKinds = new Set<string>();
  const changedIds: string[] = [];
  const want = o.examples ?? 20;

  let next = ranges.length ? read(ranges[0]) : Promise.resolve([] as Row[]);
  for (let i = 0; i < ranges.length; i++) {
    const rows = await next;
    if (i + 1 < ranges.length) next = read(ranges[i + 1]);
    for (const r of rows) {
      const inputs = KNOWN.has(r.action) ? decisionInputs(r.canonical) : null;
      if (!inputs) {
        notReplayable++;
        continue;
      }
      if (o.policyVersion !== undefined && inputs.policy !== o.policyVersion) continue;
      const { facts, ruleIds, noReversibleForm } = inputs;
      const d = decideRecorded(compiled, facts, r.action as ActionType, r.connector, new Date(r.at));
      const level: Level = d.level === 'batched' && noReversibleForm ? 'watched' : d.level;
      replayed++;
      if (r.level === 'watched') watchedBefore++;
      if (level === 'watched') watchedAfter++;
      if (level === r.level) {
        if (!sameRules(ruleIds, d.ruleIds)) sameLevelOtherRules++;
        continue;
      }
      const delta = rank(level) - rank(r.level);
      if (delta > 0) stricter++;
      else looser++;
      const t = `${r.level}>${level}`;
      transitions.set(t, (transitions.get(t) ?? 0) + 1);
      bump(byAction, r.action, delta);
      bump(byUser, facts.user, delta);
      bump(byWorkflow, facts.workflow ?? null, delta);
      if (o.listChanged) changedIds.push(r.id);
      // Examples: the first of each (action, from, to), then any, up to the number asked.
      const kind = `${r.action}:${t}`;
      if (examples.length < want && (!exampleKinds.has(kind) || examples.length < want / 2)) {
        exampleKinds.add(kind);
        examples.push({
          eventId: r.id,
          at: new Date(r.at).toISOString(),
          user: facts.user,
          action: r.action,
          workflow: facts.workflow ?? null,
          before: { level: r.level, ruleIds },
          after: { level, ruleIds: d.ruleIds, reason: d.reason },
        });
      }
    }
  }
  const top = <K>(m: Map<K, Tally>, n: number) => [...m].sort((a, b) => b[1].changed - a[1].changed).slice(0, n);
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    days,
    replayed,
    notReplayable,
    changed: stricter + looser,
    stricter,
    looser,
    sameLevelOtherRules,
    approvalsPerDay: { before: round(watchedBefore / days), after: round(watchedAfter / days), delta: round((watchedAfter - watchedBefore) / days) },
    transitions: [...transitions].map(([k, count]) => {
      const [f, t] = k.split('>') as [Level, Level];
      return { from: f, to: t, count };
    }),
    byAction: top(byAction, 50).map(([action, t]) => ({ action, ...t })),
    byUser: top(byUser, 50).map(([user, t]) => ({ user, ...t })),
    byWorkflow: top(byWorkflow, 50).map(([workflow, t]) => ({ workflow, ...t })),
    examples,
    ...(o.listChanged ? { changedEventIds: changedIds } : {}),
  };
}

/** The end (exclusive) of the JSON string whose opening quote is at `i`. */
function stringEnd(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === 92) j += 2; // a backslash escapes the next character
    else if (c === 34) return j + 1;
    else j++;
  }
  return text.length;
}

/** The end (exclusive) of the JSON value starting at `i` (an object, array, string or literal). */
function valueEnd(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === 34) return stringEnd(text, i);
  if (first !== 123 && first !== 91) return literalEnd(text, i);
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 34) j = stringEnd(text, j) - 1;
    else if (c === 123 || c === 91) depth++;
    else if ((c === 125 || c === 93) && --depth === 0) return j + 1;
  }
  return text.length;
}

/** A literal (number, true, false, null) at `i`: up to the next comma or closing bracket. */
function literalEnd(text: string, i: number): number {
  let j = i;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === 44 || c === 125 || c === 93) break;
    j++;
  }
  return j;
}

/**
 * The decision's recorded inputs, cut out of the stored canonical JSON (RFC 8785: keys in a fixed
 * order, no whitespace, a quote inside a string always escaped — so a key written `"facts":{"amount":`
 * is structural wherever it appears, and the first one is the payload's).
 */
export function decisionInputs(canonical: string): { facts: RecordedFacts; ruleIds: string[]; noReversibleForm: boolean; policy: number | null } | null {
  const f = canonical.indexOf('"facts":{"amount":');
  if (f < 0) return null;
  const fStart = f + 8;
  const fEnd = valueEnd(canonical, fStart);
  const r = canonical.indexOf('"ruleIds":[', fEnd);
  if (r < 0) return null;
  const rStart = r + 10;
  const rEnd = valueEnd(canonical, rStart);
  const nrf = canonical.indexOf('"noReversibleForm":true', fEnd);
  const p = canonical.lastIndexOf('"policy":');
  const policy = p > rEnd ? Number(canonical.slice(p + 9, literalEnd(canonical, p + 9))) : null;
  return {
    facts: JSON.parse(canonical.slice(fStart, fEnd)) as RecordedFacts,
    ruleIds: JSON.parse(canonical.slice(rStart, rEnd)) as string[],
    noReversibleForm: nrf >= 0 && nrf < r,
    policy: Number.isFinite(policy) ? policy : null,
  };
}

function sameRules(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const round = (v: number) => Math.round(v * 100) / 100;
