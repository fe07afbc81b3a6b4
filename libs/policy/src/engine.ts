import { ACTION_TYPE_NAMES, ACTION_TYPES, type ActionType, type ActionTypeSpec, floorOf, type Level, LEVELS, type Obligation, rank } from './catalog';
import type { ApprovalRoute, Conditions, PolicyDocument, RateLimit } from './document';
import { type ActionContext, asciiDomain, decisionFacts, domainInSet, type Facts, localDayMinute, minutesOf, type OrgInfo, type PolicyPrincipal, eachValue, SPLIT_MAX, type SplitKey, type SplitList, splitKeys, toFacts } from './facts';
import { globToRegExp } from './glob';

/**
 * Resolution (see the README): catalog default → org baseline → org rules → group rules →
 * workflow rules → user rules. The most specific scope with a matching rule decides;
 * within a scope (all of the user's groups together count as one) the most restrictive
 * matching rule wins. Then the org's guards (org rules marked `guard`), the floor of the action
 * type, the org's forbidden areas and exceeded rate limits can only raise the level.
 *
 * An action that names several resources, hosts, recipient domains or labels is decided for each
 * of them alone, and the most restrictive of those decisions stands (decideEach): a condition
 * matches a value, so a rule that lowers a level applies only when every value the action names is
 * one it was written for (a file moved out of a Watched folder into an Autonomous one is Watched),
 * while a rule or area that raises it applies as soon as one value is.
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
  /** For decide(): the conditions (null: none), the level's rank, the position among all rules by id. */
  cond: Cond | null;
  rank: number;
  order: number;
  /** The rule's obligations as a bit set (OB_BITS), -1 when one is not a known obligation. */
  obMask: number;
  /** The reason of a decision this rule alone produced and nothing raised. */
  decided: string;
}

interface CompiledArea {
  id: string;
  reason: string;
  matches: Matcher;
  cond: Cond | null;
}

interface CompiledLimit {
  id: string;
  level: Level;
  rank: number;
  /** The note when it raises the level. */
  raise: string;
}

