// The same policy in casbin 5 (for reference only), rendered from the deny statements of
// policy-ir.ts, with an allow-and-deny effect:
//
//   [request_definition]  r = sub, obj, act          sub: the normalised facts (+ clocks),
//                                                    obj: the action type, act: the level asked
//   [policy_definition]   p = obj, act, eft, cond
//   [policy_effect]       e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
//   [matchers]            m = r.obj == p.obj && levelIn(r.act, p.act) && eval(p.cond)
//
// One "allow" line per action type (cond `true`) and one "deny" line per deny statement; cond is
// an ABAC expression over r.sub evaluated with casbin's eval(). As in the Cedar form, the level is
// found by asking autonomous, batched, watched in order (first allow wins; none → forbidden).
//
// casbin's expression language has no glob, set or list operators, so the conditions call a few
// registered functions: anyGlob(list, i) (the engine's own glob → RegExp, table i), anyIn(list, i),
// inList(value, i), hasStr(list, i), eqStr(value, i), inNums(value, i) — i indexes tables built
// here, so that no string literal in a cond can be mangled by casbin's "r." / "p." rewriting.
// Unlike Cedar, casbin needs no slot limit and no glob restriction.
import { ACTION_TYPE_NAMES, type Conditions, type Facts, globToRegExp, type Level, localClock, minutesOf, type PolicyDocument } from '@steward/policy';
import { type Enforcer, newEnforcer, newModelFromString } from 'casbin';
import { type Deny, denyStatements, type Pred, RUNNABLE, timeZonesOf } from './policy-ir';

const MODEL = `
[request_definition]
r = sub, obj, act

[policy_definition]
p = obj, act, eft, cond

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.obj == p.obj && levelIn(r.act, p.act) && eval(p.cond)
`;

export interface CasbinPolicy {
  enforcer: Enforcer;
  zones: string[];
  lines: number;
}

class Tables {
  strings: string[] = [];
  sets: Set<string>[] = [];
  globs: RegExp[][] = [];
  nums: Set<number>[] = [];
  str(s: string): number {
    const i = this.strings.indexOf(s);
    return i >= 0 ? i : this.strings.push(s) - 1;
  }
  set(xs: string[]): number {
    return this.sets.push(new Set(xs)) - 1;
  }
  glob(xs: string[]): number {
    return this.globs.push(xs.map(globToRegExp)) - 1;
  }
  numSet(xs: number[]): number {
    return this.nums.push(new Set(xs)) - 1;
  }
}

function conditions(when: Conditions | undefined, zones: string[], t: Tables): string[] {
  if (!when) return [];
  const out: string[] = [];
  if (when.connectors) out.push(`inList(r.sub.connector, ${t.set(when.connectors)})`);
  if (when.resources) out.push(`anyGlob(r.sub.resources, ${t.glob(when.resources)})`);
  if (when.hosts) out.push(`anyGlob(r.sub.hosts, ${t.glob(when.hosts.map((h) => h.toLowerCase()))})`);
  if (when.recipients) out.push(`eqStr(r.sub.recipientScope, ${t.str(when.recipients)})`);
  if (when.recipientDomains) out.push(`anyIn(r.sub.recipientDomains, ${t.set(when.recipientDomains.map((d) => d.toLowerCase()))})`);
  if (when.invitesOthers !== undefined) out.push(`r.sub.invitesOthers == ${when.invitesOthers}`);
  if (when.labels) out.push(`anyIn(r.sub.labels, ${t.set(when.labels)})`);
  if (when.tainted !== undefined) out.push(`r.sub.tainted == ${when.tainted}`);
  if (when.amountAbove !== undefined) out.push(`(r.sub.hasAmount && r.sub.amount > ${when.amountAbove})`);
  if (when.timeWindow) {
    const w = when.timeWindow;
    const i = zones.indexOf(w.timeZone);
    const m = `r.sub.clk${i}m`;
    const from = minutesOf(w.from);
    const to = minutesOf(w.to);
    const inTime = from < to ? `(${m} >= ${from} && ${m} < ${to})` : `(${m} >= ${from} || ${m} < ${to})`;
    const inside = `(inNums(r.sub.clk${i}d, ${t.numSet(w.days)}) && ${inTime})`;
    out.push(w.outside ? `!${inside}` : inside);
  }
  return out;
}

