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
  /** [facts, ruleIds, noReversibleForm] as JSON text. */
  p: string | null;
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

  // Only what a decision needs leaves the database: the event's fields and [facts, ruleIds, noReversibleForm].
  const read = (r: [Date, Date]): Promise<Row[]> =>
    inOrg(ds, { orgId: o.orgId }, (em) =>
      em.query(
        `SELECT id, occurred_at AS at, action, connector, level,
                CASE WHEN p ? 'facts' THEN jsonb_build_array(p->'facts', p->'ruleIds', coalesce(p->'noReversibleForm', 'false'))::text END AS p
           FROM (SELECT id, occurred_at, action, connector, level, (canonical::jsonb)->'payload' AS p FROM audit_events
                  WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND actor_type = 'agent_task'
                    AND decision IN ('allowed', 'allowed_reversible', 'watched_pending', 'denied')${o.policyVersion !== undefined ? ' AND ((canonical::jsonb)->>\'policy\')::int = $4' : ''}) x`,
        o.policyVersion !== undefined ? [o.orgId, r[0], r[1], o.policyVersion] : [o.orgId, r[0], r[1]],
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
      if (r.p === null || !KNOWN.has(r.action)) {
        notReplayable++;
        continue;
      }
      const [facts, ruleIds, noReversibleForm] = JSON.parse(r.p) as [RecordedFacts, string[], boolean];
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

function sameRules(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const round = (v: number) => Math.round(v * 100) / 100;