interface PerAction {
  base: { id: string; level: Level; reason: string };
  tiers: Record<Tier, CompiledRule[]>;
  /** group / workflow / user rules by scope id, each list in document order. */
  byScope: { group: Map<string | null, CompiledRule[]>; workflow: Map<string | null, CompiledRule[]>; user: Map<string | null, CompiledRule[]> };
  /** The org's guard rules of the action (they only raise, after the scopes), sorted by id (stable). */
  guards: CompiledRule[];
  /** Sorted by id (stable). */
  areas: CompiledArea[];
  limits: RateLimit[];
  /** `limits` sorted by id (stable). */
  sortedLimits: RateLimit[];
  routes: ApprovalRoute[];
  /** The lists some rule's conditions test, each with a test per rule's and area's condition on it (decideEach). */
  split: SplitList[];
  /** What decide() precomputes: see decideCompiled. */
  fast: {
    baseRank: number;
    /** The reason when the base level stands and nothing raised it. */
    baseDecided: string;
    floor: Level | null;
    floorRank: number;
    floorId: string;
    floorNote: string;
    limits: CompiledLimit[];
    /** The catalog's obligations of the action as a bit set, at Batched and at other levels. */
    specMaskBatched: number;
    specMaskOther: number;
  };
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
  stage: 'base' | Tier | 'guard' | 'floor' | 'forbidden_area' | 'rate_limit';
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

/**
 * Conditions compiled to one record (absent conditions null or undefined) that one function
 * tests: no closure per condition, nothing allocated per test. The checks run in the order the
 * README lists the conditions, the cheap ones first.
 */
interface Cond {
  connectors: Set<string> | null;
  resources: RegExp[] | null;
  hosts: RegExp[] | null;
  recipients: string | null;
  recipientDomains: Set<string> | null;
  invitesOthers: boolean | undefined;
  labels: Set<string> | null;
  tainted: boolean | undefined;
  amountAbove: number | undefined;
  time: TimeCond | null;
}

interface TimeCond {
  zone: string;
  /** Bit d set for each ISO weekday d of the window. */
  days: number;
  from: number;
  to: number;
  outside: boolean;
}

function compileCond(when: Conditions): Cond {
  let time: TimeCond | null = null;
  if (when.timeWindow) {
    const w = when.timeWindow;
    let days = 0;
    // (Only 1–7 can equal a weekday the clock gives.)
    for (const d of new Set(w.days)) if (typeof d === 'number' && Number.isInteger(d) && d >= 1 && d <= 7) days |= 1 << d;
    time = { zone: w.timeZone, days, from: minutesOf(w.from), to: minutesOf(w.to), outside: !!w.outside };
  }
  return {
    connectors: when.connectors ? new Set(when.connectors) : null,
    resources: when.resources ? when.resources.map(globToRegExp) : null,
    hosts: when.hosts ? when.hosts.map((h) => globToRegExp(asciiDomain(h))) : null,
    recipients: when.recipients ? when.recipients : null,
    recipientDomains: when.recipientDomains ? new Set(when.recipientDomains.map(asciiDomain)) : null,
    invitesOthers: when.invitesOthers,
    labels: when.labels ? new Set(when.labels) : null,
    tainted: when.tainted,
    amountAbove: when.amountAbove,
    time,
  };
}

/** `this` matches x (the regular expressions of a glob condition): for Array.prototype.some. */
function anyRegExp(this: RegExp[], x: string): boolean {
  for (let i = 0; i < this.length; i++) if (this[i].test(x)) return true;
  return false;
}
function inSet(this: Set<string>, x: string): boolean {
  return this.has(x);
}

function inDomainSet(this: Set<string>, d: string): boolean {
  return domainInSet(this, d);
}

function inWindow(w: TimeCond, at: Date): boolean {
  const clock = localDayMinute(at, w.zone);
  const day = Math.floor(clock / 1440);
  const minute = clock - day * 1440;
  const inTime = w.from < w.to ? minute >= w.from && minute < w.to : minute >= w.from || minute < w.to;
  const inside = ((w.days >> day) & 1) === 1 && inTime;
  return w.outside ? !inside : inside;
}

function matchCond(c: Cond, f: Facts): boolean {
  if (c.connectors !== null && (f.connector === null || !c.connectors.has(f.connector))) return false;
  if (c.resources !== null && !f.resources.some(anyRegExp, c.resources)) return false;
  if (c.hosts !== null && !f.hosts.some(anyRegExp, c.hosts)) return false;
  if (c.recipients !== null && f.recipientScope !== c.recipients) return false;
  if (c.recipientDomains !== null && !f.recipientDomains.some(inDomainSet, c.recipientDomains)) return false;
  if (c.invitesOthers !== undefined && f.invitesOthers !== c.invitesOthers) return false;
  if (c.labels !== null && !f.labels.some(inSet, c.labels)) return false;
  if (c.tainted !== undefined && f.tainted !== c.tainted) return false;
  if (c.amountAbove !== undefined && !(f.amount !== null && f.amount > c.amountAbove)) return false;
  if (c.time !== null && !inWindow(c.time, f.at)) return false;
  return true;
}

const always: Matcher = () => true;

export function compileConditions(when: Conditions | undefined): Matcher {
  if (!when) return always;
  const c = compileCond(when);
  return (f) => matchCond(c, f);
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
      guards: [],
      areas: [],
      limits: document.rateLimits.filter((r) => r.actions.includes(action)),
      sortedLimits: [],
      routes: document.approvals.filter((r) => r.actions.includes(action)).sort((a, b) => a.id.localeCompare(b.id)),
      split: [],
      fast: { baseRank: 0, baseDecided: '', floor: null, floorRank: -1, floorId: '', floorNote: '', limits: [], specMaskBatched: 0, specMaskOther: 0 },
    };
  }
  let idx = 0;
  const all: CompiledRule[] = [];
  for (const rule of document.rules) {
    const cond = rule.when ? compileCond(rule.when) : null;
    const obligations = rule.obligations ?? [];
    const compiled: CompiledRule = {
      idx: idx++,
      id: rule.id,
      tier: rule.scope.type,
      scopeId: rule.scope.type === 'org' ? null : rule.scope.id,
      level: rule.level,
      reason: rule.reason,
      obligations,
      matches: cond ? (f) => matchCond(cond, f) : always,
      cond,
      rank: rank(rule.level),
      order: 0,
      obMask: obligationMask(obligations),
      decided: decidedReason(rule.level, [rule.id], [rule.reason]),
    };
    all.push(compiled);
    // A guard takes no part in the scopes: it raises what they decided (see guardOf).
    for (const a of new Set(rule.actions)) {
      const per = actions[a as ActionType];
      if (per) (rule.guard ? per.guards : per.tiers[compiled.tier]).push(compiled);
    }
  }
  // Ties are listed by id (localeCompare, stable): the same order for any subset of the rules.
  all.sort(byId).forEach((r, i) => (r.order = i));
  for (const area of document.forbiddenAreas) {
    const cond = area.when ? compileCond(area.when) : null;
    const compiled: CompiledArea = { id: area.id, reason: area.reason, matches: cond ? (f) => matchCond(cond, f) : always, cond };
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
    per.guards.sort(byId);
    const rules = [...per.tiers.org, ...per.tiers.group, ...per.tiers.workflow, ...per.tiers.user, ...per.guards];
    // Only a rule's condition can lower a level; guards and forbidden areas (which only raise) match any value already.
    for (const key of splitKeys(document, action)) {
      const conds = [...rules.map((r) => r.cond), ...per.areas.map((a) => a.cond)].filter((c): c is Cond => c !== null && c[key] !== null);
      per.split.push({ key, tests: conds.map((c) => (v: string) => valueMeets(key, c, v)) });
    }
    per.sortedLimits = [...per.limits].sort((a, b) => a.id.localeCompare(b.id));
    const floor = floorOf(action) ?? null;
    const spec = (ACTION_TYPES[action] as ActionTypeSpec).obligations ?? [];
    per.fast = {
      baseRank: rank(per.base.level),
      baseDecided: decidedReason(per.base.level, [per.base.id], [per.base.reason]),
      floor,
      floorRank: floor ? rank(floor) : -1,
      floorId: `floor.${action}`,
      floorNote: floor ? `raised to ${LABEL[floor]} by the floor of ${action}` : '',
      limits: per.sortedLimits.map((l) => ({ id: l.id, level: l.then, rank: rank(l.then), raise: `raised to ${LABEL[l.then]}: ${l.reason} (over ${l.max} per ${l.per})` })),
      specMaskBatched: obligationMask(spec),
      specMaskOther: obligationMask(spec.filter((o) => o !== 'reversible_form')),
    };
  }
  return { document, actions };
}

