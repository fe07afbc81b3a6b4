import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppError } from '@steward/common';
import { type EntityManager, Org } from '@steward/db';
import { ACTION_TYPE_NAMES, type ActionType, compilePolicy, decide, floorOf, type Level, LEVELS, type PolicyDocument, type Rule } from '@steward/policy';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { PoliciesService } from '../policies/policies.service';
import { recommend, THRESHOLDS, type TuningNumbers } from './recommend';
import type { DraftFromRecommendationsBody, RecommendationView, TuningScope } from './tuning.schemas';

type Scope = z.infer<typeof TuningScope>;

/** The id of an org rule kept in a workflow by a tuning draft (rule ids are at most 80 characters). */
const keptId = (tuningId: string, ruleId: string) => {
  const full = `${tuningId}.keep.${ruleId}`;
  return full.length <= 80 ? full : `tuning.keep.${createHash('sha256').update(full).digest('hex').slice(0, 24)}`;
};
type Recommendation = z.infer<typeof RecommendationView>;
const NOBODY = { userId: '00000000-0000-0000-0000-000000000000', groupIds: [] as string[] };
const keyOf = (action: string, scope: Scope) => `${action}@${scope.type === 'org' ? 'org' : `workflow:${scope.id}`}`;

const levelFor = (compiled: ReturnType<typeof compilePolicy>, r: Pick<Recommendation, 'actionType' | 'scope'>, domains: string[]) =>
  decide(compiled, NOBODY, r.actionType as ActionType, r.scope.type === 'workflow' ? { workflow: r.scope.id } : {}, { domains });

/**
 * Writes one recommendation into a policy document (a copy of the active one). Throws a conflict
 * where it cannot be written without overriding something a person must weigh.
 */
function applyRecommendation(doc: PolicyDocument, r: Recommendation, days: number): void {
  const reason = `Trust tuning (${days} days): ${r.reason}`.slice(0, 300);
  if (r.scope.type === 'workflow') {
    const id = `tuning.${r.actionType}.${r.scope.id}`.slice(0, 80);
    const rule: Rule = { id, scope: { type: 'workflow', id: r.scope.id }, actions: [r.actionType as ActionType], level: r.suggestedLevel, reason };
    // The workflow tier decides before the org's: the org's conditional rules for the action that
    // are stricter (outside recipients, invitations) would no longer reach it (its guards, such as
    // the tainted-task one, still do: they hold over every scope). They
    // come along into the workflow (the most restrictive rule that matches in a tier wins), so the
    // lower level holds only where the evidence was: the cases those rules do not cover.
    const workflow = r.scope.id;
    const kept: Rule[] = doc.rules
      .filter((x) => x.scope.type === 'org' && !x.guard && x.when && x.actions.includes(r.actionType as ActionType) && LEVELS.indexOf(x.level) > LEVELS.indexOf(r.suggestedLevel))
      .map((x) => ({ ...x, id: keptId(id, x.id), scope: { type: 'workflow' as const, id: workflow }, actions: [r.actionType as ActionType] }));
    // A group's stricter rule for the action would be overridden in the workflow too, and it has no
    // way to be carried into the workflow tier (rules there do not name groups): refused, for a person.
    const overridden = doc.rules.filter((x) => x.scope.type === 'group' && x.actions.includes(r.actionType as ActionType) && LEVELS.indexOf(x.level) > LEVELS.indexOf(r.suggestedLevel));
    if (overridden.length) {
      throw AppError.conflict(`${r.key}: a workflow rule decides before group rules, and would override ${overridden.map((x) => x.id).slice(0, 5).join(', ')} (stricter, for a group) in this workflow; edit the policy by hand.`);
    }
    const ours = new Set([id, ...kept.map((k) => k.id)]);
    doc.rules = [...doc.rules.filter((x) => !ours.has(x.id)), ...kept, rule];
  } else {
    // The org tier: the baseline, and unconditional org rules no longer name the action (a guard
    // stays as it is: where it holds, the draft does not give the level, for a person to decide).
    doc.baseline = { ...doc.baseline, [r.actionType]: r.suggestedLevel };
    doc.rules = doc.rules
      .map((x) => (x.scope.type === 'org' && !x.guard && !x.when && x.actions.includes(r.actionType as ActionType) ? { ...x, actions: x.actions.filter((a) => a !== r.actionType) } : x))
      .filter((x) => x.actions.length > 0);
  }
}

/**
 * Why a draft of this one recommendation would not give its level (a guard, forbidden area, rate
 * limit or stricter group rule decides), or null where it would: such a recommendation is listed
 * with its numbers, but not offered as draftable.
 */
