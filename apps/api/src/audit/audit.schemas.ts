import { z } from 'zod';
import { RequestIdOut, Timestamp, Uuid } from '../core/schemas';

export const AuditEventView = z.strictObject({
  id: Uuid,
  occurredAt: Timestamp,
  actorType: z.enum(['user', 'api_key', 'agent_task', 'system', 'scim_token']),
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
  client: z.enum(['rest', 'mcp', 'cli', 'console', 'worker', 'system', 'scim']),
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

export const ListAuditEventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** Opaque: the nextCursor of the previous page. Order is stable: newest first, then by id. */
  cursor: z.string().max(200).regex(/^[A-Za-z0-9_-]+$/, 'a cursor returned by the previous page').optional(),
  action: z.string().max(80).regex(/^[a-z_.]+$/, 'lower-case action name such as member.suspend').optional(),
  actorId: Uuid.optional(),
  actorType: z.enum(['user', 'api_key', 'agent_task', 'system', 'scim_token']).optional(),
  targetId: Uuid.optional(),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  level: z.enum(['autonomous', 'batched', 'watched', 'forbidden']).optional(),
  decision: z.string().max(40).regex(/^[a-z_]+$/).optional(),
  connector: z.string().max(80).regex(/^[a-z0-9_.-]+$/).optional(),
  taskId: Uuid.optional(),
  approvalId: Uuid.optional(),
  since: Timestamp.optional(),
  until: Timestamp.optional(),
  /** Search by a sensitive value (an address, say) through the blind index; needs read_sensitive. */
  value: z.string().min(1).max(320).optional(),
  field: z.string().max(40).regex(/^[a-zA-Z_]+$/).optional(),
});

export const AuditEventPage = z.strictObject({
  items: z.array(AuditEventView).max(500),
  nextCursor: z.string().max(200).nullable(),
});

export const SensitiveView = z.strictObject({
  id: Uuid,
  /** null when the month's key was destroyed (retention passed, or erasure). */
  fields: z.record(z.string().max(100), z.unknown()).nullable(),
});

