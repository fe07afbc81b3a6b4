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
      const before = { name: org.name, domains: org.domains, requireStepUp: org.requireStepUp, auditRetentionMonths: org.auditRetentionMonths };
      Object.assign(org, body);
      await em.save(org);
      await this.audit.record(em, p, {
        action: 'org.update',
        targetType: 'Org',
        targetId: org.id,
        payload: { changed: Object.keys(body), before, after: { name: org.name, domains: org.domains, requireStepUp: org.requireStepUp, auditRetentionMonths: org.auditRetentionMonths } },
      });
      return orgView(org);
    });
  }
}
