/** What the anomaly report finds. */
export const FINDING_KINDS = [
  'volume_spike',
  'unusual_hours',
  'denial_rate',
  'rejection_rate',
  'first_connector',
  'mass_delete',
  'mass_send',
  'bulk_external_share',
  'cost_spike',
  'rubber_stamp',
  'slow_approval',
  'policy_review_overdue',
  'user_strikes',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export type Severity = 'low' | 'medium' | 'high';

export interface Finding {
  kind: FindingKind;
  severity: Severity;
  /** The user (actor, requester or approver), connector or policy the finding is about. */
  subject: { type: 'user' | 'connector' | 'policy'; id: string; label?: string };
  action?: string;
  title: string;
  /** What was observed in the period. */
  observed: Record<string, number | string>;
  /** What it was measured against (the user's own history, the org, a rule). */
  baseline: { description: string } & Record<string, number | string>;
  /** Robust z-score (value − median) / (1.4826 · MAD) where one applies. */
  score?: number;
  /** Audit event ids (at most 20) and how many there are in all. */
  evidence: { eventIds: string[]; total: number };
  /** A small series for the chart: the history and the period. */
  series?: { label: string; values: number[]; markFrom?: number };
}

export interface AnomalyReport {
  orgId: string;
  timeZone: string;
  from: string;
  to: string;
  baselineFrom: string;
  generatedAt: string;
  users: number;
  eventsScanned: number;
  findings: Finding[];
}
