/** The seed policy's violation ladder. */
export type Sanction = 'none' | 'warning' | 'suspension' | 'disciplinary_review';

export interface ConfirmedViolation {
  confirmedAt: Date;
}

/**
 * From a user's confirmed violations in the last `windowDays` days: first a warning (and
 * retraining), second suspension of agent access, third a disciplinary review.
 */
export function sanctionFor(violations: ConfirmedViolation[], now: Date, windowDays = 365): Sanction {
  const since = now.getTime() - windowDays * 86_400_000;
  const count = violations.filter((v) => v.confirmedAt.getTime() > since && v.confirmedAt.getTime() <= now.getTime()).length;
  if (count === 0) return 'none';
  if (count === 1) return 'warning';
  if (count === 2) return 'suspension';
  return 'disciplinary_review';
}
