/**
 * The policy document as a flat list of "deny" statements, the shape both the Cedar and the
 * casbin translations are rendered from (both are permit-everything + forbid-overrides engines).
 *
 * A request asks "may action type A run at level L?" for L in autonomous → batched → watched; the
 * first allowed L is the decided level, none allowed means Forbidden. decide() gives level D iff
 * "A at L" is allowed exactly for L ≥ D, so it is enough to deny "A at L" for every L < D:
 *
 * - baseline B of A (org baseline, else catalog default): deny L < B unless some rule for A, of
 *   any scope, matches (then a scope decides instead);
 * - rules of scope tier T with level V naming action type A: deny L < V when one of them is in
 *   scope and its conditions hold, unless some rule for A of a more specific tier matches (the
 *   most specific tier with a match decides; within it the most restrictive rule wins because
 *   every matching rule of that tier denies what lies below its own level). Rules of the same
 *   (A, T, V) share one statement, so the `unless` part is written once per group;
 * - the floor F of A: deny L < F always;
 * - forbidden area on A: deny every level when its conditions hold;
 * - rate limit on A exceeded, raising to V: deny L < V.
 *
 * Precedence is thus compiled into the `unless` part of each statement: nothing is computed
 * outside the engine under test but the normalised facts (which decide() computes too).
 */
import { ACTION_TYPE_NAMES, ACTION_TYPES, type ActionType, type ActionTypeSpec, type Conditions, floorOf, type Level, type PolicyDocument, rank, type Rule } from '@steward/policy';

export const RUNNABLE: Level[] = ['autonomous', 'batched', 'watched'];
export const below = (l: Level): Level[] => RUNNABLE.filter((x) => rank(x) < rank(l));
export const TIERS = ['org', 'group', 'workflow', 'user'] as const;

/** A rule's "in scope and conditions hold" (an area is an org-scoped predicate). */
export interface Pred {
  scope: Rule['scope'];
  when?: Conditions;
}

export interface Deny {
  action: ActionType;
  /** Levels this statement denies (never empty). */
  levels: Level[];
  /** Condition: any of these holds; absent = always. */
  when?: Pred[];
  /** Rate limit id that must be in the request's exceeded list. */
  rateLimit?: string;
  /** Disjunction that cancels the statement. */
  unless: Pred[];
  /** Where it comes from (for comments and debugging). */
  origin: string;
}

export function denyStatements(doc: PolicyDocument): Deny[] {
  const out: Deny[] = [];
  const pred = (r: Rule): Pred => ({ scope: r.scope, ...(r.when ? { when: r.when } : {}) });
  for (const a of ACTION_TYPE_NAMES) {
    const byTier = TIERS.map((t) => doc.rules.filter((r) => r.scope.type === t && r.actions.includes(a)));
    const base = (doc.baseline[a] as Level | undefined) ?? (ACTION_TYPES[a] as ActionTypeSpec).default;
    if (below(base).length) out.push({ action: a, levels: below(base), unless: byTier.flat().map(pred), origin: `baseline ${a}` });
    byTier.forEach((rules, t) => {
      const moreSpecific = byTier.slice(t + 1).flat().map(pred);
      for (const level of ['batched', 'watched', 'forbidden'] as const) {
        const group = rules.filter((r) => r.level === level);
        if (group.length) out.push({ action: a, levels: below(level), when: group.map(pred), unless: moreSpecific, origin: `${TIERS[t]} rules at ${level}: ${group.map((r) => r.id).join(', ')}` });
      }
    });
    const floor = floorOf(a);
    if (floor && below(floor).length) out.push({ action: a, levels: below(floor), unless: [], origin: `floor ${a}` });
    for (const area of doc.forbiddenAreas.filter((x) => x.actions.includes(a))) {
      out.push({ action: a, levels: RUNNABLE, ...(area.when ? { when: [{ scope: { type: 'org' }, when: area.when }] } : {}), unless: [], origin: `area ${area.id}` });
    }
    for (const limit of doc.rateLimits.filter((x) => x.actions.includes(a))) {
      if (below(limit.then).length) out.push({ action: a, levels: below(limit.then), rateLimit: limit.id, unless: [], origin: `rate limit ${limit.id}` });
    }
  }
  return out;
}

/** Time zones named by the document's windows, in a fixed order (clock i = zone i). */
export function timeZonesOf(doc: PolicyDocument): string[] {
  const zones = [...doc.rules.map((r) => r.when?.timeWindow?.timeZone), ...doc.forbiddenAreas.map((a) => a.when?.timeWindow?.timeZone)];
  return [...new Set(zones.filter((z): z is string => !!z))].sort();
}
