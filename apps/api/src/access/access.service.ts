import { Inject, Injectable } from '@nestjs/common';
import { AppError, ErrorCode, type Config } from '@steward/common';
import { type EntityManager, Org, Role, RoleAssignment } from '@steward/db';
import {
  type ActionOf,
  BUILTIN_ROLE_RULES,
  canGrant,
  isBuiltinRole,
  type OwnedRecord,
  type PermissionRule,
  rulesOfAssignments,
  type SubjectName,
  subjectOf,
} from '@steward/policy';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';

export interface RoleSet {
  roles: string[];
  rules: PermissionRule[];
}

/**
 * Permission checks in the service, on the loaded record, deny by default.
 * A record the caller may not even read answers 404, as if it did not exist.
 */
@Injectable()
export class AccessService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  /** The roles a member holds in the transaction's org, and the rules they add up to. */
  async roleSet(em: EntityManager, orgId: string, userId: string): Promise<RoleSet> {
    const assignments = await em.find(RoleAssignment, { where: { orgId, userId }, order: { role: 'ASC' } });
    const customIds = assignments.map((a) => a.customRoleId).filter((id): id is string => !!id);
    const custom = customIds.length ? await em.getRepository(Role).findBy(customIds.map((id) => ({ orgId, id }))) : [];
    return rulesOfAssignments(
      assignments.map((a) => {
        const role = a.customRoleId ? custom.find((r) => r.id === a.customRoleId) : undefined;
        return { role: a.role, custom: role ? { key: role.key, permissions: role.permissions } : null };
      }),
    );
  }

  /** How far a permission reaches: every record of the org, only the caller's own, or none. */
  reach<S extends SubjectName>(p: Principal, action: ActionOf<S>, subject: S): 'all' | 'own' | 'none' {
    const rules = p.ability.rulesFor(action as never, subject as never);
    if (rules.some((r) => !r.inverted && !r.conditions)) return 'all';
    if (rules.some((r) => !r.inverted)) return 'own';
    return 'none';
  }

  /**
   * Throws unless the principal may do `action` on `subject` (on the loaded record when
   * given). A record the caller cannot read is reported as not found; a denial of
   * something the caller can see is audited and answers 403.
   */
  async authorize<S extends SubjectName>(
    p: Principal,
    action: ActionOf<S>,
    subject: S,
    record?: { id: string } & Partial<OwnedRecord>,
  ): Promise<void> {
    const target = record ? subjectOf(subject, { userId: record.userId }) : subject;
    if (p.ability.can(action as never, target as never)) return;
    if (record && !p.ability.can('read' as never, target as never)) throw AppError.notFound(subject.toLowerCase());
    await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, (em) =>
      this.audit.record(em, p, {
        action: `${subject.toLowerCase()}.${action}`,
        targetType: subject,
        targetId: record?.id ?? null,
        outcome: 'denied',
        payload: { reason: 'rbac' },
      }),
    );
    throw AppError.forbidden(`Your roles do not allow ${action} on ${subject}.`);
  }

  /**
   * Refuses (403) what the roles would allow but a rule of the operation forbids (deciding one's
   * own agent's action, an approval routed to another group, ...), and audits the refusal as the
   * role check does: in a transaction of its own, so it stays on record whatever the caller's
   * transaction does.
   */
  async deny<S extends SubjectName>(p: Principal, action: ActionOf<S>, subject: S, targetId: string, reason: string, detail: string): Promise<never> {
    await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, (em) =>
      this.audit.record(em, p, { action: `${subject.toLowerCase()}.${action}`, targetType: subject, targetId, outcome: 'denied', payload: { reason } }),
    );
    throw AppError.forbidden(detail);
  }

  /** For sensitive operations: a fresh second factor, when the org requires it. */
  async requireStepUp(em: EntityManager, p: Principal): Promise<void> {
    const org = await em.findOneBy(Org, { id: p.orgId });
    if (!org?.requireStepUp) return;
    const fresh = p.mfaAt && Date.now() - p.mfaAt.getTime() < this.config.STEP_UP_TTL_MINUTES * 60_000;
    if (p.kind === 'session' && fresh) return;
    throw new AppError(
      403,
      ErrorCode.StepUpRequired,
      'Step-up required',
      p.kind === 'api_key'
        ? 'This org requires a second factor for this operation: use a console session and step up.'
        : 'Confirm with your authenticator code (POST /v1/auth/step-up), then retry.',
    );
  }

  /**
   * Turns role names ("admin", "custom:<key>") into assignments and their rules.
   * Unknown names are a validation error listing each one.
   */
  async resolveRoles(em: EntityManager, orgId: string, names: string[]): Promise<{ role: string; customRoleId: string | null; rules: PermissionRule[] }[]> {
    const out: { role: string; customRoleId: string | null; rules: PermissionRule[] }[] = [];
    const unknown: string[] = [];
    for (const name of [...new Set(names)]) {
      if (isBuiltinRole(name)) {
        out.push({ role: name, customRoleId: null, rules: BUILTIN_ROLE_RULES[name] });
        continue;
      }
      const key = name.startsWith('custom:') ? name.slice('custom:'.length) : undefined;
      const role = key ? await em.findOneBy(Role, { orgId, key }) : null;
      if (!role) unknown.push(name);
      else out.push({ role: `custom:${role.id}`, customRoleId: role.id, rules: role.permissions });
    }
    if (unknown.length) {
      throw AppError.validation(unknown.map((n) => ({ path: 'roles', message: `unknown role "${n}" (built-in roles, or "custom:<key>")` })));
    }
    return out;
  }

  /**
   * Nobody hands out a permission they do not hold (an API key: within its scopes); the owner role
   * only by an owner, and not through a key limited to some scopes.
   */
  assertCanGrant(p: Principal, grants: { role: string; rules: PermissionRule[] }[]): void {
    for (const g of grants) {
      if (g.role === 'owner' && (!p.roles.includes('owner') || p.scoped)) throw AppError.forbidden(p.scoped ? 'An API key limited to some scopes cannot grant or remove the owner role.' : 'Only an owner can grant or remove the owner role.');
      if (!canGrant(p.rules, g.rules)) throw AppError.forbidden(`You cannot grant "${g.role}": it holds permissions you do not have.`);
    }
  }
}
