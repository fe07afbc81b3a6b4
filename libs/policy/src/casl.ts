import { buildMongoQueryMatcher, createMongoAbility, type MongoAbility, type MongoQuery, type RawRuleOf, subject as asSubject } from '@casl/ability';
import { $and, $or, and, or } from '@ucast/mongo2js';
import { ACTION_TYPE_NAMES, ACTION_TYPES, type ActionTypeSpec, floorOf, type Level, rank } from './catalog';
import type { Conditions, PolicyDocument } from './document';
import { asciiDomain, domainInSet, eachValue, type Facts, localClock, minutesOf, type SplitKey, type SplitList, splitKeys, withParentDomains } from './facts';
import { globToRegExpSource } from './glob';

/**
 * The policy as a CASL ability: `can('execute', AgentAction at level L)` holds exactly
 * when L is at or above the decided level (and never for Forbidden). CASL's rule order
 * gives the resolution: rules defined later win, so scopes go from general to specific,
 * rules within a scope from least to most restrictive, and the org's guards, floors, forbidden
 * areas and rate limits last.
 */
export type AgentActionSubject = Record<string, unknown>;
export type PolicyAbility = MongoAbility<['execute', 'AgentAction']>;

const RUNNABLE: Level[] = ['autonomous', 'batched', 'watched'];
const atOrAbove = (l: Level) => RUNNABLE.filter((x) => rank(x) >= rank(l));
const below = (l: Level) => RUNNABLE.filter((x) => rank(x) < rank(l));

export interface CompiledAbility {
  ability: PolicyAbility;
  timeZones: string[];
  /** Per action type, the lists some rule of it has a condition on, with a test per rule's and area's condition (an action naming several values is checked for each alone). */
  split: Partial<Record<string, SplitList[]>>;
}

function anyMatch(globs: string[]): string {
  return globs.map((g) => `(?:${globToRegExpSource(g)})`).join('|');
}

function conditionsOf(when: Conditions | undefined, tz: string[]): MongoQuery[] {
  if (!when) return [];
  const out: MongoQuery[] = [];
  if (when.connectors) out.push({ connector: { $in: when.connectors } });
  if (when.resources) out.push({ resources: { $regex: anyMatch(when.resources) } } as MongoQuery);
  if (when.hosts) out.push({ hosts: { $regex: anyMatch(when.hosts.map((h) => h.toLowerCase())) } } as MongoQuery);
  if (when.recipients) out.push({ recipientScope: when.recipients });
  if (when.recipientDomains) out.push({ recipientDomains: { $in: when.recipientDomains.map(asciiDomain) } } as MongoQuery);
  if (when.invitesOthers !== undefined) out.push({ invitesOthers: when.invitesOthers });
  if (when.labels) out.push({ labels: { $in: when.labels } } as MongoQuery);
  if (when.tainted !== undefined) out.push({ tainted: when.tainted });
  if (when.amountAbove !== undefined) out.push({ amount: { $gt: when.amountAbove } });
  if (when.timeWindow) {
    const w = when.timeWindow;
    const i = tz.indexOf(w.timeZone);
    const d = `clock${i}d`;
    const m = `clock${i}m`;
    const from = minutesOf(w.from);
    const to = minutesOf(w.to);
    const inTime: MongoQuery = from < to ? { $and: [{ [m]: { $gte: from } }, { [m]: { $lt: to } }] } : { $or: [{ [m]: { $gte: from } }, { [m]: { $lt: to } }] };
    const outTime: MongoQuery = from < to ? { $or: [{ [m]: { $lt: from } }, { [m]: { $gte: to } }] } : { $and: [{ [m]: { $lt: from } }, { [m]: { $gte: to } }] };
    out.push(w.outside ? { $or: [{ [d]: { $nin: w.days } }, outTime] } : { $and: [{ [d]: { $in: w.days } }, inTime] });
  }
  return out;
}

type Raw = RawRuleOf<PolicyAbility>;

/** CASL 7's default matcher has no compound operators; conditions here need $and and $or. */
const matcher = buildMongoQueryMatcher({ $and, $or }, { and, or });

function pair(level: Level, base: MongoQuery[]): Raw[] {
  const rules: Raw[] = [];
  const lower = below(level);
  const upper = atOrAbove(level);
  // Both halves carry the same conditions, so whichever matches last decides for every level.
  if (upper.length) rules.push({ action: 'execute', subject: 'AgentAction', conditions: { $and: [...base, { level: { $in: upper } }] } as MongoQuery });
  if (lower.length || !upper.length) {
    rules.push({ action: 'execute', subject: 'AgentAction', inverted: true, conditions: { $and: [...base, ...(lower.length ? [{ level: { $in: lower } }] : [])] } as MongoQuery });
  }
  return rules;
}

