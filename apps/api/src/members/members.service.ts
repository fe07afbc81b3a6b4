import { Injectable } from '@nestjs/common';
import { AppError, newId } from '@steward/common';
import { type EntityManager, Membership, Role, RoleAssignment, Session, User } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { ListMembersQuery, MemberView } from './members.schemas';
import { heldBySanction } from '../sanctions/held-by-sanction';
import { lockOwners } from './owners';
import { SCIM_SUSPENSION } from '../scim/scim.service';
import { canGrant } from '@steward/policy';

@Injectable()
export class MembersService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  private async roleNames(em: EntityManager, orgId: string, userIds: string[]): Promise<Map<string, string[]>> {
    const map = new Map<string, string[]>();
    if (!userIds.length) return map;
    const rows = await em
      .createQueryBuilder(RoleAssignment, 'ra')
      .leftJoin(Role, 'r', 'r.id = ra.custom_role_id AND r.org_id = ra.org_id')
      .select(['ra.user_id AS user_id', 'ra.role AS role', 'r.key AS custom_key'])
      .where('ra.org_id = :orgId AND ra.user_id IN (:...userIds)', { orgId, userIds })
      .orderBy('ra.role')
      .getRawMany<{ user_id: string; role: string; custom_key: string | null }>();
    for (const row of rows) {
      const list = map.get(row.user_id) ?? [];
      list.push(row.custom_key ? `custom:${row.custom_key}` : row.role);
      map.set(row.user_id, list);
    }
    return map;
  }

  private view(m: Membership, u: User, roles: string[]): z.infer<typeof MemberView> {
    return {
      userId: u.id,
      email: u.email,
      name: u.name,
      status: m.status,
      roles,
      suspendedAt: m.suspendedAt?.toISOString() ?? null,
      suspendedReason: m.suspendedReason,
      joinedAt: m.createdAt.toISOString(),
    };
  }

  async list(p: Principal, q: z.infer<typeof ListMembersQuery>) {
    await this.access.authorize(p, 'read', 'Member');
    return this.db.inOrg(p, async (em) => {
      const where = { orgId: p.orgId, ...(q.status ? { status: q.status } : {}) };
      const [members, total] = await em.findAndCount(Membership, { where, order: { createdAt: 'ASC', id: 'ASC' }, take: q.limit, skip: q.offset });
      const users = members.length ? await em.getRepository(User).findBy(members.map((m) => ({ id: m.userId }))) : [];
      const roles = await this.roleNames(em, p.orgId, members.map((m) => m.userId));
      const items = members.map((m) => this.view(m, users.find((u) => u.id === m.userId)!, roles.get(m.userId) ?? []));
      return { items, total, limit: q.limit, offset: q.offset };
    });
  }

  private async load(em: EntityManager, p: Principal, userId: string): Promise<{ m: Membership; u: User }> {
    const m = await em.findOneBy(Membership, { orgId: p.orgId, userId });
    const u = m ? await em.findOneBy(User, { id: userId }) : null;
    if (!m || !u) throw AppError.notFound('member');
    return { m, u };
  }

  async get(p: Principal, userId: string) {
    await this.access.authorize(p, 'read', 'Member');
    return this.db.inOrg(p, async (em) => {
      const { m, u } = await this.load(em, p, userId);
      return this.view(m, u, (await this.roleNames(em, p.orgId, [userId])).get(userId) ?? []);
    });
  }

  /** Active owners, counted under the owners' lock (lockOwners): a concurrent change waits, then counts again. */
  private async ownerCount(em: EntityManager, orgId: string): Promise<number> {
    await lockOwners(em, orgId);
    return em
      .createQueryBuilder(RoleAssignment, 'ra')
      .innerJoin(Membership, 'm', 'm.org_id = ra.org_id AND m.user_id = ra.user_id')
      .where("ra.org_id = :orgId AND ra.role = 'owner' AND m.status = 'active'", { orgId })
      .getCount();
  }

  async setRoles(p: Principal, userId: string, names: string[]) {
    await this.access.authorize(p, 'assign_roles', 'Member');
    return this.db.inOrg(p, async (em) => {
      const { m, u } = await this.load(em, p, userId);
      await this.access.requireStepUp(em, p);
      const wanted = await this.access.resolveRoles(em, p.orgId, names);
      const current = await em.findBy(RoleAssignment, { orgId: p.orgId, userId });
      const added = wanted.filter((w) => !current.some((c) => c.role === w.role));
      const removed = current.filter((c) => !wanted.some((w) => w.role === c.role));
      const removedGrants = await this.access.resolveRoles(
        em,
        p.orgId,
        await (async () => {
          const keys: string[] = [];
          for (const r of removed) keys.push(r.customRoleId ? `custom:${(await em.findOneByOrFail(Role, { orgId: p.orgId, id: r.customRoleId })).key}` : r.role);
          return keys;
        })(),
      );
      this.access.assertCanGrant(p, [...added, ...removedGrants]);
      if (removed.some((r) => r.role === 'owner') && m.status === 'active' && (await this.ownerCount(em, p.orgId)) <= 1) {
        throw AppError.conflict('The org must keep at least one active owner.');
      }
      for (const r of removed) await em.delete(RoleAssignment, { orgId: p.orgId, id: r.id });
      for (const a of added) await em.insert(RoleAssignment, { id: newId(), orgId: p.orgId, userId, role: a.role, customRoleId: a.customRoleId });
      const roles = (await this.roleNames(em, p.orgId, [userId])).get(userId) ?? [];
      await this.audit.record(em, p, {
        action: 'member.assign_roles',
        targetType: 'Member',
        targetId: userId,
        payload: { roles, added: added.map((a) => a.role), removed: removed.map((r) => r.role) },
      });
      return this.view(m, u, roles);
    });
  }

  async suspend(p: Principal, userId: string, reason: string) {
    await this.access.authorize(p, 'suspend', 'Member');
    return this.db.inOrg(p, async (em) => {
      const { m, u } = await this.load(em, p, userId);
      if (userId === p.userId) throw AppError.conflict('You cannot suspend yourself.');
      if (m.status === 'suspended') throw AppError.conflict('The member is already suspended.');
      // Taking someone's access away is a change of what they may do, as a role change is: the org's step-up applies.
      await this.access.requireStepUp(em, p);
      const isOwner = (await em.countBy(RoleAssignment, { orgId: p.orgId, userId, role: 'owner' })) > 0;
      if (isOwner && !p.roles.includes('owner')) throw AppError.forbidden('Only an owner can suspend an owner.');
      if (isOwner && (await this.ownerCount(em, p.orgId)) <= 1) throw AppError.conflict('The org must keep at least one active owner.');
      m.status = 'suspended';
      m.suspendedAt = new Date();
      m.suspendedReason = reason;
      await em.save(m);
      // Who did it: lifting it takes someone who holds all they held (reactivate).
      await em.query(`UPDATE memberships SET suspended_by = $3 WHERE org_id = $1 AND user_id = $2`, [p.orgId, userId, p.userId]);
      await em
        .createQueryBuilder()
        .update(Session)
        .set({ revokedAt: () => 'now()' })
        .where('org_id = :org AND user_id = :user AND revoked_at IS NULL', { org: p.orgId, user: userId })
        .execute();
      await this.audit.record(em, p, { action: 'member.suspend', targetType: 'Member', targetId: userId, payload: { reason } });
      return this.view(m, u, (await this.roleNames(em, p.orgId, [userId])).get(userId) ?? []);
    });
  }

  async reactivate(p: Principal, userId: string) {
    await this.access.authorize(p, 'suspend', 'Member');
    return this.db.inOrg(p, async (em) => {
      const { m, u } = await this.load(em, p, userId);
      if (m.status === 'active') throw AppError.conflict('The member is not suspended.');
      // Lifted only where it was put: a sanction by an owner (the ladder), a deprovisioning by the
      // identity provider, an owner's suspension by an owner (as suspend() asks).
      if (await heldBySanction(em, p.orgId, userId)) throw AppError.conflict('An open sanction holds this suspension: an owner lifts it (POST /v1/sanctions/{id}/lift, or the review outcome).');
      if (m.suspendedReason === SCIM_SUSPENSION) throw AppError.conflict('The identity provider deprovisioned this member (SCIM): they are reactivated there.');
      const isOwner = (await em.countBy(RoleAssignment, { orgId: p.orgId, userId, role: 'owner' })) > 0;
      if (isOwner && !p.roles.includes('owner')) throw AppError.forbidden('Only an owner can reactivate an owner.');
      // A suspension someone put is lifted by them, or by someone who holds every permission they hold
      // (security's suspension of an admin is not lifted by the admin's peer); the suspender no longer
      // an active member, the rules above alone apply.
      const [by]: { suspended_by: string | null }[] = await em.query(`SELECT suspended_by FROM memberships WHERE org_id = $1 AND user_id = $2`, [p.orgId, userId]);
      if (by?.suspended_by && by.suspended_by !== p.userId) {
        const [active]: unknown[] = await em.query(`SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2 AND status = 'active'`, [p.orgId, by.suspended_by]);
        if (active && !canGrant(p.rules, (await this.access.roleSet(em, p.orgId, by.suspended_by)).rules)) {
          throw AppError.forbidden('Whoever suspended this member holds permissions you do not have: they, or someone who holds them all, reactivate the member.');
        }
      }
      // Giving access back is a change of what the member may do, as a role change is: the org's step-up applies.
      await this.access.requireStepUp(em, p);
      m.status = 'active';
      m.suspendedAt = null;
      m.suspendedReason = null;
      await em.save(m);
      await em.query(`UPDATE memberships SET suspended_by = NULL WHERE org_id = $1 AND user_id = $2`, [p.orgId, userId]);
      await this.audit.record(em, p, { action: 'member.reactivate', targetType: 'Member', targetId: userId });
      return this.view(m, u, (await this.roleNames(em, p.orgId, [userId])).get(userId) ?? []);
    });
  }
}
