import { z } from 'zod';
import { Domain, Email, Password, PersonName, secretInput, Slug, Uuid } from '../core/schemas';

export const SetupBody = z.strictObject({
  setupToken: secretInput(10, 200),
  org: z.strictObject({
    name: z.string().trim().min(1).max(200),
    slug: Slug,
    domains: z.array(Domain).max(20).optional(),
  }),
  owner: z.strictObject({ email: Email, name: PersonName, password: Password }),
});

export const SetupStatus = z.strictObject({ completed: z.boolean() });
export const SetupResult = z.strictObject({ orgId: Uuid, userId: Uuid });
