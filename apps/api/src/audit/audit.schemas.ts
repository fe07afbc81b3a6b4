import { z } from 'zod';
import { PageQuery, Timestamp, Uuid } from '../core/schemas';

export const AuditEventView = z.strictObject({
  id: Uuid,
  occurredAt: Timestamp,
  actorType: z.enum(['user', 'api_key', 'agent_task', 'system']),
  actorId: Uuid.nullable(),
  action: z.string().max(80),
  targetType: z.string().max(40).nullable(),
  targetId: Uuid.nullable(),
  outcome: z.enum(['success', 'failure', 'denied']),
  client: z.enum(['rest', 'mcp', 'cli', 'console', 'worker', 'system']),
  sourceIp: z.string().max(64).nullable(),
  requestId: z.string().max(64).nullable(),
  payload: z.record(z.string().max(100), z.unknown()),
});

export const ListAuditEventsQuery = PageQuery.extend({
  action: z.string().max(80).regex(/^[a-z_.]+$/, 'lower-case action name such as member.suspend').optional(),
  actorId: Uuid.optional(),
  targetId: Uuid.optional(),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  since: Timestamp.optional(),
  until: Timestamp.optional(),
});
