import { Injectable } from '@nestjs/common';
import { AppError, UUID_PATTERN } from '@steward/common';
import { type EntityManager, queryReturning } from '@steward/db';
import { sanctionFor } from '@steward/policy';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { SANCTION_SUSPENSION, SCIM_SUSPENSION } from '../scim/scim.service';
import type { EvidenceView, LiftBody, ListSanctionsQuery, OutcomeBody, SanctionView, StrikesView } from './sanctions.schemas';

interface SanctionRow {
  id: string;
  user_id: string;
  violation_id: string;
  kind: 'warning' | 'suspension' | 'disciplinary_review';
  strikes: number;
  state: 'open' | 'lifted' | 'resolved';
  outcome: z.infer<typeof SanctionView>['outcome'];
  note: string | null;
  decided_by: string | null;
  decided_at: Date | null;
  created_at: Date;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
const view = (r: SanctionRow): z.infer<typeof SanctionView> => ({
  id: r.id,
  userId: r.user_id,
  violationId: r.violation_id,
  kind: r.kind,
  strikes: r.strikes,
  state: r.state,
  outcome: r.outcome,
  note: r.note,
  decidedBy: r.decided_by,
  decidedAt: iso(r.decided_at),
  createdAt: iso(r.created_at)!,
});

/**
 * Sanctions: the step of the seed policy's ladder each confirmed violation led to (first a
 * warning and retraining, second suspension of agent access, third a disciplinary review;
 * strikes counted over a year). Violations themselves are triaged in ../oversight
 * (ViolationsService), which records the sanction here in the same transaction. Owners lift a
 * suspension (the membership is reactivated) or record a review's outcome; both audited.
 */
/** No other open sanction holds the member (a suspension and a disciplinary review are each closed by an owner before access returns). */
const NOT_HELD = `NOT EXISTS (SELECT 1 FROM sanctions o WHERE o.org_id = $1 AND o.user_id = $2 AND o.state = 'open' AND o.kind IN ('suspension', 'disciplinary_review'))
  AND (suspended_reason ~ '^[0-9]+ confirmed violations: agent access suspended$' OR suspended_reason IN ('automatic strikes: second confirmed violation', '${SANCTION_SUSPENSION}'))`;

@Injectable()
export class SanctionsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  private async load(em: EntityManager, orgId: string, id: string): Promise<SanctionRow> {
    const [row]: SanctionRow[] = UUID_PATTERN.test(id) ? await em.query(`SELECT * FROM sanctions WHERE org_id = $1 AND id = $2 FOR UPDATE`, [orgId, id]) : [];
    if (!row) throw AppError.notFound('sanction');
    return row;
  }

  async list(p: Principal, q: z.infer<typeof ListSanctionsQuery>) {
    await this.access.authorize(p, 'read', 'Sanction');
    const params: unknown[] = [p.orgId];
    const where = ['org_id = $1'];
    if (q.userId) where.push(`user_id = $${params.push(q.userId)}`);
    if (q.state) where.push(`state = $${params.push(q.state)}`);
    if (q.cursor) where.push(`id < $${params.push(q.cursor)}`);
    return this.db.inOrg(p, async (em) => {
      const rows: SanctionRow[] = await em.query(`SELECT * FROM sanctions WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.push(q.limit + 1)}`, params);
      const items = rows.slice(0, q.limit);
      return { items: items.map(view), nextCursor: rows.length > q.limit ? items[items.length - 1].id : null };
    });
  }

