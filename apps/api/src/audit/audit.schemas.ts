import { z } from 'zod';
import { PageQuery, RequestIdOut, Timestamp, Uuid } from '../core/schemas';

export const AuditEventView = z.strictObject({
  id: Uuid,
  occurredAt: Timestamp,
  actorType: z.enum(['user', 'api_key', 'agent_task', 'system']),
  actorId: Uuid.nullable(),
  /** "<subject>.<verb>", e.g. "member.suspend". */
  action: z
    .string()
    .max(80)
    .regex(/^[a-z_.]+$/),
  /** The kind of record acted on, e.g. "Member". */
  targetType: z
    .string()
    .max(40)
    .regex(/^[A-Z][A-Za-z]*$/)
    .nullable(),
  targetId: Uuid.nullable(),
  outcome: z.enum(['success', 'failure', 'denied']),
  client: z.enum(['rest', 'mcp', 'cli', 'console', 'worker', 'system']),
  sourceIp: z.string().max(64).nullable(),
  requestId: RequestIdOut.nullable(),
  payload: z.record(
    z
      .string()
      .max(100)
      .regex(/^[A-Za-z][A-Za-z0-9_]*$/),
    z.unknown(),
  ),
  /** Sensitive fields are sealed; only auditors may open them. */
  sealed: z.boolean(),
});

export const ListAuditEventsQuery = PageQuery.extend({
  action: z.string().max(80).regex(/^[a-z_.]+$/, 'lower-case action name such as member.suspend').optional(),
  actorId: Uuid.optional(),
  targetId: Uuid.optional(),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  since: Timestamp.optional(),
  until: Timestamp.optional(),
});