/** The reason of a decision nothing raised (as evaluate() writes it). */
function decidedReason(level: Level, ruleIds: string[], reasons: string[]): string {
  return `${LABEL[level]}: ${reasons.join('; ')} (rule ${ruleIds.join(', ')})`;
}

/** Obligations as bits, numbered in their sort order, so that a set of them is one number. */
const OB_BITS: Record<Obligation, number> = { keep_undo_copy: 1, redact_personal_data: 2, reversible_form: 4 };
const OB_NAMES: Obligation[] = ['keep_undo_copy', 'redact_personal_data', 'reversible_form'];
/** The sorted list of each set. */
const OB_LISTS: Obligation[][] = Array.from({ length: 8 }, (_, m) => OB_NAMES.filter((_, b) => m & (1 << b)));

function obligationMask(obligations: readonly string[]): number {
  let mask = 0;
  for (const o of obligations) {
    const bit = Object.prototype.hasOwnProperty.call(OB_BITS, o) ? OB_BITS[o as Obligation] : 0;
    if (!bit) return -1;
    mask |= bit;
  }
  return mask;
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

/**
 * The org's guards that match the facts, at the most restrictive level among them (their ids
 * sorted), with the note for when they raise the level; null when none matches. A guard never
 * lowers: the caller applies it only above the level the scopes decided.
 */
function guardOf(per: PerAction, f: Facts): { level: Level; ids: string[]; raise: string } | null {
  let top: CompiledRule[] | null = null;
  for (const g of per.guards) {
    if (g.cond !== null && !matchCond(g.cond, f)) continue;
    if (top === null || g.rank > top[0].rank) top = [g];
    else if (g.rank === top[0].rank) top.push(g);
  }
  if (top === null) return null;
  return { level: top[0].level, ids: top.map((g) => g.id), raise: `raised to ${LABEL[top[0].level]} by the org's guard: ${top.map((g) => g.reason).join('; ')}` };
}

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

  const guard = guardOf(per, f);
  if (guard !== null && rank(guard.level) > rank(level)) {
    level = guard.level;
    extra.push(...guard.ids);
    raised.push(guard.raise);
    if (withSteps) steps.push({ stage: 'guard', ruleIds: guard.ids, level, effect: 'raised', note: guard.raise });
  }
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

/*
 * decide(): the same decision as evaluate(…, false) (explain() without its steps; the tests hold
 * them to each other), computed without the steps and with as little allocated as possible:
 * the winners of a tier are tracked as one rule (plus a list only on a tie), levels as ranks,
 * obligations as bit sets, and the reason of the common case (one rule or the base decides,
 * nothing raises) is precomputed per rule.
 */

// The winners of the tier being scanned (decide() is synchronous and never re-entered).
let wRule: CompiledRule | null = null;
let wRank = -2;
let wTies: CompiledRule[] | null = null;

function scan(list: readonly CompiledRule[], f: Facts): void {
  for (let i = 0; i < list.length; i++) {
    const rule = list[i];
    if (rule.cond !== null && !matchCond(rule.cond, f)) continue;
    if (wRule === null || rule.rank > wRank) {
      wRule = rule;
      wRank = rule.rank;
      wTies = null;
    } else if (rule.level === wRule.level) {
      if (wTies === null) wTies = [wRule, rule];
      else wTies.push(rule);
    }
  }
}

const byOrder = (a: CompiledRule, b: CompiledRule) => a.order - b.order;

/** The rules of the most specific tier with a match (most restrictive first); false when none. */
function scanTiers(per: PerAction, f: Facts): boolean {
  wRule = null;
  wRank = -2;
  wTies = null;
  const user = per.byScope.user;
  if (user.size !== 0) {
    const list = user.get(f.userId);
    if (list !== undefined) scan(list, f);
    if (wRule !== null) return true;
  }
  const workflow = per.byScope.workflow;
  if (workflow.size !== 0) {
    const list = workflow.get(f.workflow);
    if (list !== undefined) scan(list, f);
    if (wRule !== null) return true;
  }
  const group = per.byScope.group;
  if (group.size !== 0) {
    const groups = f.groups;
    outer: for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      for (let j = 0; j < i; j++) if (groups[j] === g) continue outer;
      const list = group.get(g);
      if (list !== undefined) scan(list, f);
    }
    if (wRule !== null) return true;
  }
  scan(per.tiers.org, f);
  return wRule !== null;
}

