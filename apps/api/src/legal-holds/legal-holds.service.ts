import { Injectable } from '@nestjs/common';
import { lockAgainstPartitionDrop, lockHolds, PartitionDropUnderway } from '@steward/audit';
import { AppError, ErrorCode, newId } from '@steward/common';
import { LegalHold } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService, knownPerson } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { CreateLegalHoldBody, LegalHoldView } from './legal-holds.schemas';

function view(h: LegalHold): z.infer<typeof LegalHoldView> {
  return {
    id: h.id,
    userId: h.userId,
    from: h.fromAt.toISOString(),
    until: h.untilAt?.toISOString() ?? null,
    reason: h.reason,
    createdBy: h.createdBy,
    createdAt: h.createdAt.toISOString(),
    releasedAt: h.releasedAt?.toISOString() ?? null,
  };
}

/** Legal holds keep audit content readable past retention (the purge honours them). */
@Injectable()
export class LegalHoldsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  async list(p: Principal) {
    await this.access.authorize(p, 'read', 'LegalHold');
    return this.db.inOrg(p, async (em) => ({ items: (await em.find(LegalHold, { where: { orgId: p.orgId }, order: { createdAt: 'DESC' }, take: 1000 })).map(view) }));
  }

  async create(p: Principal, body: z.infer<typeof CreateLegalHoldBody>) {
    await this.access.authorize(p, 'create', 'LegalHold');
    return this.db.inOrg(p, async (em) => {
      // First (before anything reads the audit trail): not while an audit partition is being dropped — the hold would come too late for it.
      await lockAgainstPartitionDrop(em).catch((err: unknown) => {
        if (err instanceof PartitionDropUnderway) throw new AppError(503, ErrorCode.Unavailable, 'Audit retention is running', 'An audit partition is being dropped; nothing was placed. Place the hold again in a minute.');
        throw err;
      });
      await this.access.requireStepUp(em, p);
      await lockHolds(em, p.orgId);
      if (body.userId && !(await knownPerson(em, p.orgId, body.userId))) throw AppError.notFound('person (neither a member nor in the org\'s audit trail)');
      const hold = em.create(LegalHold, {
        id: newId(),
        orgId: p.orgId,
        userId: body.userId ?? null,
        fromAt: new Date(body.from),
        untilAt: body.until ? new Date(body.until) : null,
        reason: body.reason,
        createdBy: p.userId,
        releasedAt: null,
      });
      await em.save(hold);
      // Who is held and why are sealed (readers of sensitive audit data see them; an admin searching the trail does not).
      await this.audit.record(em, p, {
        action: 'legal_hold.create',
        targetType: 'LegalHold',
        targetId: hold.id,
        payload: { personal: hold.userId !== null, from: body.from, until: body.until ?? null },
        sensitive: { userId: hold.userId, reason: hold.reason },
        subject: null,
      });
      return view(hold);
    });
  }

  async release(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'LegalHold');
    return this.db.inOrg(p, async (em) => {
      const hold = await em.findOneBy(LegalHold, { orgId: p.orgId, id });
      if (!hold) throw AppError.notFound('legal hold');
      await this.access.authorize(p, 'release', 'LegalHold', { id });
      if (hold.releasedAt) throw AppError.conflict('The hold is already released.');
      // Releasing lets retention destroy what the hold kept: as sensitive as an erasure.
      await this.access.requireStepUp(em, p);
      await lockHolds(em, p.orgId);
      hold.releasedAt = new Date();
      await em.save(hold);
      // What the hold kept past retention goes with it (retention applies again from now on), unless
      // another hold in force covers the event too: that hold keeps the copy.
      const kept = await em.query(
        `INSERT INTO audit_held_payloads (org_id, event_id, hold_id, sealed)
         SELECT c.org_id, c.event_id, o.id, c.sealed
           FROM audit_held_payloads c
           JOIN audit_events e ON e.org_id = c.org_id AND e.id = c.event_id
           JOIN LATERAL (SELECT h.id FROM legal_holds h
                          WHERE h.org_id = c.org_id AND h.released_at IS NULL AND h.id <> c.hold_id
                            AND e.occurred_at >= h.from_at AND (h.until_at IS NULL OR e.occurred_at < h.until_at)
                            AND (h.user_id IS NULL OR h.user_id = e.actor_id OR h.user_id = e.subject_id)
                          ORDER BY h.created_at, h.id LIMIT 1) o ON true
          WHERE c.org_id = $1 AND c.hold_id = $2
         ON CONFLICT DO NOTHING RETURNING 1`,
        [p.orgId, hold.id],
      );
      const copies = await em.query('DELETE FROM audit_held_payloads WHERE org_id = $1 AND hold_id = $2', [p.orgId, hold.id]);
      const heldCopiesKept = (kept as unknown[]).length;
      await this.audit.record(em, p, { action: 'legal_hold.release', targetType: 'LegalHold', targetId: hold.id, payload: { heldCopiesDeleted: Number(copies[1] ?? 0) - heldCopiesKept, heldCopiesKept } });
      return view(hold);
    });
  }
}
