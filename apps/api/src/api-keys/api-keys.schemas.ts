import { z } from 'zod';
import { ALL_SCOPES } from '@steward/policy';
import { PageQuery, ScopeOut, Timestamp, Uuid } from '../core/schemas';

export const Scope = z.enum(['*', ...ALL_SCOPES] as [string, ...string[]]);

export const ApiKeyView = z.strictObject({
  id: Uuid,
  userId: Uuid,
  name: z.string().max(200),
  /** The key's first characters, enough to recognise it. */
  hint: z
    .string()
    .max(16)
    .regex(/^stw_[A-Za-z0-9_-]*$/),
  scopes: z.array(ScopeOut).max(100),
  status: z.enum(['active', 'expired', 'revoked']),
  expiresAt: Timestamp,
  lastUsedAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
  createdAt: Timestamp,
});

export const CreateApiKeyBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  scopes: z.array(Scope).min(1).max(100),
  expiresInDays: z.int().min(1).max(365).default(90),
});

export const CreatedApiKey = z.strictObject({
  apiKey: ApiKeyView,
  /** Shown once; only its HMAC is stored. */
  secret: z
    .string()
    .max(100)
    .regex(/^stw_[A-Za-z0-9_-]+$/),
});

export const ListApiKeysQuery = PageQuery.extend({
  status: z.enum(['active', 'expired', 'revoked']).optional(),
  /** Only this member's keys (everyone's needs the permission to read every key). */
  user: Uuid.optional(),
});
