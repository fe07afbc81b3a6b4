import { Injectable } from '@nestjs/common';
import { AppError, newId, UUID_PATTERN } from '@steward/common';
import { type EntityManager, Group, GroupMember, Membership, Org, PolicyVersion, Workflow } from '@steward/db';
import {
  ACTION_TYPE_NAMES,
  ACTION_TYPES,
  type ActionType,
  type ActionTypeSpec,
  authorize,
  compileAbility,
  type CompiledAbility,
  type CompiledPolicy,
  compilePolicy,
  diffPolicies,
  explain,
  LEVELS,
  type PolicyDocument,
  type PolicyPrincipal,
  simulate,
  toFacts,
  validatePolicy,
} from '@steward/policy';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { ActivatePolicyBody, CreatePolicyBody, ExplainBody, ListPoliciesQuery, PolicySummary, PolicyView, SimulateBody, UpdatePolicyBody } from './policies.schemas';
import { reviewDue } from './provision';

const CACHE_SIZE = 200;

function summary(p: PolicyVersion): z.infer<typeof PolicySummary> {
  return {
    id: p.id,
    version: p.version,
    status: p.status,
    note: p.note,
    authorId: p.authorId,
    basedOn: p.basedOn,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
    activatedAt: p.activatedAt?.toISOString() ?? null,
    activatedBy: p.activatedBy,
    archivedAt: p.archivedAt?.toISOString() ?? null,
    reviewDueAt: p.reviewDueAt?.toISOString() ?? null,
  };
}

function view(p: PolicyVersion): z.infer<typeof PolicyView> {
  return { ...summary(p), document: p.document };
}

@Injectable()
export class PoliciesService {
  /** Compiled versions by id and last change: an edit of a draft makes a new key; active versions never change. */
  private readonly cache = new Map<string, CompiledPolicy>();
  private readonly abilities = new Map<string, CompiledAbility>();

  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {}

  compiled(p: PolicyVersion): CompiledPolicy {
    const key = `${p.id}:${p.updatedAt.getTime()}`;
    let hit = this.cache.get(key);
    if (!hit) {
      hit = compilePolicy(p.document as unknown as PolicyDocument);
      if (this.cache.size >= CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, hit);
    }
    return hit;
  }

  /** The version as a CASL ability: the final authorisation of an action at a level. */
  ability(p: PolicyVersion): CompiledAbility {
    const key = `${p.id}:${p.updatedAt.getTime()}`;
    let hit = this.abilities.get(key);
    if (!hit) {
      hit = compileAbility(p.document as unknown as PolicyDocument);
      if (this.abilities.size >= CACHE_SIZE) this.abilities.delete(this.abilities.keys().next().value!);
      this.abilities.set(key, hit);
    }
    return hit;
  }

  private async load(em: EntityManager, p: Principal, id: string): Promise<PolicyVersion> {
    const version = await em.findOneBy(PolicyVersion, { orgId: p.orgId, id });
    if (!version) throw AppError.notFound('policy version');
    return version;
  }

  async active(em: EntityManager, orgId: string): Promise<PolicyVersion> {
    const version = await em.findOneBy(PolicyVersion, { orgId, status: 'active' });
    if (!version) throw AppError.conflict('The org has no active policy.');
    return version;
  }

  /** Validates against the catalog and this org's groups, workflows and members; every problem listed. */
  private async validate(em: EntityManager, orgId: string, document: unknown): Promise<PolicyDocument> {
    const groups = await em.find(Group, { where: { orgId }, select: { id: true } });
    const workflows = await em.find(Workflow, { where: { orgId }, select: { key: true } });
    const members = await em.find(Membership, { where: { orgId }, select: { userId: true } });
    const result = validatePolicy(document, {
      groups: new Set(groups.map((g) => g.id)),
      workflows: new Set(workflows.map((w) => w.key)),
      users: new Set(members.map((m) => m.userId)),
    });
    if (!result.ok) {
      throw AppError.validation(
        result.problems.slice(0, 50).map((pr) => ({ path: `document.${pr.path}`, message: pr.message })),
        `The policy document has ${result.problems.length} problem(s).`,
      );
    }
    return result.document;
  }

  async list(p: Principal, q: z.infer<typeof ListPoliciesQuery>) {
    await this.access.authorize(p, 'read', 'Policy');
    return this.db.inOrg(p, async (em) => {
      const [rows, total] = await em.findAndCount(PolicyVersion, {
        where: { orgId: p.orgId, ...(q.status ? { status: q.status } : {}) },
        order: { version: 'DESC' },
        take: q.limit,
        skip: q.offset,
      });
      return { items: rows.map(summary), total, limit: q.limit, offset: q.offset };
    });
  }

