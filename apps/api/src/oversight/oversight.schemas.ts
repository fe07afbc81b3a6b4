import { z } from 'zod';
import { Timestamp, Uuid } from '../core/schemas';

const Digest = z.string().max(80);
const Labels = z.array(z.string().max(100)).max(100);

export const ApprovalState = z.enum(['pending', 'approved', 'rejected', 'expired', 'used', 'void', 'settled']);

export const ApprovalView = z.strictObject({
  id: Uuid,
  /** `action`: a Watched action waiting; `outcome_unknown`: an action a crash left without outcome, to settle. */
  kind: z.enum(['action', 'outcome_unknown']),
  state: ApprovalState,
  taskId: Uuid.nullable(),
  step: z.int().nullable(),
  actionId: Uuid,
  requestedBy: Uuid,
  connector: z.string().max(100),
  tool: z.string().max(128),
  actionType: z.string().max(32),
  /** Why it waits (the policy's reason, with its rule ids). */
  reason: z.string().max(1000),
  /** What the task had read before: untrusted content (taint) and data labels. */
  tainted: z.boolean(),
  labels: Labels,
  argsDigest: Digest,
  toolHash: Digest.nullable(),
  credentialId: Uuid.nullable(),
  policyVersion: z.int().nullable(),
  approverGroup: Uuid.nullable(),
  quorum: z.int().min(1).max(5),
  approvals: z.int().min(0),
  /** Whether the caller may decide it now (an eligible approver, not the requester, not yet voted). */
  canDecide: z.boolean(),
  expiresAt: Timestamp.nullable(),
  createdAt: Timestamp,
  decidedAt: Timestamp.nullable(),
  usedAt: Timestamp.nullable(),
});

export const ApprovalDetail = ApprovalView.extend({
  /**
   * The arguments the model asked for (from the task's sealed transcript); `argumentsMatch` says they
   * digest to what is bound. Shown to the requester, to the approvers the approval is routed to and
   * to readers of sensitive audit data (null for anyone else); a look by anyone but the requester is
   * audited (`approval.view_arguments`).
   */
  arguments: z.record(z.string().max(200), z.unknown()).nullable(),
  argumentsMatch: z.boolean().nullable(),
  votes: z.array(z.strictObject({ userId: Uuid, vote: z.enum(['approve', 'reject', 'done', 'not_done']), reason: z.string().max(1000).nullable(), at: Timestamp })).max(10),
});

export const ListApprovalsQuery = z.strictObject({
  state: ApprovalState.optional(),
  /** Only those the caller may decide now. */
  actionable: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: Uuid.optional(),
});
export const ApprovalList = z.strictObject({ items: z.array(ApprovalView).max(200), nextCursor: Uuid.nullable() });

export const DecideApprovalBody = z.strictObject({ reason: z.string().trim().min(1).max(1000).optional() });
export const RejectApprovalBody = z.strictObject({ reason: z.string().trim().min(1).max(1000) });
export const SettleApprovalBody = z.strictObject({
  /** Whether the interrupted action was in fact carried out (checked by a person at the target). */
  done: z.boolean(),
  reason: z.string().trim().min(1).max(1000).optional(),
});

