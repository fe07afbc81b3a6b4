import { Injectable } from '@nestjs/common';
import type { CanonicalEvent } from '@steward/audit';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { AuditEventView, ListAuditEventsQuery } from './audit.schemas';
import { AuditService } from './audit.service';

function view(e: CanonicalEvent): z.infer<typeof AuditEventView> {
  return {
    id: e.id,
    occurredAt: e.at,
    actorType: e.actor.type,
    actorId: e.actor.id,
    action: e.action,
    targetType: e.target?.type ?? null,
    targetId: e.target?.id ?? null,
    outcome: e.outcome,
    client: e.client,
    sourceIp: e.ip ?? null,
    requestId: e.req ?? null,
    payload: e.payload,
    sealed: e.sealed !== undefined,
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
      const where = ['org_id = $1'];
      const args: unknown[] = [p.orgId];
      const add = (sql: string, v: unknown) => {
        args.push(v);
        where.push(sql.replace('?', `$${args.length}`));
      };
      if (q.action) add('action = ?', q.action);
      if (q.actorId) add('actor_id = ?', q.actorId);
      if (q.targetId) add('target_id = ?', q.targetId);
      if (q.outcome) add('outcome = ?', q.outcome);
      if (q.since) add('occurred_at >= ?', q.since);
      if (q.until) add('occurred_at < ?', q.until);
      const filter = where.join(' AND ');
      const [{ total }] = await em.query(`SELECT count(*)::int AS total FROM audit_events WHERE ${filter}`, args);
      const rows: { canonical: string }[] = await em.query(
        `SELECT canonical FROM audit_events WHERE ${filter} ORDER BY occurred_at DESC, id DESC LIMIT $${args.length + 1} OFFSET $${args.length + 2}`,
        [...args, q.limit, q.offset],
      );
      const { limit, offset, ...filters } = q;
      await this.audit.record(em, p, { action: 'audit.search', targetType: 'AuditEvent', payload: { filters, limit, offset, returned: rows.length } });
      return { items: rows.map((r) => view(JSON.parse(r.canonical) as CanonicalEvent)), total, limit, offset };
    });
  }
}
