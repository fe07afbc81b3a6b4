import { Injectable } from '@nestjs/common';
import { AppError, newId, UUID_PATTERN } from '@steward/common';
import { type EntityManager, queryReturning } from '@steward/db';
import { sanctionFor } from '@steward/policy';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { ListViolationsQuery, TriageBody, ViolationView } from './oversight.schemas';
import { lockOwners } from '../members/owners';

interface ViolationRow {
  id: string;
  state: 'open' | 'confirmed' | 'dismissed';
  automatic: boolean;
  user_id: string;
  task_id: string | null;
  action_id: string;
  connector: string;
  tool: string;
  action_type: string;
  args_digest: string;
  tainted: boolean;
  labels: string[];
  rule_ids: string[];
  reason: string;
  note: string | null;
  decided_by: string | null;
  decided_at: Date | null;
  created_at: Date;
}

/**
 * Forbidden attempts, opened by the gate's write-ahead for triage. Security confirms one (the
 * user meant it: a strike) or dismisses it (an agent steered by injected content: no strike).
 * Confirmed strikes in the last year follow the policy's ladder (libs/policy sanctions): the
 * second suspends the member's agent access — the membership suspension that the gate reads in
 * its write-ahead, so their next action is refused. An owner lifts it with the members route
 * (`POST /v1/members/{userId}/reactivate`, audited).
 */
/** $2 is an owner of org $1, and no other owner is active. */
const LAST_ACTIVE_OWNER = `(EXISTS (SELECT 1 FROM role_assignments ra WHERE ra.org_id = $1 AND ra.user_id = $2 AND ra.role = 'owner')
  AND (SELECT count(*) FROM role_assignments ra JOIN memberships m ON m.org_id = ra.org_id AND m.user_id = ra.user_id WHERE ra.org_id = $1 AND ra.role = 'owner' AND m.status = 'active') <= 1)`;