  async strikes(p: Principal, userId: string): Promise<z.infer<typeof StrikesView>> {
    await this.access.authorize(p, 'read', 'Sanction');
    return this.db.inOrg(p, async (em) => {
      const [m]: { status: string }[] = UUID_PATTERN.test(userId) ? await em.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [p.orgId, userId]) : [];
      if (!m) throw AppError.notFound('member');
      const v: { state: string; decided_at: Date | null }[] = await em.query(`SELECT state, decided_at FROM violations WHERE org_id = $1 AND user_id = $2`, [p.orgId, userId]);
      const confirmed = v.filter((x) => x.state === 'confirmed' && x.decided_at).map((x) => ({ confirmedAt: new Date(x.decided_at!) }));
      const now = new Date();
      const since = now.getTime() - 365 * 86_400_000;
      const rows: SanctionRow[] = await em.query(`SELECT * FROM sanctions WHERE org_id = $1 AND user_id = $2 ORDER BY id DESC LIMIT 200`, [p.orgId, userId]);
      return {
        userId,
        strikes: confirmed.filter((c) => c.confirmedAt.getTime() > since).length,
        sanction: sanctionFor(confirmed, now),
        memberStatus: m.status,
        openViolations: v.filter((x) => x.state === 'open').length,
        dismissedViolations: v.filter((x) => x.state === 'dismissed').length,
        sanctions: rows.map(view),
      };
    });
  }

  /** The triage evidence of one Forbidden attempt: the attempt, the task's transcript, what it had read before, its taint. */
  async evidence(p: Principal, violationId: string): Promise<z.infer<typeof EvidenceView>> {
    await this.access.authorize(p, 'read', 'Violation');
    return this.db.inOrg(p, async (em) => {
      const [v]: {
        id: string; state: 'open' | 'confirmed' | 'dismissed'; user_id: string; task_id: string | null; action_id: string; connector: string; tool: string; action_type: string;
        args_digest: string; rule_ids: string[]; reason: string; tainted: boolean; labels: string[]; created_at: Date; decided_at: Date | null;
      }[] = UUID_PATTERN.test(violationId) ? await em.query(`SELECT * FROM violations WHERE org_id = $1 AND id = $2`, [p.orgId, violationId]) : [];
      if (!v) throw AppError.notFound('violation');
      let task: z.infer<typeof EvidenceView>['task'] = null;
      if (v.task_id) {
        const [t]: { id: string; state: string; workflow: string | null; created_at: Date }[] = await em.query(`SELECT id, state, workflow, created_at FROM tasks WHERE org_id = $1 AND id = $2`, [p.orgId, v.task_id]);
        const [attempt]: { step: number | null }[] = await em.query(`SELECT step FROM task_actions WHERE org_id = $1 AND id = $2`, [p.orgId, v.action_id]);
        const prior: { step: number | null; connector: string; tool: string; action_type: string; level: string; state: string; tainted: boolean; labels: string[] }[] = await em.query(
          `SELECT step, connector, tool, action_type, level, state, tainted, labels FROM task_actions
            WHERE org_id = $1 AND task_id = $2 AND id <> $3 AND ($4::int IS NULL OR step < $4::int) AND action_type <> 'model.invoke' ORDER BY step NULLS LAST, id LIMIT 500`,
          [p.orgId, v.task_id, v.action_id, attempt?.step ?? null],
        );
        if (t) {
          task = {
            id: t.id,
            state: t.state,
            workflow: t.workflow,
            createdAt: iso(t.created_at)!,
            transcript: `/v1/tasks/${t.id}/events`,
            priorActions: prior.map((a) => ({ step: a.step, connector: a.connector, tool: a.tool, actionType: a.action_type, level: a.level, state: a.state, tainted: a.tainted, labels: a.labels })),
          };
        }
      }
      const [{ n }] = await em.query(
        `SELECT count(*)::int AS n FROM violations WHERE org_id = $1 AND user_id = $2 AND state = 'confirmed' AND id <> $3 AND decided_at > now() - interval '365 days'`,
        [p.orgId, v.user_id, v.id],
      );
      // Reading the evidence is itself on the trail (it shows what an employee's agent did).
      await this.audit.record(em, p, { action: 'violation.read_evidence', targetType: 'Violation', targetId: v.id, payload: { userId: v.user_id, taskId: v.task_id } });
      return {
        violationId: v.id,
        state: v.state,
        userId: v.user_id,
        attempt: { actionId: v.action_id, connector: v.connector, tool: v.tool, actionType: v.action_type, argsDigest: v.args_digest, ruleIds: v.rule_ids, reason: v.reason, at: iso(v.created_at)! },
        tainted: v.tainted,
        labels: v.labels,
        task,
        priorStrikes: n,
      };
    });
  }

  async lift(p: Principal, id: string, body: z.infer<typeof LiftBody>) {
    await this.access.authorize(p, 'resolve', 'Sanction');
    return this.db.inOrg(p, async (em) => {
      const s = await this.load(em, p.orgId, id);
      if (s.kind === 'warning') throw AppError.conflict('A warning suspends nothing: record its outcome instead.');
      if (s.state !== 'open') throw AppError.conflict(`The sanction is already ${s.state}.`);
      await em.query(`UPDATE sanctions SET state = 'lifted', note = $3, decided_by = $4, decided_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, id, body.note, p.userId]);
      const reactivated = await queryReturning(
        em,
        `UPDATE memberships SET status = 'active', suspended_at = NULL, suspended_reason = NULL, suspended_by = NULL WHERE org_id = $1 AND user_id = $2 AND status = 'suspended' AND suspended_reason IS DISTINCT FROM $3 AND ${NOT_HELD} RETURNING id`,
        [p.orgId, s.user_id, SCIM_SUSPENSION],
      );
      await this.audit.record(em, p, { action: 'sanction.lift', targetType: 'Sanction', targetId: id, payload: { userId: s.user_id, kind: s.kind, reactivated: reactivated.length > 0 } });
      if (reactivated.length) await this.audit.record(em, p, { action: 'member.reactivate', targetType: 'Member', targetId: s.user_id, payload: { reason: 'sanction lifted', sanctionId: id } });
      return view(await this.load(em, p.orgId, id));
    });
  }

  async outcome(p: Principal, id: string, body: z.infer<typeof OutcomeBody>) {
    await this.access.authorize(p, 'resolve', 'Sanction');
    return this.db.inOrg(p, async (em) => {
      const s = await this.load(em, p.orgId, id);
      if (s.kind === 'suspension') throw AppError.conflict('A suspension is lifted, not given an outcome.');
      if (s.state !== 'open') throw AppError.conflict(`The sanction is already ${s.state}.`);
      if (s.kind === 'warning' && !['no_action', 'retraining'].includes(body.outcome)) {
        throw AppError.validation([{ path: 'outcome', message: 'a warning ends in "retraining" or "no_action"' }]);
      }
      await em.query(`UPDATE sanctions SET state = 'resolved', outcome = $3, note = $4, decided_by = $5, decided_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, id, body.outcome, body.note, p.userId]);
      // Access stays suspended after a review unless the outcome restores it.
      let reactivated = false;
      if (s.kind === 'disciplinary_review' && ['no_action', 'retraining', 'final_warning'].includes(body.outcome)) {
        const rows = await queryReturning(
          em,
          `UPDATE memberships SET status = 'active', suspended_at = NULL, suspended_reason = NULL, suspended_by = NULL WHERE org_id = $1 AND user_id = $2 AND status = 'suspended' AND suspended_reason IS DISTINCT FROM $3 AND ${NOT_HELD} RETURNING id`,
          [p.orgId, s.user_id, SCIM_SUSPENSION],
        );
        reactivated = rows.length > 0;
      }
      await this.audit.record(em, p, { action: 'sanction.outcome', targetType: 'Sanction', targetId: id, payload: { userId: s.user_id, kind: s.kind, outcome: body.outcome, reactivated } });
      if (reactivated) await this.audit.record(em, p, { action: 'member.reactivate', targetType: 'Member', targetId: s.user_id, payload: { reason: `disciplinary review: ${body.outcome}`, sanctionId: id } });
      return view(await this.load(em, p.orgId, id));
    });
  }
}
