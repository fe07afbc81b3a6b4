import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, ErrorCode, hashToken, newId } from '@steward/common';
import { Membership, Org, RoleAssignment, User } from '@steward/db';
import type { z } from 'zod';
import { AuditService } from '../audit/audit.service';
import { hashPassword } from '../auth/passwords';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import { provisionPolicy } from '../policies/provision';
import type { SetupBody } from './setup.schemas';

const SETUP_TOKEN_TTL_MS = 24 * 3_600_000;

/**
 * First run: no default password, ever. While no org exists, each boot issues a
 * one-time setup token (printed once on the console); POST /v1/setup with it creates
 * the first org and its owner, and the token dies with it.
 */
@Injectable()
export class SetupService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async completed(): Promise<boolean> {
    const [row] = await this.db.outsideOrg((em) => em.query('SELECT completed FROM steward_setup_status()'));
    return row?.completed === true;
  }

  /** A new setup token when setup is still open, or undefined when it is done. */
  async issueToken(): Promise<string | undefined> {
    const token = `setup_${randomBytes(24).toString('base64url')}`;
    const [row] = await this.db.outsideOrg((em) =>
      em.query('SELECT steward_setup_issue_token($1, $2) AS issued', [
        hashToken(this.config.STEWARD_TOKEN_PEPPER, token),
        new Date(Date.now() + SETUP_TOKEN_TTL_MS),
      ]),
    );
    return row?.issued ? token : undefined;
  }

  async complete(body: z.infer<typeof SetupBody>, meta: { sourceIp: string | null; requestId: string }): Promise<{ orgId: string; userId: string }> {
    const orgId = newId();
    const userId = newId();
    const passwordHash = await hashPassword(body.owner.password);
    await this.db.dataSource.transaction(async (em) => {
      const [claim] = await em.query('SELECT steward_setup_claim($1) AS ok', [hashToken(this.config.STEWARD_TOKEN_PEPPER, body.setupToken)]);
      if (!claim?.ok) {
        throw new AppError(403, ErrorCode.SetupUnavailable, 'Setup unavailable', 'Setup is already done, or the setup token is wrong or expired (restart the API for a new one).');
      }
      await em.query(`SELECT set_config('app.org_id', $1, true), set_config('app.user_id', $2, true)`, [orgId, userId]);
      await em.insert(Org, { id: orgId, name: body.org.name, slug: body.org.slug, domains: body.org.domains ?? [], requireStepUp: false });
      await em.insert(User, { id: userId, email: body.owner.email, name: body.owner.name, passwordHash, totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
      await em.insert(Membership, { id: newId(), orgId, userId, status: 'active', suspendedAt: null, suspendedReason: null });
      await em.insert(RoleAssignment, { id: newId(), orgId, userId, role: 'owner', customRoleId: null });
      await provisionPolicy(em, orgId, userId);
      await this.audit.record(
        em,
        { orgId, actorType: 'user', actorId: userId, client: 'console', sourceIp: meta.sourceIp, requestId: meta.requestId },
        { action: 'org.create', targetType: 'Org', targetId: orgId, payload: { slug: body.org.slug, owner: userId, via: 'setup' } },
      );
    });
    return { orgId, userId };
  }
}