export function compileAbility(document: PolicyDocument): CompiledAbility {
  const tz = [...new Set([...document.rules.map((r) => r.when?.timeWindow?.timeZone), ...document.forbiddenAreas.map((a) => a.when?.timeWindow?.timeZone)].filter((z): z is string => !!z))].sort();
  const rules: Raw[] = [];
  for (const action of ACTION_TYPE_NAMES) {
    const level = (document.baseline[action] as Level | undefined) ?? (ACTION_TYPES[action] as ActionTypeSpec).default;
    rules.push(...pair(level, [{ type: action }]));
  }
  const scoped = (type: string) =>
    document.rules
      .filter((r) => r.scope.type === type && !r.guard)
      .slice()
      .sort((a, b) => rank(a.level) - rank(b.level) || a.id.localeCompare(b.id));
  for (const tier of ['org', 'group', 'workflow', 'user'] as const) {
    for (const rule of scoped(tier)) {
      const scope: MongoQuery[] =
        rule.scope.type === 'group'
          ? [{ groups: rule.scope.id } as MongoQuery]
          : rule.scope.type === 'workflow'
            ? [{ workflow: rule.scope.id }]
            : rule.scope.type === 'user'
              ? [{ userId: rule.scope.id }]
              : [];
      rules.push(...pair(rule.level, [{ type: { $in: rule.actions } }, ...scope, ...conditionsOf(rule.when, tz)]));
    }
  }
  // The org's guards, after every scope: they only take levels away (below their own).
  for (const guard of document.rules) {
    const lower = guard.guard ? below(guard.level) : [];
    if (lower.length) rules.push({ action: 'execute', subject: 'AgentAction', inverted: true, conditions: { $and: [{ type: { $in: guard.actions } }, ...conditionsOf(guard.when, tz), { level: { $in: lower } }] } as MongoQuery });
  }
  for (const action of ACTION_TYPE_NAMES) {
    const floor = floorOf(action);
    const lower = floor ? below(floor) : [];
    if (lower.length) rules.push({ action: 'execute', subject: 'AgentAction', inverted: true, conditions: { type: action, level: { $in: lower } } });
  }
  for (const area of document.forbiddenAreas) {
    rules.push({ action: 'execute', subject: 'AgentAction', inverted: true, conditions: { $and: [{ type: { $in: area.actions } }, ...conditionsOf(area.when, tz)] } as MongoQuery });
  }
  for (const limit of document.rateLimits) {
    const lower = below(limit.then);
    rules.push({ action: 'execute', subject: 'AgentAction', inverted: true, conditions: { type: { $in: limit.actions }, rateExceeded: limit.id, level: { $in: lower } } as MongoQuery });
  }
  const split: CompiledAbility['split'] = {};
  for (const action of ACTION_TYPE_NAMES) {
    const keys = splitKeys(document, action);
    if (!keys.length) continue;
    const whens = [...document.rules, ...document.forbiddenAreas].filter((r) => r.actions.includes(action)).map((r) => r.when);
    split[action] = keys.map((key) => ({ key, tests: whens.flatMap((w) => (w?.[key] ? [valueTest(key, w[key])] : [])) }));
  }
  return { ability: createMongoAbility<PolicyAbility>(rules, { conditionsMatcher: matcher }), timeZones: tz, split };
}

/** The CASL subject for an action at a level. */
export function actionSubject(compiled: CompiledAbility, f: Facts, level: Level): AgentActionSubject {
  const s: Record<string, unknown> = {
    type: f.type,
    level,
    userId: f.userId,
    groups: f.groups,
    workflow: f.workflow,
    connector: f.connector,
    resources: f.resources,
    hosts: f.hosts,
    recipientScope: f.recipientScope,
    // With their parent domains: a rule on "competitor.example" covers "mail.competitor.example" (as the engine decides).
    recipientDomains: withParentDomains(f.recipientDomains),
    invitesOthers: f.invitesOthers,
    labels: f.labels,
    tainted: f.tainted,
    amount: f.amount,
    rateExceeded: f.rateExceeded,
  };
  compiled.timeZones.forEach((zone, i) => {
    const { day, minute } = localClock(f.at, zone);
    s[`clock${i}d`] = day;
    s[`clock${i}m`] = minute;
  });
  return asSubject('AgentAction', s);
}

/** A condition on one list, as a test of one value (what CASL's rule matches of that list). */
function valueTest(key: SplitKey, values: string[]): (v: string) => boolean {
  if (key === 'resources' || key === 'hosts') {
    const re = new RegExp(anyMatch(key === 'hosts' ? values.map((h) => h.toLowerCase()) : values));
    return (v) => re.test(v);
  }
  if (key === 'recipientDomains') {
    const domains = new Set(values.map(asciiDomain));
    return (v) => domainInSet(domains, v);
  }
  const set = new Set(values);
  return (v) => set.has(v);
}

/**
 * The final authorisation: may this action run at this level? For each value alone of the lists
 * the policy's rules test (every combination the conditions tell apart), as the engine decides;
 * never past SPLIT_MAX combinations.
 */
export function authorize(compiled: CompiledAbility, f: Facts, level: Level): boolean {
  if (level === 'forbidden') return false;
  const lists = compiled.split[f.type];
  const each = lists ? eachValue(f, lists) : [f];
  if (each === null) return false;
  return each.every((g) => compiled.ability.can('execute', actionSubject(compiled, g, level) as never));
}

/** The lowest level CASL allows (Forbidden when none). */
export function caslLevel(compiled: CompiledAbility, f: Facts): Level {
  for (const level of RUNNABLE) if (authorize(compiled, f, level)) return level;
  return 'forbidden';
}
