import { Injectable } from '@nestjs/common';
import { AppError, newId } from '@steward/common';
import { type EntityManager, Group, GroupMember, Membership, User } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { PageQuery } from '../core/schemas';
import type { CreateGroupBody, GroupView, UpdateGroupBody } from './groups.schemas';
import { closeWorkflowsOf } from '../workflows/workflow-access';

@Injectable()
export class GroupsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  private async view(em: EntityManager, g: Group): Promise<z.infer<typeof GroupView>> {
    const memberCount = await em.countBy(GroupMember, { orgId: g.orgId, groupId: g.id });
    return { id: g.id, name: g.name, description: g.description, memberCount, createdAt: g.createdAt.toISOString(), updatedAt: g.updatedAt.toISOString() };
  }

  private async load(em: EntityManager, p: Principal, id: string): Promise<Group> {
    const g = await em.findOneBy(Group, { orgId: p.orgId, id });
    if (!g) throw AppError.notFound('group');
    return g;
  }

  async list(p: Principal, q: PageQuery) {
    await this.access.authorize(p, 'read', 'Group');
    return this.db.inOrg(p, async (em) => {
      const [rows, total] = await em.findAndCount(Group, { where: { orgId: p.orgId }, order: { name: 'ASC' }, take: q.limit, skip: q.offset });
      const items = [];
      for (const g of rows) items.push(await this.view(em, g));
      return { items, total, limit: q.limit, offset: q.offset };
    });
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Group');
    return this.db.inOrg(p, async (em) => this.view(em, await this.load(em, p, id)));
  }

  async create(p: Principal, body: z.infer<typeof CreateGroupBody>) {
    await this.access.authorize(p, 'create', 'Group');
    return this.db.inOrg(p, async (em) => {
      if (await em.countBy(Group, { orgId: p.orgId, name: body.name })) throw AppError.conflict(`A group named "${body.name}" exists.`);
      const g = em.create(Group, { id: newId(), orgId: p.orgId, name: body.name, description: body.description });
      await em.save(g);
      await this.audit.record(em, p, { action: 'group.create', targetType: 'Group', targetId: g.id, payload: { name: g.name } });
      return this.view(em, g);
    });
  }

  async update(p: Principal, id: string, body: z.infer<typeof UpdateGroupBody>) {
    await this.access.authorize(p, 'read', 'Group');
    return this.db.inOrg(p, async (em) => {
      const g = await this.load(em, p, id);
      await this.access.authorize(p, 'update', 'Group', { id });
      if (body.name && body.name !== g.name && (await em.countBy(Group, { orgId: p.orgId, name: body.name }))) {
        throw AppError.conflict(`A group named "${body.name}" exists.`);
      }
      const before = { name: g.name, description: g.description };
      Object.assign(g, body);
      await em.save(g);
      await this.audit.record(em, p, { action: 'group.update', targetType: 'Group', targetId: g.id, payload: { before, after: { name: g.name, description: g.description } } });
      return this.view(em, g);
    });
  }

  async remove(p: Principal, id: string): Promise<void> {
    await this.access.authorize(p, 'read', 'Group');
    await this.db.inOrg(p, async (em) => {
      const g = await this.load(em, p, id);
      await this.access.authorize(p, 'delete', 'Group', { id });
      const workflows = await closeWorkflowsOf(em, p.orgId, g.id);
      await em.delete(Group, { orgId: p.orgId, id: g.id });
      await this.audit.record(em, p, { action: 'group.delete', targetType: 'Group', targetId: g.id, payload: { name: g.name, ...(workflows.length ? { workflowsClosed: workflows } : {}) } });
    });
  }

  async members(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Group');
    return this.db.inOrg(p, async (em) => {
      await this.load(em, p, id);
      const rows = await em
        .createQueryBuilder(GroupMember, 'gm')
        .innerJoin(User, 'u', 'u.id = gm.user_id')
        .select(['u.id AS id', 'u.email AS email', 'u.name AS name'])
        .where('gm.org_id = :org AND gm.group_id = :id', { org: p.orgId, id })
        .orderBy('u.name')
        .getRawMany<{ id: string; email: string; name: string }>();
      return { items: rows };
    });
  }

  async addMember(p: Principal, id: string, userId: string): Promise<void> {
    await this.access.authorize(p, 'read', 'Group');
    await this.db.inOrg(p, async (em) => {
      const g = await this.load(em, p, id);
      await this.access.authorize(p, 'manage_members', 'Group', { id });
      if (!(await em.countBy(Membership, { orgId: p.orgId, userId }))) throw AppError.notFound('member');
      if (await em.countBy(GroupMember, { orgId: p.orgId, groupId: g.id, userId })) return; // idempotent
      await em.insert(GroupMember, { id: newId(), orgId: p.orgId, groupId: g.id, userId });
      await this.audit.record(em, p, { action: 'group.add_member', targetType: 'Group', targetId: g.id, payload: { userId } });
    });
  }

  async removeMember(p: Principal, id: string, userId: string): Promise<void> {
    await this.access.authorize(p, 'read', 'Group');
    await this.db.inOrg(p, async (em) => {
      const g = await this.load(em, p, id);
      await this.access.authorize(p, 'manage_members', 'Group', { id });
      const result = await em.delete(GroupMember, { orgId: p.orgId, groupId: g.id, userId });
      if (!result.affected) throw AppError.notFound('group member');
      await this.audit.record(em, p, { action: 'group.remove_member', targetType: 'Group', targetId: g.id, payload: { userId } });
    });
  }
}
