import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config } from '@steward/common';
import { Org } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import { OrgDomainsService } from './org-domains.service';
import type { OrgView, PauseAgentsBody, UpdateOrgBody } from './orgs.schemas';

export function orgView(org: Org, maxRunningTasksCeiling: number, p: Principal): z.infer<typeof OrgView> {
  const mayChange = p.ability.can('update', 'Org');
  return {
    id: org.id,
    name: org.name,
    slug: org.slug,
    domains: org.domains,
    requireStepUp: org.requireStepUp,
    auditRetentionMonths: org.auditRetentionMonths,
    agentsPausedAt: org.agentsPausedAt?.toISOString() ?? null,
    agentsPausedBy: org.agentsPausedBy,
    approvalTtlSeconds: org.approvalTtlSeconds,
    maxRunningTasks: org.maxRunningTasks,
    maxRunningTasksCeiling,
    notifyWebhookUrl: mayChange ? org.notifyWebhookUrl : null,
    notifyWebhookSet: org.notifyWebhookUrl !== null,
    automaticStrikes: org.automaticStrikes,
    monthlyBudgetUsd: org.monthlyBudgetMicros === null ? null : Number(org.monthlyBudgetMicros) / 1e6,
    userMonthlyBudgetUsd: org.userMonthlyBudgetMicros === null ? null : Number(org.userMonthlyBudgetMicros) / 1e6,
    passwordSignIn: org.passwordSignIn,
    modelTier: org.modelTier,
    createdAt: org.createdAt.toISOString(),
    updatedAt: org.updatedAt.toISOString(),
  };
}

@Injectable()
export class OrgsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async get(p: Principal) {
    await this.access.authorize(p, 'read', 'Org');
    return this.db.inOrg(p, async (em) => {
      const org = await em.findOneBy(Org, { id: p.orgId });
      if (!org) throw AppError.notFound('org');
      return orgView(org, this.config.TASKS_MAX_RUNNING_PER_ORG, p);
    });
  }

  async update(p: Principal, body: z.infer<typeof UpdateOrgBody>) {
    await this.access.authorize(p, 'update', 'Org');
    return this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      const org = await em.findOneBy(Org, { id: p.orgId });
      if (!org) throw AppError.notFound('org');
      const settings = (o: Org) => ({ name: o.name, domains: o.domains, requireStepUp: o.requireStepUp, auditRetentionMonths: o.auditRetentionMonths, monthlyBudgetMicros: o.monthlyBudgetMicros, userMonthlyBudgetMicros: o.userMonthlyBudgetMicros, approvalTtlSeconds: o.approvalTtlSeconds, maxRunningTasks: o.maxRunningTasks, webhook: o.notifyWebhookUrl !== null, automaticStrikes: o.automaticStrikes, passwordSignIn: o.passwordSignIn, modelTier: o.modelTier });
      const before = settings(org);
      if (body.passwordSignIn === false && org.passwordSignIn) {
        const [sso]: { ok: boolean }[] = await em.query(`SELECT enabled AND verified_at IS NOT NULL AS ok FROM sso_configs WHERE org_id = $1`, [p.orgId]);
        if (!sso?.ok) throw AppError.conflict('Password sign-in can be switched off only once SSO is enabled and has completed a sign-in.');
      }
      // The deployment's limit is for fairness between orgs: an org may only keep its own tasks lower.
      if (body.maxRunningTasks != null && body.maxRunningTasks > this.config.TASKS_MAX_RUNNING_PER_ORG) {
        throw AppError.validation([{ path: 'maxRunningTasks', message: `at most ${this.config.TASKS_MAX_RUNNING_PER_ORG}, the limit of this deployment (null: that limit)` }]);
      }
      // Approval notices are signed with the org's webhook signing secret (incident settings), so a
      // receiver can tell Steward's posts from anyone's who learnt the URL.
      if (body.notifyWebhookUrl && body.notifyWebhookUrl !== org.notifyWebhookUrl) {
        // Under the org's row lock, which clearing the secret takes too (incident settings).
        await em.query('SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE', [p.orgId]);
        const [secret] = await em.query(`SELECT 1 FROM incident_secrets WHERE org_id = $1 AND name = 'webhook_signing_secret'`, [p.orgId]);
        if (!secret) throw AppError.validation([{ path: 'notifyWebhookUrl', message: "approval webhooks are signed with the org's webhook signing secret: set it in the incident settings first" }]);
      }
      const { monthlyBudgetUsd, userMonthlyBudgetUsd, ...rest } = body;
      Object.assign(org, rest);
      const micros = (usd: number | null) => (usd === null ? null : String(Math.round(usd * 1e6)));
      if (monthlyBudgetUsd !== undefined) org.monthlyBudgetMicros = micros(monthlyBudgetUsd);
      if (userMonthlyBudgetUsd !== undefined) org.userMonthlyBudgetMicros = micros(userMonthlyBudgetUsd);
      await em.save(org);
      if (body.domains) await OrgDomainsService.dropUnlisted(em, org.id, org.domains);
      await this.audit.record(em, p, {
        action: 'org.update',
        targetType: 'Org',
        targetId: org.id,
        payload: { changed: Object.keys(body), before, after: settings(org) },
      });
      return orgView(org, this.config.TASKS_MAX_RUNNING_PER_ORG, p);
    });
  }

  /**
   * The kill switch. Paused: from the next action on nothing executes (the gate's write-ahead
   * reads `agents_paused_at` in its own transaction), credential decrypts are refused, pending
   * approvals cannot be decided and do not expire, schedules skip their runs. Resumed: all of that
   * lifts, and each pending approval's expiry moves on by the time the pause lasted.
   */
  async setAgentsPaused(p: Principal, paused: boolean, body: z.infer<typeof PauseAgentsBody>) {
    await this.access.authorize(p, 'pause_agents', 'Org');
    return this.db.inOrg(p, async (em) => {
      const [row]: { was: Date | null }[] = await em.query(`SELECT agents_paused_at AS was FROM orgs WHERE id = $1 FOR UPDATE`, [p.orgId]);
      if (!row) throw AppError.notFound('org');
      if (paused && !row.was) await em.query(`UPDATE orgs SET agents_paused_at = now(), agents_paused_by = $2 WHERE id = $1`, [p.orgId, p.userId]);
      if (!paused && row.was) {
        await em.query(`UPDATE orgs SET agents_paused_at = NULL, agents_paused_by = NULL WHERE id = $1`, [p.orgId]);
        // Pending approvals were frozen: their time to expiry moves on by the pause's length.
        await em.query(`UPDATE approvals SET expires_at = expires_at + (now() - $2::timestamptz) WHERE org_id = $1 AND kind = 'action' AND state IN ('pending', 'approved') AND expires_at <> 'infinity'`, [p.orgId, row.was]);
      }
      await this.audit.record(em, p, { action: paused ? 'org.agents_pause' : 'org.agents_resume', targetType: 'Org', targetId: p.orgId, payload: { changed: paused !== (row.was !== null), reasonBytes: body.reason ? Buffer.byteLength(body.reason) : 0 } });
      const org = await em.findOneBy(Org, { id: p.orgId });
      return orgView(org!, this.config.TASKS_MAX_RUNNING_PER_ORG, p);
    });
  }
}
