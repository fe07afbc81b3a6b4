import { z } from 'zod';
import { Email, OrgSummary, Password, PermissionOut, RoleNameOut, secretInput, Slug, Timestamp, TotpCode, UserSummary } from '../core/schemas';

export const LoginBody = z.strictObject({
  email: Email,
  password: secretInput(1, 256),
  /** The org to sign in to, by slug; needed only when the user belongs to several. */
  org: Slug.optional(),
  totpCode: TotpCode.optional(),
});

/** Switch the console session to another org of the same person (a new session there; this one ends). */
export const SwitchOrgBody = z.strictObject({ org: Slug });

/** The orgs the signed-in person belongs to (for the console's org switcher). */
export const MyOrgsView = z.strictObject({
  items: z.array(z.strictObject({ slug: z.string().max(100), current: z.boolean(), active: z.boolean() })).max(1000),
});

export const SessionView = z.strictObject({
  kind: z.enum(['session', 'api_key']),
  user: UserSummary,
  org: OrgSummary,
  roles: z.array(RoleNameOut).max(50),
  permissions: z.array(PermissionOut).max(500),
  mfa: z.strictObject({ enrolled: z.boolean(), verifiedAt: Timestamp.nullable() }),
  expiresAt: Timestamp.nullable(),
});

export const StepUpBody = z.strictObject({ totpCode: TotpCode });
/** Enrolling a second factor: the account's password (an account that signs in only through single sign-on gives none, from a session at most 10 minutes old). */
export const EnrollTotpBody = z.strictObject({ password: z.string().min(1).max(1024).optional() });
export const TotpConfirmBody = z.strictObject({ totpCode: TotpCode });
export const TotpDisableBody = z.strictObject({ password: secretInput(1, 256), totpCode: TotpCode });
export const TotpEnrollView = z.strictObject({
  /** Base32, for manual entry in an authenticator app. */
  secret: z
    .string()
    .max(128)
    .regex(/^[A-Z2-7]+=*$/),
  otpauthUri: z
    .string()
    .max(1024)
    .regex(/^otpauth:\/\/totp\//),
});
export const PasswordChangeBody = z.strictObject({ currentPassword: secretInput(1, 256), newPassword: Password });
export const RecoverAccountBody = z.strictObject({ token: secretInput(10, 100), newPassword: Password });
