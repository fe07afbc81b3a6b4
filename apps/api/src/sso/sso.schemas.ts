import { z } from 'zod';
import { Email, Slug, Timestamp, Uuid } from '../core/schemas';

/** Roles an identity provider may hand out on first sign-in (never owner). */
export const JitRole = z.enum(['admin', 'security', 'auditor', 'approver', 'member']);

const ClaimValue = z.string().min(1).max(200);

export const SsoConfigView = z.strictObject({
  issuer: z.string().max(2000),
  clientId: z.string().max(500),
  /** The client secret is never returned, only whether one is stored. */
  clientSecretSet: z.boolean(),
  enabled: z.boolean(),
  groupsClaim: z.string().max(100),
  /** Group claim value → Steward group id. */
  groupMap: z.record(ClaimValue, Uuid),
  defaultRole: JitRole,
  /** When the first SSO sign-in succeeded (password sign-in can be switched off only after it). */
  verifiedAt: Timestamp.nullable(),
  /** Where the provider must send people back (register it as the client's redirect URI). */
  redirectUri: z.string().max(2100),
  updatedAt: Timestamp,
});

export const PutSsoConfigBody = z.strictObject({
  issuer: z.url({ protocol: /^https?$/ }).max(2000),
  clientId: z.string().trim().min(1).max(500),
  /** Required the first time; absent later keeps the stored one. */
  clientSecret: z.string().min(1).max(2000).meta({ format: 'password' }).optional(),
  enabled: z.boolean().default(true),
  groupsClaim: z.string().max(100).regex(/^[A-Za-z0-9_:./-]{1,100}$/).default('groups'),
  groupMap: z
    .record(ClaimValue, Uuid)
    .default({})
    .refine((m) => Object.keys(m).length <= 200, 'at most 200 mapped groups'),
  defaultRole: JitRole.default('member'),
});

export const SsoStartBody = z
  .strictObject({
    email: Email.optional(),
    org: Slug.optional(),
  })
  .refine((v) => (v.email ? 1 : 0) + (v.org ? 1 : 0) === 1, 'give either an email or an org slug');

export const SsoStartView = z.strictObject({ authorizationUrl: z.string().max(8000), org: z.strictObject({ slug: z.string().max(63) }) });

export const SsoCallbackQuery = z.object({
  code: z.string().min(1).max(4000).optional(),
  state: z.string().min(1).max(200),
  iss: z.string().max(2000).optional(),
  session_state: z.string().max(500).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(1000).optional(),
});
