import { z } from 'zod';
import { ACTION_TYPE_NAMES, LEVELS } from '@steward/policy';
import { ModelTier, PageQuery, Timestamp, Uuid } from '../core/schemas';

const ActionType = z.enum(ACTION_TYPE_NAMES as [string, ...string[]]);

/**
 * The groups whose members may run tasks under a workflow; null: every member. A workflow's rules
 * decide before group rules, so one that lowers a level should be open only to those it is for.
 */
const AllowedGroups = z
  .array(Uuid)
  .max(50)
  .refine((a) => new Set(a).size === a.length, 'each group once')
  .nullable()
  .describe('Groups whose members may run tasks under this workflow (null: every member; []: nobody)');

export const WorkflowView = z.strictObject({
  id: Uuid,
  key: z.string().max(80),
  name: z.string().max(200),
  description: z.string().max(2000),
  actionTypes: z.array(z.string().max(40)).max(50),
  /** The model tier of this workflow's tasks (null: the org's). */
  modelTier: ModelTier.nullable(),
  /** Who may run tasks under it (and so have its policy rules apply): members of these groups; null: every member. */
  allowedGroups: z.array(Uuid).max(50).nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const CreateWorkflowBody = z.strictObject({
  key: z
    .string()
    .min(2)
    .max(80)
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and "-"'),
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).default(''),
  actionTypes: z.array(ActionType).min(1).max(50),
  modelTier: ModelTier.nullable().default(null),
  allowedGroups: AllowedGroups.default(null),
});

export const UpdateWorkflowBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    description: z.string().max(2000).optional(),
    actionTypes: z.array(ActionType).min(1).max(50).optional(),
    modelTier: ModelTier.nullable().optional(),
    allowedGroups: AllowedGroups.optional(),
  })
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change');

export const ListWorkflowsQuery = PageQuery;

export const ClassificationView = z.strictObject({
  workflow: z.string().max(80),
  policyId: Uuid,
  version: z.int().min(1).max(1_000_000),
  /** The most restrictive level any of its actions gets by default. */
  classification: z.enum(LEVELS),
  actions: z
    .array(z.strictObject({ action: z.string().max(40), level: z.enum(LEVELS), ruleIds: z.array(z.string().max(80)).max(100), reason: z.string().max(5000) }))
    .max(50),
});
