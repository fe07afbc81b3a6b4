import { createHmac } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, ErrorCode } from '@steward/common';
import { type EntityManager, Org } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG, TXT_RESOLVER, type TxtResolver } from '../core/tokens';
import type { OrgDomainList } from './orgs.schemas';

/** Where the proof goes: a TXT record on this name under the domain. */
export const CHALLENGE_LABEL = '_steward-challenge';
const TXT_TIMEOUT_MS = 5_000;

/** Whether the org proved it holds the domain (SSO routing and new accounts through SSO or SCIM take one). */
export async function domainVerified(em: EntityManager, orgId: string, domain: string): Promise<boolean> {
  const rows: unknown[] = await em.query(`SELECT 1 FROM verified_domains WHERE org_id = $1 AND domain = $2`, [orgId, domain.toLowerCase()]);
  return rows.length > 0;
}

/**
 * An org's mail domains and the proof that they are its own. `domains` (PATCH /v1/org) are what the
 * org says of itself: they tell its mail from outsiders' in its own policy. Acting on anyone else
 * takes a verified domain: sending a sign-in by email to the org's SSO, and creating accounts through
 * SSO or SCIM. A domain is verified by a DNS TXT record only its holder can publish, and is held by
 * one org at most.
 */
@Injectable()
export class OrgDomainsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(TXT_RESOLVER) private readonly txt: TxtResolver,
  ) {}

  /** The record that proves the org holds the domain (the same for the org and domain every time). */
  record(orgId: string, domain: string): { name: string; value: string } {
    const token = createHmac('sha256', this.config.STEWARD_TOKEN_PEPPER).update(`domain-verification\0${orgId}\0${domain}`).digest('base64url').slice(0, 32);
    return { name: `${CHALLENGE_LABEL}.${domain}`, value: `steward-domain-verification=${token}` };
  }

  async list(p: Principal): Promise<z.infer<typeof OrgDomainList>> {
    await this.access.authorize(p, 'read', 'Org');
    return this.db.inOrg(p, (em) => this.view(em, p.orgId));
  }

  private async view(em: EntityManager, orgId: string): Promise<z.infer<typeof OrgDomainList>> {
    const org = await em.findOneBy(Org, { id: orgId });
    if (!org) throw AppError.notFound('org');
    const rows: { domain: string; verified_at: Date }[] = await em.query(`SELECT domain, verified_at FROM verified_domains WHERE org_id = $1`, [orgId]);
    const byDomain = new Map(rows.map((r) => [r.domain, r]));
    return {
      items: org.domains.map((domain) => {
        const v = byDomain.get(domain);
        return { domain, verified: !!v, verifiedAt: v?.verified_at.toISOString() ?? null, record: this.record(orgId, domain) };
      }),
    };
  }

  /** Looks the domain's TXT record up now; found, the domain is the org's (unless another org proved it first). */
  async verify(p: Principal, domain: string): Promise<z.infer<typeof OrgDomainList>> {
    await this.access.authorize(p, 'update', 'Org');
    const { listed, verified } = await this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      const org = await em.findOneBy(Org, { id: p.orgId });
      return { listed: !!org?.domains.includes(domain), verified: await domainVerified(em, p.orgId, domain) };
    });
    if (verified) return this.list(p);
    if (!listed) throw AppError.validation([{ path: 'domain', message: `${domain} is not one of the org's domains: add it (PATCH /v1/org) first` }]);
    const want = this.record(p.orgId, domain);
    let records: string[][];
    let timer: NodeJS.Timeout | undefined;
    try {
      records = await Promise.race([
        this.txt(want.name),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })), TXT_TIMEOUT_MS))),
      ]);
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? '');
      // No such name or no TXT there: the record is not (yet) published. Anything else: DNS trouble.
      if (code !== 'ENOTFOUND' && code !== 'ENODATA') throw new AppError(503, ErrorCode.Unavailable, 'DNS unavailable', `The TXT records of ${want.name} could not be read (${code || 'error'}); try again.`);
      records = [];
    } finally {
      clearTimeout(timer);
    }
    if (!records.some((chunks) => chunks.join('') === want.value)) {
      throw new AppError(409, ErrorCode.DomainUnverified, 'Domain not verified', `No TXT record "${want.value}" at ${want.name} yet. Publish it in the domain's DNS, then verify again.`);
    }
    return this.db.inOrg(p, async (em) => {
      // Still listed (a PATCH may have removed it meanwhile), and nobody's yet.
      const org = await em.findOneBy(Org, { id: p.orgId });
      if (!org?.domains.includes(domain)) throw AppError.conflict(`${domain} is no longer one of the org's domains.`);
      const inserted: unknown[] = await em.query(
        `INSERT INTO verified_domains (domain, org_id, method, verified_by) VALUES ($1, $2, 'dns', $3) ON CONFLICT (domain) DO NOTHING RETURNING domain`,
        [domain, p.orgId, p.userId],
      );
      // First proof holds: a domain that changed hands is released by the operator (docs/operations.md).
      if (!inserted.length && !(await domainVerified(em, p.orgId, domain))) throw AppError.conflict(`${domain} is verified by another org of this deployment: its operator can release it.`);
      if (inserted.length) await this.audit.record(em, p, { action: 'org.domain_verify', targetType: 'Org', targetId: p.orgId, payload: { domain } });
      return this.view(em, p.orgId);
    });
  }

  /** Domains the org no longer lists are no longer verified for it (in the caller's transaction). */
  static async dropUnlisted(em: EntityManager, orgId: string, domains: readonly string[]): Promise<void> {
    await em.query(`DELETE FROM verified_domains WHERE org_id = $1 AND domain <> ALL ($2::text[])`, [orgId, domains]);
  }
}
