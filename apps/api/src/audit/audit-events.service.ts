import { Injectable } from '@nestjs/common';
import { type CanonicalEvent, readSealed } from '@steward/audit';
import { AppError, UUID_PATTERN } from '@steward/common';
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

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { at: string; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  // Exactly what encodeCursor writes: an ISO instant as toISOString gives it, and a uuid.
  if (!at || !id || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(at) || Number.isNaN(Date.parse(at)) || new Date(at).toISOString() !== at || at.startsWith('0000') || !UUID_PATTERN.test(id)) {
    throw AppError.validation([{ path: 'cursor', message: 'not a cursor this API returned' }]);
  }
  return { at, id };
}

function monthsBetween(since: Date, until: Date): string[] {
  const out: string[] = [];
  const d = new Date(Date.UTC(since.getUTCFullYear(), since.getUTCMonth(), 1));
  while (d <= until && out.length < 24) {
    out.push(`${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-01`);
    d.setUTCMonth(d.getUTCMonth() + 1);
  }
  return out;
}

/**
 * Search over the trail's metadata (every reader), by sensitive value through the blind
 * index and with decryption (only read_sensitive: the auditor role). Every search and
 * every payload view is itself recorded in the trail, in the same transaction.
 */
@Injectable()
export class AuditEventsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  async list(p: Principal, q: z.infer<typeof ListAuditEventsQuery>) {
    await this.access.authorize(p, 'read', 'AuditEvent');
    if (q.value !== undefined) await this.access.authorize(p, 'read_sensitive', 'AuditEvent');
    return this.db.inOrg(p, async (em) => {
      const where = ['org_id = $1'];
      const args: unknown[] = [p.orgId];
      const add = (sql: string, v: unknown) => {
        args.push(v);
        where.push(sql.replaceAll('?', `$${args.length}`));
      };
      const columns: [keyof typeof q, string][] = [
        ['action', 'action'],
        ['actorId', 'actor_id'],
        ['actorType', 'actor_type'],
        ['targetId', 'target_id'],
        ['outcome', 'outcome'],
        ['level', 'level'],
        ['decision', 'decision'],
        ['connector', 'connector'],
        ['taskId', 'task_id'],
        ['approvalId', 'approval_id'],
      ];
      for (const [key, column] of columns) if (q[key] !== undefined) add(`${column} = ?`, q[key]);
      if (q.since) add('occurred_at >= ?', q.since);
      if (q.until) add('occurred_at < ?', q.until);
      if (q.value !== undefined) {
        const until = q.until ? new Date(q.until) : new Date();
        const since = q.since ? new Date(q.since) : new Date(until.getTime() - 190 * 86_400_000);
        const tokens: string[] = [];
        for (const month of monthsBetween(since, until)) {
          const key = await this.audit.keyring.key(em, p.orgId, month, false);
          if (!key) continue;
          const fields = q.field ? [q.field] : ['email', 'recipients', 'attendees', 'arguments'];
          for (const f of fields) tokens.push(this.audit.keyring.blind(key, f, q.value));
        }
        args.push(tokens);
        where.push(`(canonical::jsonb)->'blind' ?| $${args.length}::text[]`);
        // An erased person's values are not findable either (their blind tokens stay in the chained events).
        where.push(`NOT EXISTS (SELECT 1 FROM audit_erasures x WHERE x.org_id = audit_events.org_id
                     AND x.subject = (audit_events.canonical::jsonb)->'sealed'->>'subject' AND audit_events.occurred_at <= x.erased_at)`);
      }
      if (q.cursor) {
        const c = decodeCursor(q.cursor);
        args.push(c.at, c.id);
        where.push(`(occurred_at, id) < ($${args.length - 1}::timestamptz, $${args.length}::uuid)`);
      }
      const rows: { canonical: string; occurred_at: Date; id: string }[] = await em.query(
        `SELECT canonical, occurred_at, id FROM audit_events WHERE ${where.join(' AND ')} ORDER BY occurred_at DESC, id DESC LIMIT $${args.length + 1}`,
        [...args, q.limit + 1],
      );
      const page = rows.slice(0, q.limit);
      const nextCursor = rows.length > q.limit ? encodeCursor(page[page.length - 1].occurred_at, page[page.length - 1].id) : null;
      const { limit, cursor, value, ...filters } = q;
      await this.audit.record(em, p, {
        action: 'audit.search',
        targetType: 'AuditEvent',
        payload: { filters, limit, cursor: cursor ?? null, byValue: value !== undefined, returned: page.length },
        ...(value !== undefined ? { sensitive: { query: value } } : {}),
      });
      return { items: page.map((r) => view(JSON.parse(r.canonical) as CanonicalEvent)), nextCursor };
    });
  }

  /** The sealed fields of one event, decrypted: auditors only, and audited. */
  async sensitive(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'AuditEvent');
    return this.db.inOrg(p, async (em) => {
      const [row] = await em.query('SELECT canonical FROM audit_events WHERE org_id = $1 AND id = $2', [p.orgId, id]);
      if (!row) throw AppError.notFound('audit event');
      await this.access.authorize(p, 'read_sensitive', 'AuditEvent', { id });
      const event = JSON.parse(row.canonical) as CanonicalEvent;
      // Under the month's or the person's key, or a legal hold's copy; null once shredded (retention, erasure).
      const fields = await readSealed(em, this.audit.keyring, p.orgId, event);
      await this.audit.record(em, p, { action: 'audit.payload_view', targetType: 'AuditEvent', targetId: id, payload: { readable: fields !== null } });
      return { id, fields };
    });
  }
}
