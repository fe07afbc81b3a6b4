import { to as copyTo } from 'pg-copy-streams';
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
  /** Epoch milliseconds. */
  at: number;
  action: string;
  connector: string | null;
  level: Level;
  /** The canonical text from `"facts":` up to (without) `,"tool":`. */
  seg: string | null;
  /** The text after `"policy":` (when a version was asked for). */
  pv?: string;
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

  const withVersion = o.policyVersion !== undefined;
  const read = (r: [Date, Date]) => readDecisions(ds, o.orgId, r, withVersion);

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
      const inputs = r.seg !== null && KNOWN.has(r.action) ? fromSegment(r.seg) : null;
      if (!inputs) {
        notReplayable++;
        continue;
      }
      if (withVersion && parseInt(r.pv ?? '', 10) !== o.policyVersion) continue;
      const { facts, ruleIds, noReversibleForm } = inputs;
      const at = new Date(r.at);
      const d = decideRecorded(compiled, facts, r.action as ActionType, r.connector, at);
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
          at: at.toISOString(),
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

/** Where the gate's recorded inputs start in a stored event (`amount` is the first key of the facts). */
const FACTS_KEY = '"facts":{"amount":';
const FACTS = Buffer.from(FACTS_KEY);
const TOOL = Buffer.from(',"tool":');
const POLICY = Buffer.from(',"policy":');
const SEP = 0x1f;
const NL = 0x0a;

/**
 * The decision events of a range, streamed with COPY as the stored bytes (fields split by 0x1F,
 * which JSON text never holds raw): only the part from the recorded facts to the rule ids is decoded
 * and parsed here, the rest of each event is never turned into a string.
 */
async function readDecisions(ds: DataSource, orgId: string, range: [Date, Date], withVersion: boolean): Promise<Row[]> {
  if (!/^[0-9a-f-]{36}$/i.test(orgId)) throw new Error('bad org id');
  // COPY takes no parameters: the values are an org id checked above and two ISO timestamps.
  const sql = `COPY (SELECT id, (date_part('epoch', occurred_at) * 1000)::bigint, action, connector, level, canonical FROM audit_events
                 WHERE org_id = '${orgId}' AND occurred_at >= '${range[0].toISOString()}' AND occurred_at < '${range[1].toISOString()}'
                   AND actor_type = 'agent_task' AND decision IN ('allowed', 'allowed_reversible', 'watched_pending', 'denied'))
               TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')`;
  return inOrg(ds, { orgId }, async (em) => {
    const client = (em.queryRunner as unknown as { databaseConnection: { query: (q: unknown) => NodeJS.ReadableStream } }).databaseConnection;
    const rows: Row[] = [];
    let rest: Buffer | null = null;
    for await (const chunk of client.query(copyTo(sql)) as AsyncIterable<Buffer>) {
      const buf: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
      let pos = 0;
      for (;;) {
        const nl = buf.indexOf(NL, pos);
        if (nl < 0) break;
        const f1 = buf.indexOf(SEP, pos);
        const f2 = buf.indexOf(SEP, f1 + 1);
        const f3 = buf.indexOf(SEP, f2 + 1);
        const f4 = buf.indexOf(SEP, f3 + 1);
        const f5 = buf.indexOf(SEP, f4 + 1);
        const fi = buf.indexOf(FACTS, f5 + 1);
        const ti = fi >= 0 && fi < nl ? buf.indexOf(TOOL, fi) : -1;
        let pv: string | undefined;
        if (withVersion && ti >= 0) {
          const p = buf.indexOf(POLICY, ti);
          if (p >= 0 && p < nl) pv = buf.toString('latin1', p + POLICY.length, Math.min(nl, p + POLICY.length + 11));
        }
        rows.push({
          id: buf.toString('latin1', pos, f1),
          at: Number(buf.toString('latin1', f1 + 1, f2)),
          action: buf.toString('latin1', f2 + 1, f3),
          connector: f4 > f3 + 1 ? buf.toString('utf8', f3 + 1, f4) : null,
          level: buf.toString('latin1', f4 + 1, f5) as Level,
          seg: ti >= 0 && ti < nl ? buf.toString('utf8', fi, ti) : null,
          pv,
        });
        pos = nl + 1;
      }
      rest = pos < buf.length ? buf.subarray(pos) : null;
    }
    return rows;
  });
}

/** The payload's keys from the facts up to the rule ids and taint, as one JSON object. */
function fromSegment(seg: string): { facts: RecordedFacts; ruleIds: string[]; noReversibleForm: boolean } | null {
  let p: { facts?: RecordedFacts; ruleIds?: string[]; noReversibleForm?: boolean };
  try {
    p = JSON.parse(`{${seg}}`);
  } catch {
    return null;
  }
  if (!p.facts || !Array.isArray(p.ruleIds)) return null;
  return { facts: p.facts, ruleIds: p.ruleIds, noReversibleForm: p.noReversibleForm === true };
}

/**
 * The decision's recorded inputs, cut out of a stored canonical event the way the replay's query
 * cuts them: RFC 8785 fixes the order of the keys (the payload's `facts`, `labels`, `mcp`,
 * `noReversibleForm`, …, `ruleIds`, `tainted`, `tool`) and escapes every quote inside a string, so
 * `"facts":{"amount":` and `,"tool":` can only be the payload's own keys.
 */
export function decisionInputs(canonical: string): { facts: RecordedFacts; ruleIds: string[]; noReversibleForm: boolean } | null {
  const f = canonical.indexOf(FACTS_KEY);
  if (f < 0) return null;
  const t = canonical.indexOf(',"tool":', f);
  return t < 0 ? null : fromSegment(canonical.slice(f, t));
}

function sameRules(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const round = (v: number) => Math.round(v * 100) / 100;
