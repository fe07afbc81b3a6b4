import { z } from 'zod';
import { EmailOut, PageQuery, RoleNameOut, Timestamp, Uuid } from '../core/schemas';

export const RoleName = z
  .string()
  .min(2)
  .max(70)
  .regex(/^(owner|admin|security|auditor|approver|member|custom:[a-z0-9][a-z0-9-]{0,62})$/, 'a built-in role or "custom:<key>"');

export const MemberView = z.strictObject({
  userId: Uuid,
  email: EmailOut,
  name: z.string().max(200),
  status: z.enum(['active', 'suspended']),
  roles: z.array(RoleNameOut).max(50),
  suspendedAt: Timestamp.nullable(),
  suspendedReason: z.string().max(500).nullable(),
  joinedAt: Timestamp,
});

export const ListMembersQuery = PageQuery.extend({ status: z.enum(['active', 'suspended']).optional() });
export const SetRolesBody = z.strictObject({ roles: z.array(RoleName).min(1).max(20) });
export const SuspendBody = z.strictObject({ reason: z.string().trim().min(1).max(500) });

export const IssueRecoveryBody = z.strictObject({
  /** Also remove the member's authenticator (lost with their phone); by default it stays, and signing in still needs it. */
  secondFactor: z.boolean().default(false),
});
export const IssuedRecovery = z.strictObject({
  /** Shown once: give it to the member over a channel you trust them on; it is stored only as an HMAC. */
  token: z
    .string()
    .max(100)
    .regex(/^sta_[A-Za-z0-9_-]+$/),
  expiresAt: Timestamp,
  secondFactor: z.boolean(),
});