  async getActive(p: Principal) {
    await this.access.authorize(p, 'read', 'Policy');
    return this.db.inOrg(p, async (em) => view(await this.active(em, p.orgId)));
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Policy');
    return this.db.inOrg(p, async (em) => view(await this.load(em, p, id)));
  }

  async create(p: Principal, body: z.infer<typeof CreatePolicyBody>) {
    await this.access.authorize(p, 'create', 'Policy');
    return this.db.inOrg(p, async (em) => {
      const base = body.basedOn ? await this.load(em, p, body.basedOn) : await this.active(em, p.orgId);
      const document = await this.validate(em, p.orgId, body.document ?? base.document);
      // Serialise version numbers per org: the unique index would refuse a race anyway.
      await em.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`policies:${p.orgId}`]);
      const [{ next }] = await em.query('SELECT coalesce(max(version), 0) + 1 AS next FROM policies WHERE org_id = $1', [p.orgId]);
      const draft = em.create(PolicyVersion, {
        id: newId(),
        orgId: p.orgId,
        version: Number(next),
        status: 'draft',
        document: document as unknown as Record<string, unknown>,
        note: body.note,
        authorId: p.userId,
        basedOn: base.id,
        activatedAt: null,
        activatedBy: null,
        archivedAt: null,
        reviewDueAt: null,
      });
      await em.save(draft);
      await this.audit.record(em, p, { action: 'policy.create', targetType: 'Policy', targetId: draft.id, payload: { version: draft.version, basedOn: base.id, note: draft.note } });
      return view(draft);
    });
  }

  /**
   * The draft, its row locked for the rest of the transaction: an edit, a delete and an activation
   * of one version take turns, and each reads the state the one before it left (an edit that waited
   * on an activation finds the version active, and changes nothing).
   */
  private async loadDraft(em: EntityManager, p: Principal, id: string): Promise<PolicyVersion> {
    if (UUID_PATTERN.test(id)) await em.query('SELECT 1 FROM policies WHERE org_id = $1 AND id = $2 FOR UPDATE', [p.orgId, id]);
    const version = await this.load(em, p, id);
    if (version.status !== 'draft') throw AppError.conflict(`Version ${version.version} is ${version.status}; only drafts change. Create a new draft from it.`);
    return version;
  }

  async update(p: Principal, id: string, body: z.infer<typeof UpdatePolicyBody>) {
    await this.access.authorize(p, 'read', 'Policy');
    return this.db.inOrg(p, async (em) => {
      const draft = await this.loadDraft(em, p, id);
      await this.access.authorize(p, 'update', 'Policy', { id });
      const next = body.document ? await this.validate(em, p.orgId, body.document) : undefined;
      const changes = next ? diffPolicies(draft.document as unknown as PolicyDocument, next) : [];
      if (next) draft.document = next as unknown as Record<string, unknown>;
      if (body.note) draft.note = body.note;
      await em.save(draft);
      await this.audit.record(em, p, { action: 'policy.update', targetType: 'Policy', targetId: draft.id, payload: { version: draft.version, changes: changes.slice(0, 100).map((c) => `${c.kind} ${c.path}`) } });
      return view(draft);
    });
  }

  async remove(p: Principal, id: string): Promise<void> {
    await this.access.authorize(p, 'read', 'Policy');
    await this.db.inOrg(p, async (em) => {
      const draft = await this.loadDraft(em, p, id);
      await this.access.authorize(p, 'delete', 'Policy', { id });
      await em.delete(PolicyVersion, { orgId: p.orgId, id: draft.id });
      await this.audit.record(em, p, { action: 'policy.delete', targetType: 'Policy', targetId: draft.id, payload: { version: draft.version } });
    });
  }

  async activate(p: Principal, id: string, body: z.infer<typeof ActivatePolicyBody>) {
    await this.access.authorize(p, 'read', 'Policy');
    return this.db.inOrg(p, async (em) => {
      const draft = await this.loadDraft(em, p, id);
      await this.access.authorize(p, 'activate', 'Policy', { id });
      await this.access.requireStepUp(em, p);
      // What goes live is what was reviewed: an edit made since (by anyone) is reviewed again first.
      if (body.reviewedUpdatedAt && new Date(body.reviewedUpdatedAt).getTime() !== draft.updatedAt.getTime()) {
        throw AppError.conflict(`Version ${draft.version} changed since it was reviewed (updated ${draft.updatedAt.toISOString()}): review it again, then activate it.`);
      }
      // Groups, workflows or members may have gone since the draft was written.
      await this.validate(em, p.orgId, draft.document);
      await em.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`policies:${p.orgId}`]);
      const previous = await em.findOneBy(PolicyVersion, { orgId: p.orgId, status: 'active' });
      // What goes live is measured against what is live: a version activated since the review (or
      // since the draft was made from it) would be silently undone.
      if (previous && body.reviewedAgainst !== undefined && body.reviewedAgainst !== previous.id) {
        throw AppError.conflict(`Another version (${previous.version}) became active since you reviewed this draft against the active version: review its diff again, then activate it.`);
      }
      if (previous && body.reviewedAgainst === undefined && draft.basedOn !== previous.id) {
        throw AppError.conflict(
          `Version ${draft.version} was not drafted from the active version ${previous.version}: activating it would undo what changed since. Review its diff against version ${previous.version}, then activate with reviewedAgainst "${previous.id}".`,
        );
      }
      const now = new Date();
      if (previous) {
        previous.status = 'archived';
        previous.archivedAt = now;
        await em.save(previous);
      }
      draft.status = 'active';
      draft.activatedAt = now;
      draft.activatedBy = p.userId;
      draft.reviewDueAt = reviewDue(now);
      if (body.note) draft.note = body.note;
      await em.save(draft);
      const changes = previous ? diffPolicies(previous.document as unknown as PolicyDocument, draft.document as unknown as PolicyDocument) : [];
      await this.audit.record(em, p, {
        action: 'policy.activate',
        targetType: 'Policy',
        targetId: draft.id,
        payload: { version: draft.version, previous: previous?.id ?? null, reviewDueAt: draft.reviewDueAt.toISOString(), changes: changes.slice(0, 100).map((c) => `${c.kind} ${c.path}`) },
      });
      return view(draft);
    });
  }

  async diff(p: Principal, id: string, against?: string) {
    await this.access.authorize(p, 'read', 'Policy');
    return this.db.inOrg(p, async (em) => {
      const to = await this.load(em, p, id);
      const from = against ? await this.load(em, p, against) : await this.active(em, p.orgId);
      return { from: from.id, to: to.id, changes: diffPolicies(from.document as unknown as PolicyDocument, to.document as unknown as PolicyDocument) };
    });
  }

  private async principalOf(em: EntityManager, p: Principal, userId?: string): Promise<PolicyPrincipal> {
    const id = userId ?? p.userId;
    // Deciding for someone else tells who is a member and which groups they are in: only for those who may read members.
    if (id !== p.userId) await this.access.authorize(p, 'read', 'Member');
    if (!(await em.countBy(Membership, { orgId: p.orgId, userId: id }))) throw AppError.notFound('member');
    const groups = await em.find(GroupMember, { where: { orgId: p.orgId, userId: id }, select: { groupId: true } });
    return { userId: id, groupIds: groups.map((g) => g.groupId) };
  }

  async explain(p: Principal, body: z.infer<typeof ExplainBody>) {
    await this.access.authorize(p, 'read', 'Policy');
    return this.db.inOrg(p, async (em) => {
      const version = body.policyId ? await this.load(em, p, body.policyId) : await this.active(em, p.orgId);
      const org = await em.findOneByOrFail(Org, { id: p.orgId });
      const principal = await this.principalOf(em, p, body.userId);
      const orgInfo = { domains: org.domains };
      const e = explain(this.compiled(version), principal, body.action as ActionType, body.context, orgInfo);
      const facts = toFacts(principal, body.action as ActionType, body.context, orgInfo);
      return { policyId: version.id, version: version.version, ...e, caslAuthorized: authorize(this.ability(version), facts, e.level) };
    });
  }

  async simulate(p: Principal, id: string, body: z.infer<typeof SimulateBody>) {
    await this.access.authorize(p, 'read', 'Policy');
    return this.db.inOrg(p, async (em) => {
      const draft = await this.load(em, p, id);
      const active = await this.active(em, p.orgId);
      const org = await em.findOneByOrFail(Org, { id: p.orgId });
      const principals = new Map<string, PolicyPrincipal>();
      const actions = [];
      for (const a of body.actions) {
        const key = a.userId ?? p.userId;
        if (!principals.has(key)) principals.set(key, await this.principalOf(em, p, a.userId));
        actions.push({ principal: principals.get(key)!, action: a.action as ActionType, context: a.context });
      }
      const result = simulate(this.compiled(active), this.compiled(draft), actions, { domains: org.domains });
      return { draftId: draft.id, activeId: active.id, ...result };
    });
  }

  catalog() {
    return {
      levels: [...LEVELS],
      actions: ACTION_TYPE_NAMES.map((type) => {
        const spec = ACTION_TYPES[type] as ActionTypeSpec;
        return { type, description: spec.description, examples: spec.examples, default: spec.default, floor: spec.floor ?? null, facts: [...spec.facts], outbound: spec.outbound };
      }),
    };
  }
}
