import { z } from 'zod';
import { Timestamp, Uuid } from '../core/schemas';

/** SCIM 2.0 (RFC 7643/7644) wire shapes as Okta and Entra ID send them: unknown attributes are accepted and ignored. */
export const SCIM = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  list: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patch: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  config: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
} as const;

/** Entra ID sends booleans as "True"/"False" strings in PATCH values. */
export const Boolish = z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False', 'TRUE', 'FALSE'])]).transform((v) => v === true || String(v).toLowerCase() === 'true');

const Text = (max: number) => z.string().max(max);
const Schemas = z.array(Text(200)).max(10).optional();

export const ScimEmail = z.looseObject({ value: Text(254), type: Text(50).optional(), primary: Boolish.optional() });
export const ScimName = z.looseObject({ formatted: Text(200).optional(), givenName: Text(100).optional(), familyName: Text(100).optional() });

export const ScimUserBody = z.looseObject({
  schemas: Schemas,
  userName: z.string().trim().min(1).max(254),
  externalId: Text(255).nullish(),
  name: ScimName.optional(),
  displayName: Text(200).optional(),
  emails: z.array(ScimEmail).max(20).optional(),
  active: Boolish.optional(),
  /** Sent by some clients; Steward never stores a password for provisioned people (they use SSO). */
  password: Text(500).optional(),
});

export const ScimGroupMember = z.looseObject({ value: Text(100), display: Text(300).optional() });

export const ScimGroupBody = z.looseObject({
  schemas: Schemas,
  displayName: z.string().trim().min(1).max(200),
  externalId: Text(255).nullish(),
  members: z.array(ScimGroupMember).max(5000).optional(),
});

export const ScimPatchBody = z.looseObject({
  schemas: Schemas,
  Operations: z
    .array(z.looseObject({ op: z.string().min(1).max(20), path: Text(500).optional(), value: z.unknown().optional() }))
    .min(1)
    .max(200),
});

export const ScimListQuery = z.object({
  filter: Text(500).optional(),
  startIndex: z.coerce.number().int().min(1).max(1_000_000).optional(),
  count: z.coerce.number().int().min(0).max(1000).optional(),
  attributes: Text(1000).optional(),
  excludedAttributes: Text(1000).optional(),
});

export const ScimGetQuery = z.object({ attributes: Text(1000).optional(), excludedAttributes: Text(1000).optional() });

/** Responses are SCIM resources (documented loosely: RFC 7643 defines them). */
export const ScimResource = z.looseObject({ schemas: z.array(z.string().max(200)).max(10) });

// Admin API for the org's SCIM tokens.
export const ScimTokenView = z.strictObject({
  id: Uuid,
  name: z.string().max(100),
  hint: z.string().max(20),
  createdBy: Uuid.nullable(),
  lastUsedAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
  createdAt: Timestamp,
});
export const ScimTokenList = z.strictObject({ items: z.array(ScimTokenView).max(1000) });
export const CreateScimTokenBody = z.strictObject({ name: z.string().trim().min(1).max(100) });
export const ScimTokenCreated = z.strictObject({
  token: ScimTokenView,
  /** Shown once: give it to the identity provider's provisioning settings. */
  secret: z.string().max(200),
  /** The SCIM base URL to give the identity provider. */
  baseUrl: z.string().max(2100),
});
