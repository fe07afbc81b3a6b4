import { z } from 'zod';

/** Building blocks of request and response schemas: every string bounded, every object strict. */
export const Uuid = z.uuid().describe('UUID');
export const Email = z
  .email({ error: 'must be an email address' })
  .max(254)
  .transform((v) => v.toLowerCase());
export const PersonName = z.string().trim().min(1).max(200);
/** A password or one-time token as input: `format: password` only tells UIs to mask it. */
export const secretInput = (min: number, max: number) => z.string().min(min).max(max).meta({ format: 'password' });
export const Password = z
  .string()
  .min(12, 'must be at least 12 characters')
  .max(256, 'must be at most 256 characters')
  .meta({ format: 'password' });
export const TotpCode = z.string().regex(/^\d{6}$/, 'must be 6 digits').max(6);
export const Slug = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'lower-case letters, digits and "-", not at either end');
export const Domain = z
  .string()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a domain name such as example.com');
/** An ISO 8601 date-time with an offset, from year 1 (PostgreSQL has no year 0). */
export const Timestamp = z.iso
  .datetime({ offset: true })
  .max(40)
  .refine((s) => !s.startsWith('0000'), 'must be a date-time from year 0001 on');

/** Model tiers of agent tasks: quick (Haiku), standard (Sonnet), complex (Opus); the deployment names the models. */
export const ModelTier = z.enum(['quick', 'standard', 'complex']);

export const PageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
});
export type PageQuery = z.infer<typeof PageQuery>;

/*
 * Shapes of values the API returns (responses are not validated at run time: these document
 * what the services produce, which the request schemas above already constrained).
 */
/** An email address as stored: validated (and lower-cased) by Email when it was given. */
export const EmailOut = z.email().max(254);
export const SlugOut = z
  .string()
  .max(63)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/);
/** A role as granted: a built-in role or "custom:<key>". */
export const RoleNameOut = z
  .string()
  .max(70)
  .regex(/^(owner|admin|security|auditor|approver|member|custom:[a-z0-9][a-z0-9-]{0,62})$/);
/** A granted permission, "<action>:<Subject>", with ":own" when limited to the caller's own records. */
export const PermissionOut = z
  .string()
  .max(80)
  .regex(/^[a-z_]+:[A-Za-z]+(?::own)?$/);
/** An API key scope: "*" or "<action>:<Subject>". */
export const ScopeOut = z
  .string()
  .max(80)
  .regex(/^(?:\*|[a-z_]+:[A-Za-z]+)$/);
/** A request id: the caller's well-formed X-Request-Id, or a UUID the API generated. */
export const RequestIdOut = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9._-]{8,64}$/);

export const OrgSummary = z.strictObject({ id: Uuid, name: z.string().max(200), slug: SlugOut });
export const UserSummary = z.strictObject({ id: Uuid, email: EmailOut, name: z.string().max(200) });

export function page<T extends z.ZodType>(item: T) {
  return z.strictObject({
    items: z.array(item).max(200),
    total: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    limit: z.int().min(1).max(200),
    offset: z.int().min(0).max(100_000),
  });
}
