/** Robust statistics: medians and median absolute deviations, nothing a single outlier can move. */

export function median(values: number[]): number {
  if (!values.length) return 0;
  const s = Float64Array.from(values).sort();
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Median absolute deviation from the median. */
export function mad(values: number[], med = median(values)): number {
  return median(values.map((v) => Math.abs(v - med)));
}

export interface Baseline {
  median: number;
  mad: number;
  /** The spread used for the z-score: 1.4826·MAD, but never below √median (count noise) nor 1. */
  scale: number;
  n: number;
}

export function baselineOf(values: number[]): Baseline {
  const m = median(values);
  const d = mad(values, m);
  return { median: m, mad: d, scale: Math.max(1.4826 * d, Math.sqrt(Math.max(m, 0)), 1), n: values.length };
}

/** Robust z-score of `value` against the baseline. */
export function robustZ(value: number, b: Baseline): number {
  return (value - b.median) / b.scale;
}

export function quantile(values: number[], q: number): number {
  if (!values.length) return 0;
  const s = Float64Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.floor(q * (s.length - 1))))];
}

export const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;
