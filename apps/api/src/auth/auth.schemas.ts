import { z } from 'zod';
import { Email, OrgSummary, Password, Slug, Timestamp, TotpCode, UserSummary } from '../core/schemas';

export const LoginBody = z.strictObject({
  email: Email,
  password: z.string().min(1).max(256),
  /** The org to sign in to, by slug; needed only when the user belongs to several. */
  org: Slug.optional(),
  totpCode: TotpCode.optional(),
});

export const SessionView = z.strictObject({
  kind: z.enum(['session', 'api_key']),
  user: UserSummary,
  org: OrgSummary,
  roles: z.array(z.string().max(80)).max(50),
  permissions: z.array(z.string().max(80)).max(500),
  mfa: z.strictObject({ enrolled: z.boolean(), verifiedAt: Timestamp.nullable() }),
  expiresAt: Timestamp.nullable(),
});

export const StepUpBody = z.strictObject({ totpCode: TotpCode });
export const TotpConfirmBody = z.strictObject({ totpCode: TotpCode });
export const TotpDisableBody = z.strictObject({ password: z.string().min(1).max(256), totpCode: TotpCode });
export const TotpEnrollView = z.strictObject({ secret: z.string().max(128), otpauthUri: z.string().max(1024) });
export const PasswordChangeBody = z.strictObject({ currentPassword: z.string().min(1).max(256), newPassword: Password });