function decideCompiled(per: PerAction, f: Facts): Decision {
  const fast = per.fast;
  let level: Level;
  let lrank: number;
  let single: CompiledRule | null = null;
  let ties: CompiledRule[] | null = null;
  if (scanTiers(per, f)) {
    single = wRule!;
    level = single.level;
    lrank = single.rank;
    if (wTies !== null) {
      ties = wTies.sort(byOrder);
      single = null;
    }
  } else {
    level = per.base.level;
    lrank = fast.baseRank;
  }
  wRule = null;
  wTies = null;

  // Raises: the org's guards, the floor, forbidden areas, exceeded rate limits.
  let extra: string[] | null = null;
  let raised: string[] | null = null;
  if (per.guards.length !== 0) {
    const guard = guardOf(per, f);
    if (guard !== null && rank(guard.level) > lrank) {
      level = guard.level;
      lrank = rank(guard.level);
      extra = guard.ids.slice();
      raised = [guard.raise];
    }
  }
  if (fast.floor !== null && fast.floorRank > lrank) {
    level = fast.floor;
    lrank = fast.floorRank;
    (extra ??= []).push(fast.floorId);
    (raised ??= []).push(fast.floorNote);
  }
  const areas = per.areas;
  if (areas.length !== 0) {
    let inArea: CompiledArea[] | null = null;
    for (let i = 0; i < areas.length; i++) {
      const a = areas[i];
      if (a.cond === null || matchCond(a.cond, f)) (inArea ??= []).push(a);
    }
    if (inArea !== null) {
      if (level !== 'forbidden') (raised ??= []).push(`Forbidden area: ${inArea.map((a) => a.reason).join('; ')}`);
      level = 'forbidden';
      lrank = 3;
      extra ??= [];
      for (const a of inArea) extra.push(a.id);
    }
  }
  if (f.rateExceeded.length && fast.limits.length) {
    for (const limit of fast.limits) {
      if (!f.rateExceeded.includes(limit.id)) continue;
      if (limit.rank > lrank) {
        level = limit.level;
        lrank = limit.rank;
        (raised ??= []).push(limit.raise);
      }
      (extra ??= []).push(limit.id);
    }
  }

  // Rule ids and reason.
  let ruleIds: string[];
  let reason: string;
  if (extra === null && ties === null) {
    if (single !== null) {
      ruleIds = [single.id];
      reason = single.decided;
    } else {
      ruleIds = [per.base.id];
      reason = fast.baseDecided;
    }
  } else {
    const ids = single !== null ? [single.id] : ties !== null ? ties.map((w) => w.id) : [per.base.id];
    ruleIds = extra !== null ? ids.concat(extra) : ids;
    const because = raised !== null ? raised.join('; ') : single !== null ? [single.reason].join('; ') : ties !== null ? ties.map((w) => w.reason).join('; ') : [per.base.reason].join('; ');
    reason = `${LABEL[level]}: ${because} (rule ${ruleIds.join(', ')})`;
  }

  // Obligations: the deciding rules' and the catalog's (reversible_form at Batched), sorted.
  let obligations: Obligation[] = [];
  if (level !== 'forbidden') {
    let mask = level === 'batched' ? fast.specMaskBatched : fast.specMaskOther;
    if (single !== null) mask = single.obMask < 0 ? -1 : mask | single.obMask;
    else if (ties !== null) for (const w of ties) mask = w.obMask < 0 || mask < 0 ? -1 : mask | w.obMask;
    if (mask > 0) obligations = OB_LISTS[mask].slice();
    else if (mask < 0) {
      const set = new Set<Obligation>(single !== null ? single.obligations : ties!.flatMap((w) => w.obligations));
      for (const o of (ACTION_TYPES[f.type] as ActionTypeSpec).obligations ?? []) if (o !== 'reversible_form' || level === 'batched') set.add(o);
      obligations = [...set].sort();
    }
  }
  let routing: ApprovalRouting | null = null;
  if (level === 'watched') {
    const route = per.routes[0];
    routing = route ? { routeId: route.id, approverGroup: route.approverGroup, quorum: route.quorum } : { routeId: null, approverGroup: null, quorum: 1 };
  }
  return { action: f.type, level, ruleIds, reason, routing, obligations };
}

