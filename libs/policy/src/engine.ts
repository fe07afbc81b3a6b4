import { ACTION_TYPE_NAMES, ACTION_TYPES, type ActionType, type ActionTypeSpec, floorOf, type Level, LEVELS, type Obligation, rank } from './catalog';
import type { ApprovalRoute, Conditions, PolicyDocument, RateLimit } from './document';
import { type ActionContext, type Facts, localClock, minutesOf, type OrgInfo, type PolicyPrincipal, toFacts } from './facts';
import { globToRegExp } from './glob';

/**
 * Resolution (see the README): catalog default → org baseline → org rules → group rules →
 * workflow rules → user rules. The most specific scope with a matching rule decides;
 * within a scope (all of the user's groups together count as one) the most restrictive
 * matching rule wins. Then the floor of the action type, the org's forbidden areas and
 * exceeded rate limits can only raise the level.
 */

export type Tier = 'org' | 'group' | 'workflow' | 'user';
export const TIERS: Tier[] = ['org', 'group', 'workflow', 'user'];

type Matcher = (f: Facts) => boolean;

interface CompiledRule {
  /** Position in the document, to keep document order when several scopes' lists are merged. */
  idx: number;
  id: string;
  tier: Tier;
  scopeId: string | null;
  level: Level;
  reason: string;
  obligations: Obligation[];
  matches: Matcher;
}

interface CompiledArea {
  id: string;
  reason: string;
  matches: Matcher;
}

interface PerAction {
  base: { id: string; level: Level; reason: string };
  tiers: Record<Tier, CompiledRule[]>;
  /** group / workflow / user rules by scope id, each list in document order. */
  byScope: { group: Map<string | null, CompiledRule[]>; workflow: Map<string | null, CompiledRule[]>; user: Map<string | null, CompiledRule[]> };
  /** Sorted by id (stable). */
  areas: CompiledArea[];
  limits: RateLimit[];
  /** `limits` sorted by id (stable). */
  sortedLimits: RateLimit[];
  routes: ApprovalRoute[];
}

export interface CompiledPolicy {
  document: PolicyDocument;
  actions: Record<ActionType, PerAction>;
}

export interface ApprovalRouting {
  routeId: string | null;
  /** The group that decides; null means the org's members with the approver role. */
  approverGroup: string | null;
  quorum: number;
}

export interface DecisionStep {
  stage: 'base' | Tier | 'floor' | 'forbidden_area' | 'rate_limit';
  ruleIds: string[];
  level: Level | null;
  effect: 'set' | 'raised' | 'no_match' | 'unchanged';
  note: string;
}

export interface Decision {
  action: ActionType;
  level: Level;
  /** Rule ids that produced the level, sorted; never empty. */
  ruleIds: string[];
  reason: string;
  routing: ApprovalRouting | null;
  obligations: Obligation[];
}

export interface Explanation extends Decision {
  steps: DecisionStep[];
}

const LABEL: Record<Level, string> = { autonomous: 'Autonomous', batched: 'Batched', watched: 'Watched', forbidden: 'Forbidden' };

export function compileConditions(when: Conditions | undefined): Matcher {
  if (!when) return () => true;
  const checks: Matcher[] = [];
  if (when.connectors) {
    const set = new Set(when.connectors);
    checks.push((f) => f.connector !== null && set.has(f.connector));
  }
  if (when.resources) {
    const res = when.resources.map(globToRegExp);
    checks.push((f) => f.resources.some((r) => res.some((re) => re.test(r))));
  }
  if (when.hosts) {
    const res = when.hosts.map((h) => globToRegExp(h.toLowerCase()));
    checks.push((f) => f.hosts.some((h) => res.some((re) => re.test(h))));
  }
  if (when.recipients) {
    const want = when.recipients;
    checks.push((f) => f.recipientScope === want);
  }
  if (when.recipientDomains) {
    const set = new Set(when.recipientDomains.map((d) => d.toLowerCase()));
    checks.push((f) => f.recipientDomains.some((d) => set.has(d)));
  }
  if (when.invitesOthers !== undefined) {
    const want = when.invitesOthers;
    checks.push((f) => f.invitesOthers === want);
  }
  if (when.labels) {
    const set = new Set(when.labels);
    checks.push((f) => f.labels.some((l) => set.has(l)));
  }
  if (when.tainted !== undefined) {
    const want = when.tainted;
    checks.push((f) => f.tainted === want);
  }
  if (when.amountAbove !== undefined) {
    const min = when.amountAbove;
    checks.push((f) => f.amount !== null && f.amount > min);
  }
  if (when.timeWindow) {
    const w = when.timeWindow;
    const days = new Set(w.days);
    const from = minutesOf(w.from);
    const to = minutesOf(w.to);
    checks.push((f) => {
      const { day, minute } = localClock(f.at, w.timeZone);
      const inTime = from < to ? minute >= from && minute < to : minute >= from || minute < to;
      const inside = days.has(day) && inTime;
      return w.outside ? !inside : inside;
    });
  }
  if (checks.length === 1) return checks[0];
  return (f) => checks.every((c) => c(f));
}

