import type { ActionType } from './catalog';
import { type CompiledPolicy, type Decision, decideOnFacts } from './engine';
import type { Facts } from './facts';

/**
 * The inputs of one decision as the gate records them in its audit event (`payload.facts`), so that
 * a policy can be replayed over the trail (libs/oversight): everything `decide()` reads except the
 * action type, the connector and the time, which the event carries in its own fields. Recipients
 * are kept only as their domains and scope (the addresses stay sealed); the org's domains at the
 * time are folded into the scope.
 */
export interface RecordedFacts {
  user: string;
  groups: string[];
  workflow: string | null;
  resources: string[];
  hosts: string[];
  recipientScope: Facts['recipientScope'];
  recipientDomains: string[];
  invitesOthers: boolean;
  labels: string[];
  tainted: boolean;
  amount: number | null;
  rateExceeded: string[];
}

const sorted = (list: readonly string[]) => [...new Set(list)].sort();

export function recordFacts(f: Facts): RecordedFacts {
  return {
    user: f.userId,
    groups: sorted(f.groups),
    workflow: f.workflow,
    resources: [...f.resources],
    hosts: [...f.hosts],
    recipientScope: f.recipientScope,
    recipientDomains: sorted(f.recipientDomains),
    invitesOthers: f.invitesOthers,
    labels: sorted(f.labels),
    tainted: f.tainted,
    amount: f.amount,
    rateExceeded: sorted(f.rateExceeded),
  };
}

/** The facts a recorded decision was made on, back in the evaluator's form. */
export function factsFromRecord(r: RecordedFacts, type: ActionType, connector: string | null, at: Date): Facts {
  return {
    type,
    userId: r.user,
    groups: r.groups ?? [],
    workflow: r.workflow ?? null,
    connector,
    resources: r.resources ?? [],
    hosts: r.hosts ?? [],
    recipientScope: r.recipientScope ?? 'none',
    recipientDomains: r.recipientDomains ?? [],
    invitesOthers: r.invitesOthers === true,
    labels: r.labels ?? [],
    tainted: r.tainted === true,
    amount: typeof r.amount === 'number' ? r.amount : null,
    at,
    rateExceeded: r.rateExceeded ?? [],
  };
}

/** Decides a recorded action again (under any version): the same evaluator the gate uses. */
export function decideRecorded(policy: CompiledPolicy, r: RecordedFacts, type: ActionType, connector: string | null, at: Date): Decision {
  return decideOnFacts(policy, factsFromRecord(r, type, connector, at));
}
