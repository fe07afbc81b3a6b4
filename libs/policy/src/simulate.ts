import type { ActionType } from './catalog';
import { type CompiledPolicy, type Decision, decide } from './engine';
import type { ActionContext, OrgInfo, PolicyPrincipal } from './facts';

export interface SimulatedAction {
  principal: PolicyPrincipal;
  action: ActionType;
  context: ActionContext;
}

export interface SimulationResult {
  results: { index: number; action: ActionType; before: Decision; after: Decision; changed: boolean }[];
  summary: { total: number; changed: number; stricter: number; looser: number };
}

const ORDER = ['autonomous', 'batched', 'watched', 'forbidden'];

/** Decides each action under the active version and under a draft, and reports what changes. */
export function simulate(active: CompiledPolicy, draft: CompiledPolicy, actions: SimulatedAction[], org: OrgInfo): SimulationResult {
  let stricter = 0;
  let looser = 0;
  const results = actions.map((a, index) => {
    const before = decide(active, a.principal, a.action, a.context, org);
    const after = decide(draft, a.principal, a.action, a.context, org);
    const delta = ORDER.indexOf(after.level) - ORDER.indexOf(before.level);
    if (delta > 0) stricter++;
    if (delta < 0) looser++;
    const changed = delta !== 0 || before.ruleIds.join() !== after.ruleIds.join();
    return { index, action: a.action, before, after, changed };
  });
  return { results, summary: { total: actions.length, changed: results.filter((r) => r.changed).length, stricter, looser } };
}