export const ReviewActionView = z.strictObject({
  actionId: Uuid,
  step: z.int().nullable(),
  connector: z.string().max(100),
  tool: z.string().max(128),
  actionType: z.string().max(32),
  level: z.enum(['autonomous', 'batched', 'watched', 'forbidden']),
  state: z.string().max(24),
  /** Batched writes: what a reviewer settles (accept, or revert through `undo`). Reads are listed only. */
  needsReview: z.boolean(),
  reversible: z.boolean(),
  undoTool: z.string().max(128).nullable(),
  /** The connector's step that makes the action final when accepted (a draft becomes the sent message); null: final as it is. */
  finalizeTool: z.string().max(128).nullable(),
  /** accepting / reverting: a reviewer's step is underway (claimed before it runs; reviewedBy and reviewedAt say who and since when). dismissed: closed by a reviewer without running either step. */
  reviewState: z.enum(['pending', 'accepting', 'reverting', 'accepted', 'reverted', 'dismissed']).nullable(),
  /** The step underway was interrupted before its outcome was known (the API did not see it end): it is not run again; a person settles it. */
  interrupted: z.boolean(),
  reviewedBy: Uuid.nullable(),
  reviewedAt: Timestamp.nullable(),
});
export const ReviewView = z.strictObject({
  taskId: Uuid,
  userId: Uuid,
  taskState: z.string().max(24),
  pending: z.int().min(0),
  accepted: z.int().min(0),
  reverted: z.int().min(0),
  dismissed: z.int().min(0),
  actions: z.array(ReviewActionView).max(1000),
});
export const ReviewSummary = ReviewView.omit({ actions: true });
export const ReviewList = z.strictObject({ items: z.array(ReviewSummary).max(200) });
export const ListReviewsQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(200).default(50) });
export const ReviewBody = z.strictObject({ reason: z.string().trim().min(1).max(1000).optional() });
/** Closing an action without running its undo or its finishing step: why is required (sealed in the audit event). */
export const DismissReviewBody = z.strictObject({ reason: z.string().trim().min(1).max(1000) });
export const SettleReviewStepBody = z.strictObject({
  /** Whether the interrupted step was in fact carried out (checked by a person at the target). */
  done: z.boolean(),
  reason: z.string().trim().min(1).max(1000).optional(),
});

/**
 * A Batched write made through the MCP gateway (no task around it): it ran in its reversible form
 * and waits for a reviewer, listed under the member it acted for.
 */
export const GatewayReviewView = ReviewActionView.omit({ step: true, level: true, state: true, needsReview: true }).extend({
  userId: Uuid,
  /** The MCP client that made the call (its clientInfo name), where its decision recorded it. */
  clientName: z.string().max(200).nullable(),
  createdAt: Timestamp,
});
export const GatewayReviewList = z.strictObject({ items: z.array(GatewayReviewView).max(200), nextCursor: Uuid.nullable() });
export const ListGatewayReviewsQuery = z.strictObject({
  /** pending (the default): not yet accepted, reverted or dismissed; settled: decided; all. */
  state: z.enum(['pending', 'settled', 'all']).default('pending'),
  userId: Uuid.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: Uuid.optional(),
});
/** The actions to settle, each accepted (or reverted, or dismissed) in turn, newest first. */
const GatewayActionIds = z.array(Uuid).min(1).max(50).refine((ids) => new Set(ids).size === ids.length, 'each action is named once');
export const GatewayReviewBody = z.strictObject({ actionIds: GatewayActionIds, reason: z.string().trim().min(1).max(1000).optional() });
export const GatewayDismissBody = z.strictObject({ actionIds: GatewayActionIds, reason: z.string().trim().min(1).max(1000) });

export const ViolationState = z.enum(['open', 'confirmed', 'dismissed']);
export const ViolationView = z.strictObject({
  id: Uuid,
  state: ViolationState,
  automatic: z.boolean(),
  userId: Uuid,
  taskId: Uuid.nullable(),
  actionId: Uuid,
  connector: z.string().max(100),
  tool: z.string().max(128),
  actionType: z.string().max(32),
  argsDigest: Digest,
  tainted: z.boolean(),
  labels: Labels,
  ruleIds: z.array(z.string().max(100)).max(100),
  reason: z.string().max(1000),
  note: z.string().max(1000).nullable(),
  decidedBy: Uuid.nullable(),
  decidedAt: Timestamp.nullable(),
  createdAt: Timestamp,
  /** After a decision: the user's confirmed strikes in the last year and the sanction they lead to. */
  strikes: z.int().min(0).optional(),
  sanction: z.enum(['none', 'warning', 'suspension', 'disciplinary_review']).optional(),
});
export const ListViolationsQuery = z.strictObject({
  state: ViolationState.optional(),
  userId: Uuid.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: Uuid.optional(),
});
export const ViolationList = z.strictObject({ items: z.array(ViolationView).max(200), nextCursor: Uuid.nullable() });
export const TriageBody = z.strictObject({ note: z.string().trim().min(1).max(1000) });