/** Compiles a validated document once per version: rules indexed by action type and tier. */
export function compilePolicy(document: PolicyDocument): CompiledPolicy {
  const actions = {} as Record<ActionType, PerAction>;
  for (const action of ACTION_TYPE_NAMES) {
    const baseline = document.baseline[action] as Level | undefined;
    actions[action] = {
      base: baseline
        ? { id: `baseline.${action}`, level: baseline, reason: `the org baseline for ${action}` }
        : { id: `catalog.${action}`, level: (ACTION_TYPES[action] as ActionTypeSpec).default, reason: `the catalog default for ${action}` },
      tiers: { org: [], group: [], workflow: [], user: [] },
      byScope: { group: new Map(), workflow: new Map(), user: new Map() },
      areas: [],
      limits: document.rateLimits.filter((r) => r.actions.includes(action)),
      sortedLimits: [],
      routes: document.approvals.filter((r) => r.actions.includes(action)).sort((a, b) => a.id.localeCompare(b.id)),
    };
  }
  let idx = 0;
  for (const rule of document.rules) {
    const matches = compileConditions(rule.when);
    const compiled: CompiledRule = {
      idx: idx++,
      id: rule.id,
      tier: rule.scope.type,
      scopeId: rule.scope.type === 'org' ? null : rule.scope.id,
      level: rule.level,
      reason: rule.reason,
      obligations: rule.obligations ?? [],
      matches,
    };
    for (const a of new Set(rule.actions)) actions[a as ActionType]?.tiers[compiled.tier].push(compiled);
  }
  for (const area of document.forbiddenAreas) {
    const compiled = { id: area.id, reason: area.reason, matches: compileConditions(area.when) };
    for (const a of new Set(area.actions)) actions[a as ActionType]?.areas.push(compiled);
  }
  for (const action of ACTION_TYPE_NAMES) {
    const per = actions[action];
    for (const tier of ['group', 'workflow', 'user'] as const) {
      const map = per.byScope[tier];
      for (const rule of per.tiers[tier]) {
        const list = map.get(rule.scopeId);
        if (list) list.push(rule);
        else map.set(rule.scopeId, [rule]);
      }
    }
    per.areas.sort((a, b) => a.id.localeCompare(b.id));
    per.sortedLimits = [...per.limits].sort((a, b) => a.id.localeCompare(b.id));
  }
  return { document, actions };
}

const NONE: readonly CompiledRule[] = [];

/** The rules of a tier that are in scope for the facts, in document order. */
function inScopeRules(per: PerAction, tier: Tier, f: Facts): readonly CompiledRule[] {
  switch (tier) {
    case 'org':
      return per.tiers.org;
    case 'workflow':
      return per.byScope.workflow.size === 0 ? NONE : (per.byScope.workflow.get(f.workflow) ?? NONE);
    case 'user':
      return per.byScope.user.size === 0 ? NONE : (per.byScope.user.get(f.userId) ?? NONE);
    case 'group': {
      const map = per.byScope.group;
      if (map.size === 0) return NONE;
      let only: CompiledRule[] | undefined;
      let merged: CompiledRule[] | undefined;
      for (const g of f.groups) {
        const list = map.get(g);
        if (!list || list === only) continue;
        if (!only) only = list;
        else {
          if (!merged) merged = [...only];
          for (const r of list) merged.push(r);
        }
      }
      if (!merged) return only ?? NONE;
      // Several groups: back to document order, each rule once (as when filtering the tier's list).
      merged.sort((x, y) => x.idx - y.idx);
      const out: CompiledRule[] = [];
      for (const r of merged) if (out.length === 0 || out[out.length - 1] !== r) out.push(r);
      return out;
    }
  }
}

const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);