function draftProblem(active: PolicyDocument, r: Recommendation, days: number, domains: string[]): string | null {
  const doc = JSON.parse(JSON.stringify(active)) as PolicyDocument;
  try {
    applyRecommendation(doc, r, days);
  } catch (err) {
    if (err instanceof AppError && err.detail) return err.detail.startsWith(`${r.key}: `) ? err.detail.slice(r.key.length + 2) : err.detail;
    throw err;
  }
  const d = levelFor(compilePolicy(doc), r, domains);
  if (d.level === r.suggestedLevel) return null;
  // The rules that hold the level (not the baseline or the draft's own rule, which gave the suggested one).
  const holders = d.ruleIds.filter((id) => !id.startsWith('baseline.') && !id.startsWith('tuning.'));
  return `${holders.length ? holders.slice(0, 3).join(', ') : 'the policy'} would still give ${d.level}; edit the policy by hand`;
}

/**
 * Trust tuning: from the window's approvals (Watched), reviews (Batched) and incidents, per action
 * type for the whole org and per workflow, a suggestion to lower or raise the level the active
 * policy gives (see recommend.ts for the thresholds). A chosen set becomes a policy draft through
 * the policies service (validated there: floors hold, and the draft still needs activating).
 */
@Injectable()
export class TuningService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly policies: PoliciesService,
  ) {}

  private async compute(em: EntityManager, orgId: string, days: number) {
    const since = new Date(Date.now() - days * 86_400_000);
    const active = await this.policies.active(em, orgId);
    const compiled = this.policies.compiled(active);
    const org = await em.findOneByOrFail(Org, { id: orgId });
    const stats = new Map<string, { action: string; scope: Scope; n: TuningNumbers }>();
    const slot = (action: string, workflow: string | null, aggregated: boolean) => {
      if (!aggregated && !workflow) return null;
      const scope: Scope = aggregated ? { type: 'org' } : { type: 'workflow', id: workflow! };
      const k = keyOf(action, scope);
      if (!stats.has(k)) {
        stats.set(k, { action, scope, n: { approvals: { total: 0, approved: 0, rejected: 0, expired: 0, approvalRate: null, medianDecisionSeconds: null }, reviews: { total: 0, accepted: 0, reverted: 0, revertRate: null }, incidents: 0 } });
      }
      return stats.get(k)!.n;
    };
    const approvals: { action_type: string; workflow: string | null; agg: number; approved: number; rejected: number; expired: number; median: number | null }[] = await em.query(
      `SELECT a.action_type, t.workflow, GROUPING(t.workflow)::int AS agg,
              count(*) FILTER (WHERE a.state IN ('approved', 'used'))::int AS approved, count(*) FILTER (WHERE a.state = 'rejected')::int AS rejected,
              count(*) FILTER (WHERE a.state = 'expired')::int AS expired,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.decided_at - a.created_at)) FILTER (WHERE a.state IN ('approved', 'used') AND a.decided_at IS NOT NULL) AS median
         FROM approvals a LEFT JOIN tasks t ON t.org_id = a.org_id AND t.id = a.task_id
        WHERE a.org_id = $1 AND a.kind = 'action' AND a.created_at >= $2 AND a.state IN ('approved', 'used', 'rejected', 'expired')
        GROUP BY GROUPING SETS ((a.action_type), (a.action_type, t.workflow))`,
      [orgId, since],
    );
    for (const r of approvals) {
      const n = slot(r.action_type, r.workflow, r.agg === 1);
      if (!n) continue;
      const total = r.approved + r.rejected + r.expired;
      n.approvals = { total, approved: r.approved, rejected: r.rejected, expired: r.expired, approvalRate: total ? r.approved / total : null, medianDecisionSeconds: r.median === null ? null : Number(r.median) };
    }
    const reviews: { action_type: string; workflow: string | null; agg: number; accepted: number; reverted: number }[] = await em.query(
      `SELECT ta.action_type, t.workflow, GROUPING(t.workflow)::int AS agg,
              count(*) FILTER (WHERE ta.review_state = 'accepted')::int AS accepted, count(*) FILTER (WHERE ta.review_state = 'reverted')::int AS reverted
         FROM task_actions ta LEFT JOIN tasks t ON t.org_id = ta.org_id AND t.id = ta.task_id
        WHERE ta.org_id = $1 AND ta.level = 'batched' AND ta.review_state IN ('accepted', 'reverted') AND ta.created_at >= $2
        GROUP BY GROUPING SETS ((ta.action_type), (ta.action_type, t.workflow))`,
      [orgId, since],
    );
    for (const r of reviews) {
      const n = slot(r.action_type, r.workflow, r.agg === 1);
      if (!n) continue;
      const total = r.accepted + r.reverted;
      n.reviews = { total, accepted: r.accepted, reverted: r.reverted, revertRate: total ? r.reverted / total : null };
    }
    const incidents: { action_type: string; workflow: string | null; agg: number; n: number }[] = await em.query(
      `SELECT i.action_type, t.workflow, GROUPING(t.workflow)::int AS agg, count(*)::int AS n
         FROM incidents i LEFT JOIN tasks t ON t.org_id = i.org_id AND t.id = i.task_id
        WHERE i.org_id = $1 AND i.action_type IS NOT NULL AND i.created_at >= $2
        GROUP BY GROUPING SETS ((i.action_type), (i.action_type, t.workflow))`,
      [orgId, since],
    );
    for (const r of incidents) {
      const n = slot(r.action_type, r.workflow, r.agg === 1);
      if (n) n.incidents = r.n;
    }
    const items: Recommendation[] = [];
    for (const [key, s] of [...stats.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      if (!(ACTION_TYPE_NAMES as string[]).includes(s.action)) continue;
      const action = s.action as ActionType;
      const current = decide(compiled, NOBODY, action, s.scope.type === 'workflow' ? { workflow: s.scope.id } : {}, { domains: org.domains }).level;
      const floor = floorOf(action) ?? null;
      const r = recommend(s.n, current, floor);
      if (!r) continue;
      const item: Recommendation = { key, actionType: action, scope: s.scope, currentLevel: current, suggestedLevel: r.suggestedLevel, direction: r.direction, floor, draftable: r.draftable, reason: r.reason, numbers: s.n };
      const problem = item.draftable ? draftProblem(active.document as PolicyDocument, item, days, org.domains) : null;
      if (problem) Object.assign(item, { draftable: false, reason: `${item.reason}; but ${problem}`.slice(0, 500) });
      items.push(item);
    }
    return { active, items, domains: org.domains };
  }

  async list(p: Principal, days: number) {
    // Oversight data (approval and review statistics per scope): the roles that read anomaly reports.
    await this.access.authorize(p, 'read', 'Policy');
    await this.access.authorize(p, 'read', 'AnomalyReport');
    return this.db.inOrg(p, async (em) => {
      const { active, items } = await this.compute(em, p.orgId, days);
      return { windowDays: days, generatedAt: new Date().toISOString(), policyVersion: active.version, thresholds: { ...THRESHOLDS }, items };
    });
  }

  /** A policy draft (based on the active version) carrying the chosen recommendations. */
  async draft(p: Principal, body: z.infer<typeof DraftFromRecommendationsBody>) {
    await this.access.authorize(p, 'create', 'Policy');
    const { active, chosen, document } = await this.db.inOrg(p, async (em) => {
      const { active, items, domains } = await this.compute(em, p.orgId, body.days);
      const problems: { path: string; message: string }[] = [];
      const chosen: Recommendation[] = [];
      body.items.forEach((it, i) => {
        const r = items.find((x) => x.key === keyOf(it.actionType, it.scope));
        if (!r) problems.push({ path: `items.${i}`, message: `no recommendation for ${keyOf(it.actionType, it.scope)} in the last ${body.days} days` });
        else if (!r.draftable) problems.push({ path: `items.${i}`, message: `${r.key}: ${r.reason}` });
        else chosen.push(r);
      });
      if (problems.length) throw AppError.validation(problems, 'Some recommendations cannot be drafted.');
      const doc = JSON.parse(JSON.stringify(active.document)) as PolicyDocument;
      for (const r of chosen) applyRecommendation(doc, r, body.days);
      // What the draft gives for each chosen recommendation (group and user rules may still differ).
      const compiled = compilePolicy(doc);
      for (const r of chosen) {
        const { level } = levelFor(compiled, r, domains);
        if (level !== r.suggestedLevel) throw AppError.conflict(`${r.key}: the draft would give ${level}, not ${r.suggestedLevel} (a guard, forbidden area, rate limit or more specific rule decides); edit the policy by hand.`);
      }
      return { active, chosen, document: doc };
    });
    return this.policies.create(p, {
      basedOn: active.id,
      document: document as never,
      note: (body.note ?? `Trust tuning: ${chosen.map((r) => `${r.key} → ${r.suggestedLevel}`).join(', ')}`).slice(0, 1000),
    });
  }
}
