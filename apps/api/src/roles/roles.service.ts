import { Injectable } from '@nestjs/common';
import { AppError, newId } from '@steward/common';
import { type EntityManager, Role, RoleAssignment } from '@steward/db';
import { BUILTIN_ROLE_RULES, BUILTIN_ROLES, canGrant, isKnownPair, OWNABLE_SUBJECTS, type PermissionRule, type SubjectName } from '@steward/policy';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { CreateRoleBody, RoleView, UpdateRoleBody } from './roles.schemas';

const DESCRIPTIONS: Record<(typeof BUILTIN_ROLES)[number], string> = {
  owner: 'Everything, including roles, org settings, owners and policy activation.',
  admin: 'IT: members, invitations, groups, API keys, workflows, policy drafts; reads the audit trail.',
  security: 'Reads members and the audit trail; suspends members; revokes API keys.',
  auditor: 'Read-only over members, roles, groups, keys and the audit trail.',
  approver: 'Decides Watched actions; reads members and groups.',
  member: 'Runs agent tasks; manages their own API keys.',
};

function view(r: Role): z.infer<typeof RoleView> {
  return {
    id: r.id,
    key: `custom:${r.key}`,
    name: r.name,
    description: r.description,
    builtin: false,
    permissions: r.permissions as z.infer<typeof RoleView>['permissions'],
    createdAt: r.createdAt.toISOString(),
  };
}

/** Each rule a known pair; "own" only where records have an owner; no duplicates. */
const ruleKey = (r: PermissionRule) => `${r.action}:${r.subject}:${r.own ? 1 : 0}`;

function normalise(rules: PermissionRule[]): PermissionRule[] {
  const problems: { path: string; message: string }[] = [];
  const out = new Map<string, PermissionRule>();
  rules.forEach((r, i) => {
    if (!isKnownPair(r.action, r.subject)) problems.push({ path: `permissions.${i}`, message: `"${r.action}" is not an action on ${r.subject}` });
    else if (r.own && !OWNABLE_SUBJECTS.has(r.subject as SubjectName)) problems.push({ path: `permissions.${i}.own`, message: `${r.subject} records have no owner` });
    else out.set(ruleKey(r), { action: r.action, subject: r.subject, ...(r.own ? { own: true } : {}) });
  });
  if (problems.length) throw AppError.validation(problems);
  return [...out.values()];
}

@Injectable()
export class RolesService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  async list(p: Principal) {
    await this.access.authorize(p, 'read', 'Role');
    const custom = await this.db.inOrg(p, (em) => em.find(Role, { where: { orgId: p.orgId }, order: { key: 'ASC' } }));
    const builtin = BUILTIN_ROLES.map((key) => ({
      id: null,
      key,
      name: key[0].toUpperCase() + key.slice(1),
      description: DESCRIPTIONS[key],
      builtin: true,
      permissions: BUILTIN_ROLE_RULES[key] as z.infer<typeof RoleView>['permissions'],
      createdAt: null,
    }));
    return { items: [...builtin, ...custom.map(view)] };
  }

  private async load(em: EntityManager, p: Principal, id: string): Promise<Role> {
    const role = await em.findOneBy(Role, { orgId: p.orgId, id });
    if (!role) throw AppError.notFound('role');
    return role;
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Role');
    return this.db.inOrg(p, async (em) => view(await this.load(em, p, id)));
  }

  async create(p: Principal, body: z.infer<typeof CreateRoleBody>) {
    await this.access.authorize(p, 'create', 'Role');
    const permissions = normalise(body.permissions);
    return this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      this.access.assertCanGrant(p, [{ role: `custom:${body.key}`, rules: permissions }]);
      if (await em.countBy(Role, { orgId: p.orgId, key: body.key })) throw AppError.conflict(`A role with key "${body.key}" exists.`);
      const role = em.create(Role, { id: newId(), orgId: p.orgId, key: body.key, name: body.name, description: body.description, permissions });
      await em.save(role);
      await this.audit.record(em, p, { action: 'role.create', targetType: 'Role', targetId: role.id, payload: { key: role.key, permissions } });
      return view(role);
    });
  }

  async update(p: Principal, id: string, body: z.infer<typeof UpdateRoleBody>) {
    await this.access.authorize(p, 'read', 'Role');
    return this.db.inOrg(p, async (em) => {
      const role = await this.load(em, p, id);
      await this.access.authorize(p, 'update', 'Role', { id });
      await this.access.requireStepUp(em, p);
      const before = { name: role.name, description: role.description, permissions: role.permissions };
      if (body.permissions) {
        const permissions = normalise(body.permissions);
        this.access.assertCanGrant(p, [{ role: `custom:${role.key}`, rules: permissions }]);
        // Taking a permission out of a role takes it from everyone who holds the role: only someone who holds it may
        // (as for taking a role from a member).
        const kept = new Set(permissions.map(ruleKey));
        const removed = role.permissions.filter((r) => !kept.has(ruleKey(r)));
        if (!canGrant(p.rules, removed)) throw AppError.forbidden(`You cannot take permissions you do not hold out of "custom:${role.key}".`);
        role.permissions = permissions;
      }
      if (body.name !== undefined) role.name = body.name;
      if (body.description !== undefined) role.description = body.description;
      await em.save(role);
      await this.audit.record(em, p, {
        action: 'role.update',
        targetType: 'Role',
        targetId: role.id,
        payload: { before, after: { name: role.name, description: role.description, permissions: role.permissions } },
      });
      return view(role);
    });
  }

  async remove(p: Principal, id: string): Promise<void> {
    await this.access.authorize(p, 'read', 'Role');
    await this.db.inOrg(p, async (em) => {
      const role = await this.load(em, p, id);
      await this.access.authorize(p, 'delete', 'Role', { id });
      await this.access.requireStepUp(em, p);
      const holders = await em.countBy(RoleAssignment, { orgId: p.orgId, customRoleId: role.id });
      if (holders) throw AppError.conflict(`${holders} member(s) hold this role; take it from them first.`);
      await em.delete(Role, { orgId: p.orgId, id: role.id });
      await this.audit.record(em, p, { action: 'role.delete', targetType: 'Role', targetId: role.id, payload: { key: role.key } });
    });
  }
}