/** Whether one value of a dimension meets a condition on it. */
function valueMeets(key: SplitKey, c: Cond, v: string): boolean {
  switch (key) {
    case 'resources':
      return anyRegExp.call(c.resources!, v);
    case 'hosts':
      return anyRegExp.call(c.hosts!, v);
    case 'recipientDomains':
      return domainInSet(c.recipientDomains!, v);
    case 'labels':
      return c.labels!.has(v);
  }
}

/** Obligations that protect data whatever the level (kept from every decision of an action decided value by value). */
const KEPT_OBLIGATIONS: ReadonlySet<Obligation> = new Set<Obligation>(['keep_undo_copy', 'redact_personal_data']);

/**
 * The action decided for each value it names alone (each combination, where several lists have
 * values the conditions tell apart: eachValue), the most restrictive decision standing (among
 * equals, the one whose rule ids come first, whatever order the values came in), with the
 * data-protecting obligations of every decision that lets it run. One decision when nothing needs
 * splitting; past SPLIT_MAX combinations, Forbidden.
 */
function decideEach<D extends Decision>(per: PerAction, f: Facts, one: (f: Facts) => D): D {
  if (per.split.length === 0) return one(f);
  const each = eachValue(f, per.split);
  if (each === null) return tooMany(one(f));
  if (each.length === 1) return one(each[0]);
  let best: D | null = null;
  let bestKey = '';
  const kept = new Set<Obligation>();
  for (const g of each) {
    const d = one(g);
    if (d.level !== 'forbidden') for (const o of d.obligations) if (KEPT_OBLIGATIONS.has(o)) kept.add(o);
    const key = d.ruleIds.join('\u0000');
    if (best === null || rank(d.level) > rank(best.level) || (d.level === best.level && key < bestKey)) {
      best = d;
      bestKey = key;
    }
  }
  const b = best!;
  if (b.level !== 'forbidden') {
    const all = new Set<Obligation>([...b.obligations, ...kept]);
    if (all.size !== b.obligations.length) b.obligations = [...all].sort();
  }
  return b;
}

