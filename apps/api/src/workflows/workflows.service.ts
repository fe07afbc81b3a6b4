import { Injectable } from '@nestjs/common';
import { AppError, newId } from '@steward/common';
import { type EntityManager, Org, PolicyVersion, Workflow } from '@steward/db';
import { type ActionType, decide, type Level, rank } from '@steward/policy';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { PageQuery } from '../core/schemas';
import { PoliciesService } from '../policies/policies.service';
import type { CreateWorkflowBody, UpdateWorkflowBody, WorkflowView } from './workflows.schemas';

function view(w: Workflow): z.infer<typeof WorkflowView> {
  return { id: w.id, key: w.key, name: w.name, description: w.description, actionTypes: w.actionTypes, modelTier: w.modelTier, allowedGroups: w.allowedGroups, createdAt: w.createdAt.toISOString(), updatedAt: w.updatedAt.toISOString() };
}

/** Every group named must be one of the org's (422 names the first that is not). */
async function checkGroups(em: EntityManager, orgId: string, groups: string[] | null): Promise<void> {
  if (!groups?.length) return;
  const found: { id: string }[] = await em.query(`SELECT id FROM groups WHERE org_id = $1 AND id = ANY($2::uuid[])`, [orgId, groups]);
  const known = new Set(found.map((g) => g.id));
  const i = groups.findIndex((g) => !known.has(g));
  if (i >= 0) throw AppError.validation([{ path: `allowedGroups.${i}`, message: 'no group with this id in the org' }]);
}

/** A principal in no group: the workflow's documented classification is what its own rules and the org's give. */
const ANYONE = { userId: '00000000-0000-0000-0000-000000000000', groupIds: [] };

@Injectable()
export class WorkflowsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    private readonly policies: PoliciesService,
  ) {}

  private async load(em: EntityManager, p: Principal, id: string): Promise<Workflow> {
    const w = await em.findOneBy(Workflow, { orgId: p.orgId, id });
    if (!w) throw AppError.notFound('workflow');
    return w;
  }

  async list(p: Principal, q: PageQuery) {
    await this.access.authorize(p, 'read', 'Workflow');
    return this.db.inOrg(p, async (em) => {
      const [rows, total] = await em.findAndCount(Workflow, { where: { orgId: p.orgId }, order: { key: 'ASC' }, take: q.limit, skip: q.offset });
      return { items: rows.map(view), total, limit: q.limit, offset: q.offset };
    });
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Workflow');
    return this.db.inOrg(p, async (em) => view(await this.load(em, p, id)));
  }

  async create(p: Principal, body: z.infer<typeof CreateWorkflowBody>) {
    await this.access.authorize(p, 'create', 'Workflow');
    return this.db.inOrg(p, async (em) => {
      if (await em.countBy(Workflow, { orgId: p.orgId, key: body.key })) throw AppError.conflict(`A workflow "${body.key}" exists.`);
      await checkGroups(em, p.orgId, body.allowedGroups);
      const w = em.create(Workflow, { id: newId(), orgId: p.orgId, key: body.key, name: body.name, description: body.description, actionTypes: [...new Set(body.actionTypes)], modelTier: body.modelTier, allowedGroups: body.allowedGroups });
      await em.save(w);
      await this.audit.record(em, p, { action: 'workflow.create', targetType: 'Workflow', targetId: w.id, payload: { key: w.key, actionTypes: w.actionTypes, modelTier: w.modelTier, allowedGroups: w.allowedGroups } });
      return view(w);
    });
  }

  async update(p: Principal, id: string, body: z.infer<typeof UpdateWorkflowBody>) {
    await this.access.authorize(p, 'read', 'Workflow');
    return this.db.inOrg(p, async (em) => {
      const w = await this.load(em, p, id);
      await this.access.authorize(p, 'update', 'Workflow', { id });
      const before = { name: w.name, description: w.description, actionTypes: w.actionTypes, modelTier: w.modelTier, allowedGroups: w.allowedGroups };
      if (body.name !== undefined) w.name = body.name;
      if (body.description !== undefined) w.description = body.description;
      if (body.actionTypes) w.actionTypes = [...new Set(body.actionTypes)];
      if (body.modelTier !== undefined) w.modelTier = body.modelTier;
      if (body.allowedGroups !== undefined) {
        await checkGroups(em, p.orgId, body.allowedGroups);
        w.allowedGroups = body.allowedGroups;
      }
      await em.save(w);
      await this.audit.record(em, p, { action: 'workflow.update', targetType: 'Workflow', targetId: w.id, payload: { before, after: { name: w.name, description: w.description, actionTypes: w.actionTypes, modelTier: w.modelTier, allowedGroups: w.allowedGroups } } });
      return view(w);
    });
  }

  async remove(p: Principal, id: string): Promise<void> {
    await this.access.authorize(p, 'read', 'Workflow');
    await this.db.inOrg(p, async (em) => {
      const w = await this.load(em, p, id);
      await this.access.authorize(p, 'delete', 'Workflow', { id });
      const [{ n }] = await em.query(
        `SELECT count(*)::int AS n FROM policies WHERE org_id = $1 AND status IN ('active', 'draft') AND document->'rules' @> jsonb_build_array(jsonb_build_object('scope', jsonb_build_object('type', 'workflow', 'id', $2::text)))`,
        [p.orgId, w.key],
      );
      if (n > 0) throw AppError.conflict(`${n} active or draft policy version(s) have rules for this workflow; change them first.`);
      await em.delete(Workflow, { orgId: p.orgId, id: w.id });
      await this.audit.record(em, p, { action: 'workflow.delete', targetType: 'Workflow', targetId: w.id, payload: { key: w.key } });
    });
  }

  /** The documented classification: the effective level of each action type the workflow uses, with the reason. */
  async classification(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Workflow');
    return this.db.inOrg(p, async (em) => {
      const w = await this.load(em, p, id);
      const active = await this.policies.active(em, p.orgId);
      const org = await em.findOneByOrFail(Org, { id: p.orgId });
      const compiled = this.policies.compiled(active as PolicyVersion);
      const actions = w.actionTypes.map((a) => {
        const d = decide(compiled, ANYONE, a as ActionType, { workflow: w.key }, { domains: org.domains });
        return { action: a, level: d.level, ruleIds: d.ruleIds, reason: d.reason };
      });
      const classification = actions.reduce<Level>((acc, a) => (rank(a.level) > rank(acc) ? a.level : acc), 'autonomous');
      return { workflow: w.key, policyId: active.id, version: active.version, classification, actions };
    });
  }
}
