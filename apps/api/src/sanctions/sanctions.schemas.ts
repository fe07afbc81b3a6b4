import { z } from 'zod';
import { Timestamp, Uuid } from '../core/schemas';

export const SanctionKind = z.enum(['warning', 'suspension', 'disciplinary_review']);
export const SanctionState = z.enum(['open', 'lifted', 'resolved']);
export const SanctionOutcome = z.enum(['no_action', 'retraining', 'final_warning', 'access_revoked', 'dismissal_referred']);

export const SanctionView = z.strictObject({
  id: Uuid,
  userId: Uuid,
  violationId: Uuid,
  kind: SanctionKind,
  /** Confirmed violations of the user in the year before, this one included. */
  strikes: z.int().min(1),
  state: SanctionState,
  outcome: SanctionOutcome.nullable(),
  note: z.string().max(2000).nullable(),
  decidedBy: Uuid.nullable(),
  decidedAt: Timestamp.nullable(),
  createdAt: Timestamp,
});
export const SanctionList = z.strictObject({ items: z.array(SanctionView).max(200), nextCursor: Uuid.nullable() });
export const ListSanctionsQuery = z.strictObject({
  userId: Uuid.optional(),
  state: SanctionState.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: Uuid.optional(),
});
export const LiftBody = z.strictObject({ note: z.string().trim().min(1).max(2000) });
export const OutcomeBody = z.strictObject({ outcome: SanctionOutcome, note: z.string().trim().min(1).max(2000) });

export const StrikesView = z.strictObject({
  userId: Uuid,
  /** Confirmed violations in the last 365 days (the ladder's window). */
  strikes: z.int().min(0),
  /** Where the ladder stands: none, warning, suspension, disciplinary_review. */
  sanction: z.enum(['none', 'warning', 'suspension', 'disciplinary_review']),
  memberStatus: z.string().max(24),
  openViolations: z.int().min(0),
  dismissedViolations: z.int().min(0),
  sanctions: z.array(SanctionView).max(200),
});

export const EvidenceView = z.strictObject({
  violationId: Uuid,
  state: z.enum(['open', 'confirmed', 'dismissed']),
  userId: Uuid,
  /** The attempt: tool, action type, argument digest, the rules that made it Forbidden. */
  attempt: z.strictObject({
    actionId: Uuid,
    connector: z.string().max(100),
    tool: z.string().max(128),
    actionType: z.string().max(32),
    argsDigest: z.string().max(80),
    ruleIds: z.array(z.string().max(100)).max(100),
    reason: z.string().max(1000),
    at: Timestamp,
  }),
  /** What the task had read before: untrusted content makes injection plausible. */
  tainted: z.boolean(),
  labels: z.array(z.string().max(100)).max(100),
  task: z
    .strictObject({
      id: Uuid,
      state: z.string().max(24),
      workflow: z.string().max(100).nullable(),
      createdAt: Timestamp,
      /** The task's sealed transcript, streamed to those who may read the task. */
      transcript: z.string().max(200),
      /** The actions before the attempt, in order (reads first of all: where injected content could come from). */
      priorActions: z
        .array(
          z.strictObject({
            step: z.int().nullable(),
            connector: z.string().max(100),
            tool: z.string().max(128),
            actionType: z.string().max(32),
            level: z.string().max(16),
            state: z.string().max(24),
            tainted: z.boolean(),
            labels: z.array(z.string().max(100)).max(100),
          }),
        )
        .max(500),
    })
    .nullable(),
  /** The user's confirmed strikes before this one. */
  priorStrikes: z.int().min(0),
});
