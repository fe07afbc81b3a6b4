import { sinkUrlSyntax } from '@steward/audit';
import { z } from 'zod';
import { secretInput, Timestamp, Uuid } from '../core/schemas';

const SinkUrl = z
  .string()
  .trim()
  .max(2000)
  .superRefine((v, ctx) => {
    try {
      // Syntax and literal addresses here; allowlisted hosts and DNS answers in the service.
      sinkUrlSyntax(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** The HEC token is write-only: it is never part of a response. */
const HecToken = secretInput(1, 500);

export const SiemSinkView = z.strictObject({
  id: Uuid,
  url: z.string().max(2048),
  enabled: z.boolean(),
  batchSize: z.number().int(),
  lastSeq: z.number().int(),
  lastError: z.string().max(1000).nullable(),
  /** The endpoint refused the sink itself (401, 403, 404): it is asked again at this time (backoff from 30 s to an hour), or at once after an edit of the sink. */
  retryAt: Timestamp.nullable(),
  deadLetters: z.number().int(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const CreateSiemSinkBody = z.strictObject({
  /** Base URL of the Splunk HEC endpoint (events go to {url}/services/collector/event). */
  url: SinkUrl,
  token: HecToken,
  enabled: z.boolean().optional(),
  batchSize: z.number().int().min(1).max(10000).optional(),
  /** Where to start: 0 (default) sends the whole trail; omit history with the current head's seq. */
  fromSeq: z.number().int().min(0).optional(),
});

export const UpdateSiemSinkBody = z
  .strictObject({
    url: SinkUrl.optional(),
    token: HecToken.optional(),
    enabled: z.boolean().optional(),
    batchSize: z.number().int().min(1).max(10000).optional(),
  })
  .refine((v) => Object.keys(v).length > 0, { message: 'nothing to change' });

export const SiemSinkList = z.strictObject({ items: z.array(SiemSinkView).max(100) });
