import { z } from 'zod';
import { Timestamp } from '../core/schemas';

const LevelOut = z.enum(['autonomous', 'batched', 'watched', 'forbidden']);
const WorkflowKey = z.string().min(1).max(80).regex(/^[a-z0-9][a-z0-9._-]*$/);
export const TuningScope = z.discriminatedUnion('type', [z.strictObject({ type: z.literal('org') }), z.strictObject({ type: z.literal('workflow'), id: WorkflowKey })]);

export const RecommendationsQuery = z.strictObject({ days: z.coerce.number().int().min(7).max(365).default(90) });

export const RecommendationView = z.strictObject({
  /** "<action type>@org" or "<action type>@workflow:<key>". */
  key: z.string().max(160),
  actionType: z.string().max(40),
  scope: TuningScope,
  currentLevel: LevelOut,
  suggestedLevel: LevelOut,
  direction: z.enum(['lower', 'higher']),
  floor: LevelOut.nullable(),
  draftable: z.boolean(),
  reason: z.string().max(500),
  numbers: z.strictObject({
    approvals: z.strictObject({ total: z.int(), approved: z.int(), rejected: z.int(), expired: z.int(), approvalRate: z.number().nullable(), medianDecisionSeconds: z.number().nullable() }),
    reviews: z.strictObject({ total: z.int(), accepted: z.int(), reverted: z.int(), revertRate: z.number().nullable() }),
    incidents: z.int(),
  }),
});
export const RecommendationList = z.strictObject({
  windowDays: z.int(),
  generatedAt: Timestamp,
  policyVersion: z.int(),
  thresholds: z.record(z.string().max(60), z.number()),
  items: z.array(RecommendationView).max(2000),
});

export const DraftFromRecommendationsBody = z.strictObject({
  items: z.array(z.strictObject({ actionType: z.string().min(1).max(40), scope: TuningScope })).min(1).max(50),
  days: z.int().min(7).max(365).default(90),
  note: z.string().trim().min(1).max(1000).optional(),
});
