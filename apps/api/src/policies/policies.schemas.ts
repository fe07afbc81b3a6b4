import { z } from 'zod';
import { ACTION_TYPE_NAMES, LEVELS } from '@steward/policy';
import { Timestamp, Uuid } from '../core/schemas';

const Status = z.enum(['draft', 'active', 'archived']);
const Note = z.string().trim().max(1000);
/** The document itself is validated by libs/policy (every problem listed); here only its outer shape. */
const DocumentInput = z.record(z.string().max(40), z.unknown()).meta({ description: 'A Trust Level policy document (see libs/policy)' });

export const PolicySummary = z.strictObject({
  id: Uuid,
  version: z.int().min(1).max(1_000_000),
  status: Status,
  note: z.string().max(1000),
  authorId: Uuid,
  basedOn: Uuid.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  activatedAt: Timestamp.nullable(),
  activatedBy: Uuid.nullable(),
  archivedAt: Timestamp.nullable(),
  reviewDueAt: Timestamp.nullable(),
});

export const PolicyView = PolicySummary.extend({ document: z.record(z.string().max(40), z.unknown()) });

export const ListPoliciesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
  status: Status.optional(),
});

export const CreatePolicyBody = z.strictObject({
  note: Note.min(1),
  /** Start from this version (default: the active one). */
  basedOn: Uuid.optional(),
  /** The whole document (default: a copy of basedOn). */
  document: DocumentInput.optional(),
});

export const UpdatePolicyBody = z
  .strictObject({ note: Note.min(1).optional(), document: DocumentInput.optional() })
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change');

export const ActivatePolicyBody = z.strictObject({
  note: Note.optional(),
  /** The draft's `updatedAt` as the activator reviewed it: refused (409) if the draft changed since (the console sends it). */
  reviewedUpdatedAt: Timestamp.optional(),
  /**
   * The active version's id the activator compared the draft with (the diff's `from`): refused (409)
   * if another version became active since. Required for a draft not based on the active version
   * (a revert to an older one), whose activation would otherwise silently undo what came after.
   */
  reviewedAgainst: Uuid.optional(),
});

export const DiffQuery = z.strictObject({ against: Uuid.optional() });
export const PolicyDiff = z.strictObject({
  from: Uuid,
  to: Uuid,
  changes: z
    .array(z.strictObject({ path: z.string().max(300), kind: z.enum(['added', 'removed', 'changed']), before: z.unknown().optional(), after: z.unknown().optional() }))
    .max(10_000),
});

const ContextInput = z.strictObject({
  connector: z.string().max(80).optional(),
  resources: z.array(z.string().max(2048)).max(100).optional(),
  hosts: z.array(z.string().max(253)).max(100).optional(),
  recipients: z.array(z.string().max(254)).max(500).optional(),
  /** The action reaches people outside the org whatever its recipients (a channel shared with another company). */
  outside: z.boolean().optional(),
  attendees: z.array(z.string().max(254)).max(500).optional(),
  amount: z.number().min(0).max(1e15).optional(),
  labels: z.array(z.string().max(60)).max(20).optional(),
  tainted: z.boolean().optional(),
  at: Timestamp.optional(),
  workflow: z.string().max(80).optional(),
  rateExceeded: z.array(z.string().max(80)).max(50).optional(),
});

const ActionInput = z.strictObject({
  action: z.enum(ACTION_TYPE_NAMES as [string, ...string[]]),
  /** Whose action (default: the caller); must be a member of the org. */
  userId: Uuid.optional(),
  context: ContextInput.default({}),
});

export const ExplainBody = ActionInput.extend({ policyId: Uuid.optional() });
export const SimulateBody = z.strictObject({ actions: z.array(ActionInput).min(1).max(500) });

const LevelSchema = z.enum(LEVELS);
const DecisionView = z.strictObject({
  action: z.string().max(40),
  level: LevelSchema,
  ruleIds: z.array(z.string().max(80)).max(100),
  reason: z.string().max(5000),
  routing: z.strictObject({ routeId: z.string().max(80).nullable(), approverGroup: Uuid.nullable(), quorum: z.int().min(1).max(2) }).nullable(),
  obligations: z.array(z.string().max(40)).max(10),
});

export const ExplanationView = DecisionView.extend({
  /** The CASL check of the action at its decided level (false for Forbidden). */
  caslAuthorized: z.boolean(),
  policyId: Uuid,
  version: z.int().min(1).max(1_000_000),
  steps: z
    .array(z.strictObject({ stage: z.string().max(20), ruleIds: z.array(z.string().max(80)).max(100), level: LevelSchema.nullable(), effect: z.string().max(20), note: z.string().max(5000) }))
    .max(20),
});

export const SimulationView = z.strictObject({
  draftId: Uuid,
  activeId: Uuid,
  summary: z.strictObject({ total: z.int().min(0).max(500), changed: z.int().min(0).max(500), stricter: z.int().min(0).max(500), looser: z.int().min(0).max(500) }),
  results: z.array(z.strictObject({ index: z.int().min(0).max(500), action: z.string().max(40), before: DecisionView, after: DecisionView, changed: z.boolean() })).max(500),
});

export const CatalogView = z.strictObject({
  levels: z.array(LevelSchema).max(4),
  actions: z
    .array(
      z.strictObject({
        type: z.string().max(40),
        description: z.string().max(200),
        examples: z.string().max(200),
        default: LevelSchema,
        floor: LevelSchema.nullable(),
        facts: z.array(z.string().max(20)).max(20),
        outbound: z.boolean(),
      }),
    )
    .max(100),
});
