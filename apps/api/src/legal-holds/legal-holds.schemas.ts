import { z } from 'zod';
import { Timestamp, Uuid } from '../core/schemas';

export const LegalHoldView = z.strictObject({
  id: Uuid,
  userId: Uuid.nullable(),
  from: Timestamp,
  until: Timestamp.nullable(),
  reason: z.string().max(500),
  createdBy: Uuid,
  createdAt: Timestamp,
  releasedAt: Timestamp.nullable(),
});

export const CreateLegalHoldBody = z
  .strictObject({
    /** One member's events; omit to hold the whole org. */
    userId: Uuid.optional(),
    from: Timestamp,
    until: Timestamp.optional(),
    reason: z.string().trim().min(1).max(500),
  })
  .refine((v) => !v.until || Date.parse(v.until) > Date.parse(v.from), { message: 'until must be after from', path: ['until'] });

export const LegalHoldList = z.strictObject({ items: z.array(LegalHoldView).max(1000) });
