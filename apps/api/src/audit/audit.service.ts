import { Injectable } from '@nestjs/common';
import { newId } from '@steward/common';
import { AuditEvent, type AuditClient, type AuditOutcome, type ActorType, type EntityManager } from '@steward/db';
import type { Principal } from '../auth/principal';

export interface AuditActor {
  orgId: string;
  actorType: ActorType;
  actorId: string | null;
  client: AuditClient;
  sourceIp: string | null;
  requestId: string | null;
}

export interface AuditRecord {
  /** "<subject>.<verb>", e.g. "member.suspend". */
  action: string;
  targetType?: string;
  targetId?: string | null;
  outcome?: AuditOutcome;
  /** Never secrets: ids, names, changed field names and values that are not credentials. */
  payload?: Record<string, unknown>;
}

export function actorOf(p: Principal): AuditActor {
  return {
    orgId: p.orgId,
    actorType: p.actorType,
    actorId: p.actorId,
    client: p.client,
    sourceIp: p.sourceIp,
    requestId: p.requestId,
  };
}

/**
 * The one call site for writing the trail. It takes the mutation's own EntityManager,
 * so the event commits or rolls back with the change it records.
 */
@Injectable()
export class AuditService {
  async record(em: EntityManager, actor: AuditActor | Principal, event: AuditRecord): Promise<void> {
    const a = 'kind' in actor ? actorOf(actor) : actor;
    await em.insert(AuditEvent, {
      id: newId(),
      orgId: a.orgId,
      occurredAt: new Date(),
      actorType: a.actorType,
      actorId: a.actorId,
      action: event.action,
      targetType: event.targetType ?? null,
      targetId: event.targetId ?? null,
      outcome: event.outcome ?? 'success',
      client: a.client,
      sourceIp: a.sourceIp?.slice(0, 64) ?? null,
      requestId: a.requestId,
      payload: (event.payload ?? {}) as never, // jsonb: TypeORM's deep-partial type cannot express Record<string, unknown>
    });
  }
}