function predicate(p: Pred, zones: string[], t: Tables): string {
  const scope =
    p.scope.type === 'group'
      ? [`hasStr(r.sub.groups, ${t.str(p.scope.id)})`]
      : p.scope.type === 'workflow'
        ? [`eqStr(r.sub.workflow, ${t.str(p.scope.id)})`]
        : p.scope.type === 'user'
          ? [`eqStr(r.sub.userId, ${t.str(p.scope.id)})`]
          : [];
  const all = [...scope, ...conditions(p.when, zones, t)];
  return all.length ? all.join(' && ') : 'true';
}

function cond(d: Deny, zones: string[], t: Tables): string {
  const parts = [...(d.when ? [`(${d.when.map((p) => `(${predicate(p, zones, t)})`).join(' || ')})`] : []), ...(d.rateLimit ? [`hasStr(r.sub.rateExceeded, ${t.str(d.rateLimit)})`] : [])];
  if (d.unless.length) parts.push(`!(${d.unless.map((p) => `(${predicate(p, zones, t)})`).join(' || ')})`);
  return parts.length ? parts.join(' && ') : 'true';
}

export async function compileCasbin(doc: PolicyDocument): Promise<CasbinPolicy> {
  const zones = timeZonesOf(doc);
  const t = new Tables();
  const lines: string[][] = [];
  for (const a of ACTION_TYPE_NAMES) lines.push([a, RUNNABLE.join(' '), 'allow', 'true']);
  for (const d of denyStatements(doc)) lines.push([d.action, d.levels.join(' '), 'deny', cond(d, zones, t)]);
  const enforcer = await newEnforcer(newModelFromString(MODEL));
  const levelSets = new Map<string, Set<string>>();
  enforcer.addFunction('levelIn', (act: string, acts: string) => {
    let s = levelSets.get(acts);
    if (!s) levelSets.set(acts, (s = new Set(acts.split(' '))));
    return s.has(act);
  });
  enforcer.addFunction('anyGlob', (list: string[], i: number) => list.some((x) => t.globs[i].some((re) => re.test(x))));
  enforcer.addFunction('anyIn', (list: string[], i: number) => list.some((x) => t.sets[i].has(x)));
  enforcer.addFunction('inList', (v: string | null, i: number) => v !== null && t.sets[i].has(v));
  enforcer.addFunction('hasStr', (list: string[], i: number) => list.includes(t.strings[i]));
  enforcer.addFunction('eqStr', (v: string | null, i: number) => v === t.strings[i]);
  enforcer.addFunction('inNums', (v: number, i: number) => t.nums[i].has(v));
  await enforcer.addPolicies(lines);
  return { enforcer, zones, lines: lines.length };
}

/** The request subject: the facts plus the clocks of the policy's time zones. */
export function casbinSubject(p: CasbinPolicy, f: Facts): Record<string, unknown> {
  const s: Record<string, unknown> = { ...f, hasAmount: f.amount !== null };
  for (let i = 0; i < p.zones.length; i++) {
    const { day, minute } = localClock(f.at, p.zones[i]);
    s[`clk${i}d`] = day;
    s[`clk${i}m`] = minute;
  }
  return s;
}

export function casbinLevel(p: CasbinPolicy, f: Facts): Level {
  const sub = casbinSubject(p, f);
  for (const level of RUNNABLE) if (p.enforcer.enforceSync(sub, f.type, level)) return level;
  return 'forbidden';
}
