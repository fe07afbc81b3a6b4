import { z } from 'zod';
import { Email, EmailOut, PageQuery, PersonName, RoleNameOut, secretInput, Timestamp, Uuid } from '../core/schemas';
import { RoleName } from '../members/members.schemas';

export const InvitationView = z.strictObject({
  id: Uuid,
  email: EmailOut,
  roles: z.array(RoleNameOut).max(20),
  invitedBy: Uuid,
  status: z.enum(['pending', 'accepted', 'revoked', 'expired']),
  expiresAt: Timestamp,
  createdAt: Timestamp,
});

export const CreateInvitationBody = z.strictObject({
  email: Email,
  roles: z.array(RoleName).min(1).max(20),
  expiresInDays: z.int().min(1).max(30).default(7),
});

export const CreatedInvitation = z.strictObject({
  invitation: InvitationView,
  /** Shown once: send it to the invitee; it is stored only as an HMAC. */
  token: z
    .string()
    .max(100)
    .regex(/^sti_[A-Za-z0-9_-]+$/),
});

export const AcceptInvitationBody = z.strictObject({
  token: secretInput(10, 100),
  /** For a new user: their name. Ignored when the email already has an account. */
  name: PersonName.optional(),
  /** A new password for a new user, or the existing account's password; omitted when signed in as the existing account (a console session sent with the request). */
  password: secretInput(1, 256).optional(),
});

export const AcceptedInvitation = z.strictObject({ orgId: Uuid, userId: Uuid });
export const ListInvitationsQuery = PageQuery.extend({ status: z.enum(['pending', 'accepted', 'revoked', 'expired']).optional() });