@Injectable()
export class ViolationsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  private view(r: ViolationRow): z.infer<typeof ViolationView> {
    return {
      id: r.id,
      state: r.state,
      automatic: r.automatic,
      userId: r.user_id,
      taskId: r.task_id,
      actionId: r.action_id,
      connector: r.connector,
      tool: r.tool,
      actionType: r.action_type,
      argsDigest: r.args_digest,
      tainted: r.tainted,
      labels: r.labels,
      ruleIds: r.rule_ids,
      reason: r.reason,
      note: r.note,
      decidedBy: r.decided_by,
      decidedAt: r.decided_at?.toISOString() ?? null,
      createdAt: r.created_at.toISOString(),
    };
  }

  private async load(em: EntityManager, p: Principal, id: string, lock = false): Promise<ViolationRow> {
    const [row]: ViolationRow[] = UUID_PATTERN.test(id) ? await em.query(`SELECT * FROM violations WHERE org_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [p.orgId, id]) : [];
    if (!row) throw AppError.notFound('violation');
    return row;
  }

  async list(p: Principal, q: z.infer<typeof ListViolationsQuery>) {
    await this.access.authorize(p, 'read', 'Violation');
    const params: unknown[] = [p.orgId];
    const where = ['org_id = $1'];
    if (q.state) where.push(`state = $${params.push(q.state)}`);
    if (q.userId) where.push(`user_id = $${params.push(q.userId)}`);
    if (q.cursor) where.push(`id < $${params.push(q.cursor)}`);
    return this.db.inOrg(p, async (em) => {
      const rows: ViolationRow[] = await em.query(`SELECT * FROM violations WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.push(q.limit + 1)}`, params);
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit);
      return { items: items.map((r) => this.view(r)), nextCursor: more ? items[items.length - 1].id : null };
    });
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Violation');
    return this.db.inOrg(p, async (em) => this.view(await this.load(em, p, id)));
  }

  async triage(p: Principal, id: string, verdict: 'confirm' | 'dismiss', body: z.infer<typeof TriageBody>) {
    await this.access.authorize(p, 'triage', 'Violation');
    return this.db.inOrg(p, async (em) => {
      const v = await this.load(em, p, id, true);
      if (v.state !== 'open') throw AppError.conflict(`The violation is already ${v.state}.`);
      if (v.user_id === p.userId) await this.access.deny(p, 'triage', 'Violation', id, 'own_violation', 'Nobody triages their own violation.');
      // One triage of this person's violations at a time: the count below then sees a confirmation
      // committed by a colleague a moment ago (two strikes confirmed at once still suspend).
      // (The owners' lock first, as every path that may suspend takes it: never in the opposite order.)
      await lockOwners(em, p.orgId);
      await em.query(`SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2 FOR UPDATE`, [p.orgId, v.user_id]);
      const state = verdict === 'confirm' ? 'confirmed' : 'dismissed';
      await em.query(`UPDATE violations SET state = $3, note = $4, decided_by = $5, decided_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, id, state, body.note, p.userId]);
      await this.audit.record(em, p, { action: `violation.${verdict}`, targetType: 'Violation', targetId: id, payload: { userId: v.user_id, taskId: v.task_id, actionId: v.action_id, actionType: v.action_type } });
      // The strikes of the year before, on the database's clock (decided_at is its now(): an API host
      // whose clock runs behind would leave out the confirmation just made).
      const confirmed: { decided_at: Date; at: Date }[] = await em.query(
        `SELECT decided_at, now() AS at FROM violations WHERE org_id = $1 AND user_id = $2 AND state = 'confirmed' AND decided_at IS NOT NULL AND decided_at > now() - interval '365 days'`,
        [p.orgId, v.user_id],
      );
      const sanction = confirmed.length ? sanctionFor(confirmed.map((c) => ({ confirmedAt: new Date(c.decided_at) })), new Date(confirmed[0]!.at)) : 'none';
      // The ladder step this confirmation leads to, kept for owners to lift or give an outcome (../sanctions).
      if (verdict === 'confirm' && sanction !== 'none') {
        const sanctionId = newId();
        await em.query(`INSERT INTO sanctions (org_id, id, user_id, violation_id, kind, strikes) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, violation_id) DO NOTHING`, [
          p.orgId, sanctionId, v.user_id, id, sanction, confirmed.length,
        ]);
        await this.audit.record(em, p, { action: 'sanction.open', targetType: 'Sanction', targetId: sanctionId, payload: { userId: v.user_id, violationId: id, kind: sanction, strikes: confirmed.length } });
      }
      if (verdict === 'confirm' && (sanction === 'suspension' || sanction === 'disciplinary_review')) {
        // Not the org's last active owner: only an owner lifts a sanction, so nobody could (as suspend() refuses it too).
        const suspended = await queryReturning(
          em,
          `UPDATE memberships SET status = 'suspended', suspended_at = now(), suspended_reason = $3, suspended_by = NULL WHERE org_id = $1 AND user_id = $2 AND status = 'active' AND NOT ${LAST_ACTIVE_OWNER} RETURNING id`,
          [p.orgId, v.user_id, `${confirmed.length} confirmed violations: agent access suspended`],
        );
        if (suspended.length) await this.audit.record(em, p, { action: 'member.suspend', targetType: 'Member', targetId: v.user_id, payload: { reason: 'sanctions', strikes: confirmed.length, violationId: id } });
        else if ((await em.query(`SELECT ${LAST_ACTIVE_OWNER} AS last`, [p.orgId, v.user_id]))[0].last) {
          await this.audit.record(em, p, { action: 'member.suspend_withheld', targetType: 'Member', targetId: v.user_id, payload: { reason: 'last_active_owner', strikes: confirmed.length, violationId: id } });
        }
      }
      return { ...this.view(await this.load(em, p, id)), strikes: confirmed.length, sanction };
    });
  }
}
