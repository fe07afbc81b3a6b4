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
  areas: CompiledArea[];
  limits: RateLimit[];
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
      areas: [],
      limits: document.rateLimits.filter((r) => r.actions.includes(action)),
      routes: document.approvals.filter((r) => r.actions.includes(action)).sort((a, b) => a.id.localeCompare(b.id)),
    };
  }
  for (const rule of document.rules) {
    const matches = compileConditions(rule.when);
    const compiled: CompiledRule = {
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
  return { document, actions };
}

function inScope(rule: CompiledRule, f: Facts): boolean {
  switch (rule.tier) {
    case 'org':
      return true;
    case 'group':
      return f.groups.includes(rule.scopeId!);
    case 'workflow':
      return f.workflow === rule.scopeId;
    case 'user':
      return f.userId === rule.scopeId;
  }
}

function evaluate(policy: CompiledPolicy, f: Facts, withSteps: boolean): Explanation {
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
    let winners: CompiledRule[] = [];
    for (const rule of per.tiers[tier]) {
      if (!inScope(rule, f) || !rule.matches(f)) continue;
      if (best === null || rank(rule.level) > rank(best)) {
        best = rule.level;
        winners = [rule];
      } else if (rule.level === best) winners.push(rule);
    }
    if (best === null) {
      if (withSteps) steps.push({ stage: tier, ruleIds: [], level: null, effect: 'no_match', note: `no ${tier} rule matches` });
      continue;
    }
    winners.sort((a, b) => a.id.localeCompare(b.id));
    level = best;
    ids = winners.map((w) => w.id);
    reasons = winners.map((w) => w.reason);
    obligations = [...new Set(winners.flatMap((w) => w.obligations))];
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
  const areas = per.areas.filter((a) => a.matches(f)).sort((a, b) => a.id.localeCompare(b.id));
  if (areas.length) {
    if (level !== 'forbidden') raised.push(`Forbidden area: ${areas.map((a) => a.reason).join('; ')}`);
    level = 'forbidden';
    extra.push(...areas.map((a) => a.id));
    if (withSteps) steps.push({ stage: 'forbidden_area', ruleIds: areas.map((a) => a.id), level, effect: 'raised', note: areas.map((a) => a.reason).join('; ') });
  }
  const exceeded = per.limits.filter((l) => f.rateExceeded.includes(l.id)).sort((a, b) => a.id.localeCompare(b.id));
  for (const limit of exceeded) {
    if (rank(limit.then) > rank(level)) {
      level = limit.then;
      raised.push(`raised to ${LABEL[limit.then]}: ${limit.reason} (over ${limit.max} per ${limit.per})`);
    }
    extra.push(limit.id);
  }
  if (exceeded.length && withSteps) steps.push({ stage: 'rate_limit', ruleIds: exceeded.map((l) => l.id), level, effect: 'raised', note: `rate limit exceeded: ${exceeded.map((l) => l.id).join(', ')}` });

  const ruleIds = [...ids, ...extra];
  const spec = ACTION_TYPES[f.type] as ActionTypeSpec;
  const all = new Set<Obligation>(obligations);
  for (const o of spec.obligations ?? []) if (o !== 'reversible_form' || level === 'batched') all.add(o);
  if (level === 'forbidden') all.clear();
  let routing: ApprovalRouting | null = null;
  if (level === 'watched') {
    const route = per.routes[0];
    routing = route ? { routeId: route.id, approverGroup: route.approverGroup, quorum: route.quorum } : { routeId: null, approverGroup: null, quorum: 1 };
  }
  const because = raised.length ? raised.join('; ') : reasons.join('; ');
  return {
    action: f.type,
    level,
    ruleIds,
    reason: `${LABEL[level]}: ${because} (rule ${ruleIds.join(', ')})`,
    routing,
    obligations: [...all].sort(),
    steps,
  };
}

export function decideFacts(policy: CompiledPolicy, facts: Facts): Decision {
  const { steps: _steps, ...decision } = evaluate(policy, facts, false);
  return decision;
}

/** The decision for one action. */
export function decide(policy: CompiledPolicy, principal: PolicyPrincipal, action: ActionType, context: ActionContext, org: OrgInfo): Decision {
  return decideFacts(policy, toFacts(principal, action, context, org));
}

/** The decision with the whole chain, for "why was this Watched?". */
export function explain(policy: CompiledPolicy, principal: PolicyPrincipal, action: ActionType, context: ActionContext, org: OrgInfo): Explanation {
  return evaluate(policy, toFacts(principal, action, context, org), true);
}

/** Rate limits the gate must reserve before deciding this action. */
export function rateLimitsFor(policy: CompiledPolicy, action: ActionType): RateLimit[] {
  return policy.actions[action].limits;
}

export { LEVELS };
