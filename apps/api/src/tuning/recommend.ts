import type { Level } from '@steward/policy';

/** Evidence for one action type in one scope over the window. */
export interface TuningNumbers {
  /** Watched actions' approval requests decided in the window. */
  approvals: { total: number; approved: number; rejected: number; expired: number; approvalRate: number | null; medianDecisionSeconds: number | null };
  /** Batched actions settled by a reviewer in the window. */
  reviews: { total: number; accepted: number; reverted: number; revertRate: number | null };
  /** Incidents about this action type in the scope (opened in the window). */
  incidents: number;
}

export const THRESHOLDS = {
  /** Lower: at least this many decided cases … */
  minCases: 30,
  /** … approved (Watched) at least this often … */
  minApprovalRate: 0.97,
  /** … within this median time (a fast yes across many cases: the wait adds little). */
  maxMedianDecisionSeconds: 300,
  /** Batched → Autonomous: reverted at most this often. */
  maxRevertRateToLower: 0.02,
  /** Higher: at least this many cases with rejections at or above this rate … */
  minCasesToRaise: 10,
  rejectRateToRaise: 0.2,
  /** Watched → Forbidden only when most requests are refused. */
  rejectRateToForbid: 0.5,
  revertRateToRaise: 0.1,
} as const;

const ORDER: Level[] = ['autonomous', 'batched', 'watched', 'forbidden'];
const up = (l: Level): Level => ORDER[Math.min(ORDER.indexOf(l) + 1, 3)];

export interface Suggestion {
  direction: 'lower' | 'higher';
  suggestedLevel: Level;
  reason: string;
  /** False when the action type's floor forbids the suggested level (shown, never drafted). */
  draftable: boolean;
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

/**
 * One recommendation (or none) from the numbers, the level the policy gives now and the action
 * type's floor. Risk first: incidents, rejections or reverts suggest a higher level even when
 * most cases went well; a lower level needs many fast approvals (or accepted reviews) and no incident.
 */
export function recommend(n: TuningNumbers, current: Level, floor: Level | null): Suggestion | null {
  const a = n.approvals;
  const r = n.reviews;
  if (current !== 'forbidden') {
    if (n.incidents > 0) return { direction: 'higher', suggestedLevel: up(current), reason: `${n.incidents} incident(s) about this action in the window`, draftable: true };
    if (current === 'watched' && a.total >= THRESHOLDS.minCasesToRaise && a.rejected / a.total >= THRESHOLDS.rejectRateToForbid) {
      return { direction: 'higher', suggestedLevel: 'forbidden', reason: `${a.rejected} of ${a.total} approval requests rejected (${pct(a.rejected / a.total)})`, draftable: true };
    }
    if (current !== 'watched' && a.total >= THRESHOLDS.minCasesToRaise && a.rejected / a.total >= THRESHOLDS.rejectRateToRaise) {
      return { direction: 'higher', suggestedLevel: up(current), reason: `${a.rejected} of ${a.total} approval requests rejected (${pct(a.rejected / a.total)})`, draftable: true };
    }
    if (current === 'batched' && r.total >= THRESHOLDS.minCasesToRaise && r.reverted / r.total >= THRESHOLDS.revertRateToRaise) {
      return { direction: 'higher', suggestedLevel: 'watched', reason: `${r.reverted} of ${r.total} reviewed actions reverted (${pct(r.reverted / r.total)})`, draftable: true };
    }
  }
  if (n.incidents > 0) return null;
  let lower: Suggestion | null = null;
  if (current === 'watched' && a.total >= THRESHOLDS.minCases && a.approvalRate !== null && a.approvalRate >= THRESHOLDS.minApprovalRate && a.medianDecisionSeconds !== null && a.medianDecisionSeconds <= THRESHOLDS.maxMedianDecisionSeconds) {
    lower = { direction: 'lower', suggestedLevel: 'batched', reason: `${a.approved} of ${a.total} approved (${pct(a.approvalRate)}), median decision ${Math.round(a.medianDecisionSeconds)} s`, draftable: true };
  } else if (current === 'batched' && r.total >= THRESHOLDS.minCases && r.revertRate !== null && r.revertRate <= THRESHOLDS.maxRevertRateToLower && a.rejected === 0) {
    lower = { direction: 'lower', suggestedLevel: 'autonomous', reason: `${r.accepted} of ${r.total} reviewed actions accepted, ${r.reverted} reverted`, draftable: true };
  }
  if (lower && floor && ORDER.indexOf(lower.suggestedLevel) < ORDER.indexOf(floor)) {
    return { ...lower, reason: `${lower.reason}; but its floor is ${floor}, so it stays`, draftable: false, suggestedLevel: floor };
  }
  return lower;
}
