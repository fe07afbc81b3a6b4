import { z } from 'zod';
import { PageQuery, Timestamp, UserSummary, Uuid } from '../core/schemas';

export const GroupView = z.strictObject({
  id: Uuid,
  name: z.string().max(200),
  description: z.string().max(1000),
  memberCount: z.int().min(0).max(1_000_000),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const CreateGroupBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  description: z.string().max(1000).default(''),
});

export const UpdateGroupBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    description: z.string().max(1000).optional(),
  })
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change');

export const GroupMembers = z.strictObject({ items: z.array(UserSummary).max(10_000) });
export const ListGroupsQuery = PageQuery;
