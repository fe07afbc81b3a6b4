/** The seed's 30-day pilot rule: ≥ 75% and satisfaction ≥ 4.0 → roll out; 50–75% → extend 2–4 weeks; below 50% or any safety concern → stop. */
export const PILOT_THRESHOLDS = { rollOutCompletion: 0.75, rollOutSatisfaction: 4.0, extendCompletion: 0.5 } as const;

export type PilotDecision = 'roll_out' | 'extend' | 'stop' | 'insufficient_data';

export function pilotDecision(m: { tasksRun: number; completionRate: number | null; satisfaction: number | null; incidents: number }): { decision: PilotDecision; reason: string } {
  const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
  if (m.incidents > 0) return { decision: 'stop', reason: `${m.incidents} incident(s) about its tasks: a safety concern` };
  if (!m.tasksRun || m.completionRate === null) return { decision: 'insufficient_data', reason: 'no task has run in the period' };
  const c = m.completionRate;
  if (c < PILOT_THRESHOLDS.extendCompletion) return { decision: 'stop', reason: `completion ${pct(c)} is below 50%` };
  if (c >= PILOT_THRESHOLDS.rollOutCompletion) {
    if (m.satisfaction === null) return { decision: 'extend', reason: `completion ${pct(c)}, but nobody rated a task yet` };
    if (m.satisfaction >= PILOT_THRESHOLDS.rollOutSatisfaction) return { decision: 'roll_out', reason: `completion ${pct(c)} and satisfaction ${m.satisfaction.toFixed(2)}/5` };
    return { decision: 'extend', reason: `completion ${pct(c)}, but satisfaction ${m.satisfaction.toFixed(2)}/5 is below 4.0` };
  }
  return { decision: 'extend', reason: `completion ${pct(c)} is between 50% and 75%: 2–4 more weeks` };
}
