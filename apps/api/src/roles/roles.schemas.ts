import { z } from 'zod';
import { ALL_SCOPES, SUBJECTS } from '@steward/policy';
import { RoleNameOut, Timestamp, Uuid } from '../core/schemas';

const ACTIONS = [...new Set(ALL_SCOPES.map((s) => s.split(':')[0]))] as [string, ...string[]];

export const PermissionRuleSchema = z.strictObject({
  action: z.enum(ACTIONS),
  subject: z.enum(SUBJECTS as [string, ...string[]]),
  own: z.boolean().optional(),
});

export const RoleView = z.strictObject({
  id: Uuid.nullable(),
  /** As granted: a built-in role or "custom:<key>". */
  key: RoleNameOut,
  name: z.string().max(200),
  description: z.string().max(1000),
  builtin: z.boolean(),
  permissions: z.array(PermissionRuleSchema).max(200),
  createdAt: Timestamp.nullable(),
});

export const RoleList = z.strictObject({ items: z.array(RoleView).max(300) });

const RoleKey = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and "-"');

export const CreateRoleBody = z.strictObject({
  key: RoleKey,
  name: z.string().trim().min(1).max(200),
  description: z.string().max(1000).default(''),
  permissions: z.array(PermissionRuleSchema).min(1).max(200),
});

export const UpdateRoleBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    description: z.string().max(1000).optional(),
    permissions: z.array(PermissionRuleSchema).min(1).max(200).optional(),
  })
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change');
