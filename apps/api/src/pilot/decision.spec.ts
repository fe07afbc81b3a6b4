import { pilotDecision } from './decision';

describe('pilot decision (the seed thresholds)', () => {
  const d = (tasksRun: number, completionRate: number | null, satisfaction: number | null, incidents = 0) => pilotDecision({ tasksRun, completionRate, satisfaction, incidents }).decision;
  it('rolls out at ≥ 75% completion with satisfaction ≥ 4.0, at the boundaries too', () => {
    expect(d(20, 0.75, 4.0)).toBe('roll_out');
    expect(d(20, 0.9, 4.6)).toBe('roll_out');
  });
  it('extends between 50% and 75%, or when satisfaction is low or unknown', () => {
    expect(d(20, 0.5, 5)).toBe('extend');
    expect(d(20, 0.74, 5)).toBe('extend');
    expect(d(20, 0.8, 3.9)).toBe('extend');
    expect(d(20, 0.8, null)).toBe('extend');
  });
  it('stops below 50% or on any safety concern; no data is no decision', () => {
    expect(d(20, 0.49, 5)).toBe('stop');
    expect(d(20, 0.95, 5, 1)).toBe('stop');
    expect(d(0, null, null)).toBe('insufficient_data');
  });
});
