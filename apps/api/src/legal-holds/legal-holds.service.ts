import { Injectable } from '@nestjs/common';
import { lockHolds } from '@steward/audit';
import { AppError, newId } from '@steward/common';
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
      await this.audit.record(em, p, { action: 'legal_hold.create', targetType: 'LegalHold', targetId: hold.id, payload: { userId: hold.userId, from: body.from, until: body.until ?? null, reason: hold.reason } });
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
      // What the hold kept past retention goes with it: retention applies again from now on.
      const copies = await em.query('DELETE FROM audit_held_payloads WHERE org_id = $1 AND hold_id = $2', [p.orgId, hold.id]);
      await this.audit.record(em, p, { action: 'legal_hold.release', targetType: 'LegalHold', targetId: hold.id, payload: { heldCopiesDeleted: Number(copies[1] ?? 0) } });
      return view(hold);
    });
  }
}