/** Too many combinations to decide one by one: refused. */
function tooMany<D extends Decision>(d: D): D {
  if (d.level === 'forbidden' && d.ruleIds.includes('split_limit')) return d;
  return {
    ...d,
    level: 'forbidden',
    ruleIds: [...d.ruleIds, 'split_limit'],
    reason: `Forbidden: the action names more than ${SPLIT_MAX} combinations of resources, hosts, recipient domains and labels that the policy tells apart, too many to decide one by one (${d.reason})`,
    routing: null,
    obligations: [],
  };
}

export function decideFacts(policy: CompiledPolicy, facts: Facts): Decision {
  const per = policy.actions[facts.type];
  return decideEach(per, facts, (f) => decideCompiled(per, f));
}

/** The decision for one action. */
export function decide(policy: CompiledPolicy, principal: PolicyPrincipal, action: ActionType, context: ActionContext, org: OrgInfo): Decision {
  return decideFacts(policy, decisionFacts(principal, action, context, org));
}

/** Decides on facts already normalised (a recorded decision replayed: see recorded.ts). */
export function decideOnFacts(policy: CompiledPolicy, facts: Facts): Decision {
  return decideFacts(policy, facts);
}

/** The decision with the whole chain, for "why was this Watched?" (of the value that decided, where the action names several). */
export function explain(policy: CompiledPolicy, principal: PolicyPrincipal, action: ActionType, context: ActionContext, org: OrgInfo): Explanation {
  const f = toFacts(principal, action, context, org);
  return decideEach(policy.actions[f.type], f, (g) => evaluate(policy, g, true) as Explanation);
}

/** Rate limits the gate must reserve before deciding this action. */
export function rateLimitsFor(policy: CompiledPolicy, action: ActionType): RateLimit[] {
  return policy.actions[action].limits;
}

export { LEVELS };
