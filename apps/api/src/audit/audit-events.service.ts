import { Injectable } from '@nestjs/common';
import { AuditEvent } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { AuditEventView, ListAuditEventsQuery } from './audit.schemas';
import { AuditService } from './audit.service';

function view(e: AuditEvent): z.infer<typeof AuditEventView> {
  return {
    id: e.id,
    occurredAt: e.occurredAt.toISOString(),
    actorType: e.actorType,
    actorId: e.actorId,
    action: e.action,
    targetType: e.targetType,
    targetId: e.targetId,
    outcome: e.outcome,
    client: e.client,
    sourceIp: e.sourceIp,
    requestId: e.requestId,
    payload: e.payload,
  };
}

/** Searching the trail is itself recorded in the trail, in the same transaction. */
@Injectable()
export class AuditEventsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  async list(p: Principal, q: z.infer<typeof ListAuditEventsQuery>) {
    await this.access.authorize(p, 'read', 'AuditEvent');
    return this.db.inOrg(p, async (em) => {
      const qb = em.createQueryBuilder(AuditEvent, 'e').where('e.org_id = :org', { org: p.orgId });
      if (q.action) qb.andWhere('e.action = :action', { action: q.action });
      if (q.actorId) qb.andWhere('e.actor_id = :actor', { actor: q.actorId });
      if (q.targetId) qb.andWhere('e.target_id = :target', { target: q.targetId });
      if (q.outcome) qb.andWhere('e.outcome = :outcome', { outcome: q.outcome });
      if (q.since) qb.andWhere('e.occurred_at >= :since', { since: q.since });
      if (q.until) qb.andWhere('e.occurred_at < :until', { until: q.until });
      const [rows, total] = await qb.orderBy('e.occurred_at', 'DESC').addOrderBy('e.id', 'DESC').take(q.limit).skip(q.offset).getManyAndCount();
      const { limit, offset, ...filters } = q;
      await this.audit.record(em, p, { action: 'audit.search', targetType: 'AuditEvent', payload: { filters, limit, offset, returned: rows.length } });
      return { items: rows.map(view), total, limit, offset };
    });
  }
}
