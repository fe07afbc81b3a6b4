import { Injectable } from '@nestjs/common';
import { AppError } from '@steward/common';
import { Org } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import type { OrgView, UpdateOrgBody } from './orgs.schemas';

export function orgView(org: Org): z.infer<typeof OrgView> {
  return {
    id: org.id,
    name: org.name,
    slug: org.slug,
    domains: org.domains,
    requireStepUp: org.requireStepUp,
    auditRetentionMonths: org.auditRetentionMonths,
    monthlyBudgetUsd: org.monthlyBudgetMicros === null ? null : Number(org.monthlyBudgetMicros) / 1e6,
    userMonthlyBudgetUsd: org.userMonthlyBudgetMicros === null ? null : Number(org.userMonthlyBudgetMicros) / 1e6,
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
  ) {}

  async get(p: Principal) {
    await this.access.authorize(p, 'read', 'Org');
    return this.db.inOrg(p, async (em) => {
      const org = await em.findOneBy(Org, { id: p.orgId });
      if (!org) throw AppError.notFound('org');
      return orgView(org);
    });
  }

  async update(p: Principal, body: z.infer<typeof UpdateOrgBody>) {
    await this.access.authorize(p, 'update', 'Org');
    return this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      const org = await em.findOneBy(Org, { id: p.orgId });
      if (!org) throw AppError.notFound('org');
      const settings = (o: Org) => ({ name: o.name, domains: o.domains, requireStepUp: o.requireStepUp, auditRetentionMonths: o.auditRetentionMonths, monthlyBudgetMicros: o.monthlyBudgetMicros, userMonthlyBudgetMicros: o.userMonthlyBudgetMicros });
      const before = settings(org);
      const { monthlyBudgetUsd, userMonthlyBudgetUsd, ...rest } = body;
      Object.assign(org, rest);
      const micros = (usd: number | null) => (usd === null ? null : String(Math.round(usd * 1e6)));
      if (monthlyBudgetUsd !== undefined) org.monthlyBudgetMicros = micros(monthlyBudgetUsd);
      if (userMonthlyBudgetUsd !== undefined) org.userMonthlyBudgetMicros = micros(userMonthlyBudgetUsd);
      await em.save(org);
      await this.audit.record(em, p, {
        action: 'org.update',
        targetType: 'Org',
        targetId: org.id,
        payload: { changed: Object.keys(body), before, after: settings(org) },
      });
      return orgView(org);
    });
  }
}