function evaluate(policy: CompiledPolicy, f: Facts, withSteps: boolean): Decision | Explanation {
  const per = policy.actions[f.type];
  const steps: DecisionStep[] = [];
  let level: Level = per.base.level;
  let ids = [per.base.id];
  let reasons = [per.base.reason];
  let obligations: Obligation[] = [];
  if (withSteps) steps.push({ stage: 'base', ruleIds: ids, level, effect: 'set', note: `${LABEL[level]} is ${per.base.reason}` });

  // The most specific tier with a match decides.
  for (let t = TIERS.length - 1; t >= 0; t--) {
    const tier = TIERS[t];
    let best: Level | null = null;
    let bestRank = -1;
    let winners: CompiledRule[] = [];
    for (const rule of inScopeRules(per, tier, f)) {
      if (!rule.matches(f)) continue;
      const r = rank(rule.level);
      if (best === null || r > bestRank) {
        best = rule.level;
        bestRank = r;
        winners = [rule];
      } else if (rule.level === best) winners.push(rule);
    }
    if (best === null) {
      if (withSteps) steps.push({ stage: tier, ruleIds: [], level: null, effect: 'no_match', note: `no ${tier} rule matches` });
      continue;
    }
    if (winners.length > 1) winners.sort(byId);
    level = best;
    ids = winners.map((w) => w.id);
    reasons = winners.map((w) => w.reason);
    if (winners.length === 1) obligations = winners[0].obligations.length ? [...new Set(winners[0].obligations)] : [];
    else obligations = [...new Set(winners.flatMap((w) => w.obligations))];
    if (withSteps) steps.push({ stage: tier, ruleIds: ids, level, effect: 'set', note: `${LABEL[level]}: ${reasons.join('; ')}` });
    break;
  }
  const extra: string[] = [];
  const raised: string[] = [];

  const floor = floorOf(f.type);
  if (floor && rank(floor) > rank(level)) {
    level = floor;
    extra.push(`floor.${f.type}`);
    raised.push(`raised to ${LABEL[floor]} by the floor of ${f.type}`);
    if (withSteps) steps.push({ stage: 'floor', ruleIds: [`floor.${f.type}`], level, effect: 'raised', note: `${f.type} can never be below ${LABEL[floor]}` });
  }
  let areas: CompiledArea[] | undefined;
  for (const a of per.areas) {
    if (a.matches(f)) (areas ??= []).push(a);
  }
  if (areas) {
    if (level !== 'forbidden') raised.push(`Forbidden area: ${areas.map((a) => a.reason).join('; ')}`);
    level = 'forbidden';
    for (const a of areas) extra.push(a.id);
    if (withSteps) steps.push({ stage: 'forbidden_area', ruleIds: areas.map((a) => a.id), level, effect: 'raised', note: areas.map((a) => a.reason).join('; ') });
  }
  if (f.rateExceeded.length && per.sortedLimits.length) {
    const exceeded = per.sortedLimits.filter((l) => f.rateExceeded.includes(l.id));
    for (const limit of exceeded) {
      if (rank(limit.then) > rank(level)) {
        level = limit.then;
        raised.push(`raised to ${LABEL[limit.then]}: ${limit.reason} (over ${limit.max} per ${limit.per})`);
      }
      extra.push(limit.id);
    }
    if (exceeded.length && withSteps) steps.push({ stage: 'rate_limit', ruleIds: exceeded.map((l) => l.id), level, effect: 'raised', note: `rate limit exceeded: ${exceeded.map((l) => l.id).join(', ')}` });
  }

  const ruleIds = extra.length ? ids.concat(extra) : ids.slice();
  let sortedObligations: Obligation[] = [];
  if (level !== 'forbidden') {
    const specObligations = (ACTION_TYPES[f.type] as ActionTypeSpec).obligations;
    if (obligations.length || (specObligations && specObligations.length)) {
      const all = new Set<Obligation>(obligations);
      for (const o of specObligations ?? []) if (o !== 'reversible_form' || level === 'batched') all.add(o);
      sortedObligations = [...all].sort();
    }
  }
  let routing: ApprovalRouting | null = null;
  if (level === 'watched') {
    const route = per.routes[0];
    routing = route ? { routeId: route.id, approverGroup: route.approverGroup, quorum: route.quorum } : { routeId: null, approverGroup: null, quorum: 1 };
  }
  const because = raised.length ? raised.join('; ') : reasons.join('; ');
  const reason = `${LABEL[level]}: ${because} (rule ${ruleIds.join(', ')})`;
  if (!withSteps) return { action: f.type, level, ruleIds, reason, routing, obligations: sortedObligations };
  return { action: f.type, level, ruleIds, reason, routing, obligations: sortedObligations, steps };
}

export function decideFacts(policy: CompiledPolicy, facts: Facts): Decision {
  return evaluate(policy, facts, false);
}

/** The decision for one action. */
export function decide(policy: CompiledPolicy, principal: PolicyPrincipal, action: ActionType, context: ActionContext, org: OrgInfo): Decision {
  return decideFacts(policy, toFacts(principal, action, context, org));
}

/** The decision with the whole chain, for "why was this Watched?". */
export function explain(policy: CompiledPolicy, principal: PolicyPrincipal, action: ActionType, context: ActionContext, org: OrgInfo): Explanation {
  return evaluate(policy, toFacts(principal, action, context, org), true) as Explanation;
}

/** Rate limits the gate must reserve before deciding this action. */
export function rateLimitsFor(policy: CompiledPolicy, action: ActionType): RateLimit[] {
  return policy.actions[action].limits;
}

export { LEVELS };
