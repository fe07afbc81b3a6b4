import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, hashToken, newId, newToken, TokenPrefix } from '@steward/common';
import { canGrant } from '@steward/policy';
import { type EntityManager, Membership, Org, RoleAssignment, User } from '@steward/db';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import { revokeHeldCredentials } from './auth.service';
import { hashPassword } from './passwords';
import type { Principal } from './principal';
import { RECOVERY_TTL_HOURS } from './recovery-ttl';


/**
 * Account recovery for a person who lost their password or their authenticator: an owner or admin
 * of their org issues a one-time link (shown once, stored as an HMAC), and the person sets a new
 * password with it. Whoever issues it could use it: so it is issued only from a console session
 * (never an API key), with the org's step-up, never by the person for themself, an owner's only by
 * another owner; the issue and the use are both audited; and only for an account that belongs to
 * this org alone — an account that is also a member elsewhere is not one org's to take over.
 * The person's authenticator stays unless the link says to remove it (lost with the phone), so a
 * link for a lost password alone still needs the person's own second factor to sign in.
 */
@Injectable()
export class AccountRecoveryService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async issue(p: Principal, userId: string, secondFactor: boolean): Promise<{ token: string; expiresAt: string; secondFactor: boolean }> {
    await this.access.authorize(p, 'recover', 'Member');
    if (p.kind !== 'session') throw AppError.forbidden('A recovery link is issued from a console session, not with an API key.');
    const token = newToken(TokenPrefix.Recovery);
    const expiresAt = new Date(Date.now() + RECOVERY_TTL_HOURS * 3_600_000);
    await this.db.inOrg(p, async (em) => {
      const target = await this.recoverable(em, p.orgId, userId);
      if (userId === p.userId) throw AppError.conflict('You cannot recover your own account: change your password under Account, or ask another owner or admin.');
      await this.access.requireStepUp(em, p);
      if (target.owner && !p.roles.includes('owner')) throw AppError.forbidden("Only an owner can recover an owner's account.");
      // Whoever recovers an account can act as it: only someone who holds every permission it has (as granting its roles needs).
      const targetSet = await this.access.roleSet(em, p.orgId, userId);
      if (!canGrant(p.rules, targetSet.rules)) throw AppError.forbidden('This member holds permissions you do not have: someone who holds them all recovers the account.');
      if (secondFactor && !target.totpEnabled) throw AppError.conflict('This account has no authenticator to remove.');
      // One link at a time: an earlier one stops working.
      await em.query(`UPDATE account_recoveries SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND used_at IS NULL AND revoked_at IS NULL`, [p.orgId, userId]);
      const id = newId();
      await em.query(
        `INSERT INTO account_recoveries (org_id, id, user_id, token_hash, second_factor, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [p.orgId, id, userId, hashToken(this.config.STEWARD_TOKEN_PEPPER, token), secondFactor, p.userId, expiresAt],
      );
      await this.audit.record(em, p, { action: 'member.recovery_issue', targetType: 'Member', targetId: userId, payload: { recoveryId: id, secondFactor, expiresAt: expiresAt.toISOString() } });
    });
    return { token, expiresAt: expiresAt.toISOString(), secondFactor };
  }

  /** Withdraws the member's pending recovery link (404 when there is none). */
  async revoke(p: Principal, userId: string): Promise<void> {
    await this.access.authorize(p, 'recover', 'Member');
    await this.db.inOrg(p, async (em) => {
      if (!(await em.countBy(Membership, { orgId: p.orgId, userId }))) throw AppError.notFound('member');
      const [r]: { id: string }[] = await em.query(
        `WITH r AS (UPDATE account_recoveries SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() RETURNING id) SELECT id FROM r`,
        [p.orgId, userId],
      );
      if (!r) throw AppError.notFound('pending recovery link');
      await this.audit.record(em, p, { action: 'member.recovery_revoke', targetType: 'Member', targetId: userId, payload: { recoveryId: r.id } });
    });
  }

  /** Public: the person sets a new password with their link; everything their account held in the org ends. */
  async redeem(token: string, newPassword: string, meta: { sourceIp: string | null; requestId: string }): Promise<void> {
    const tokenHash = hashToken(this.config.STEWARD_TOKEN_PEPPER, token);
    const [found]: { recovery_id: string; org_id: string; user_id: string }[] = await this.db.outsideOrg((em) => em.query('SELECT recovery_id, org_id, user_id FROM steward_recovery_by_token($1)', [tokenHash]));
    if (!found) throw AppError.notFound('recovery link (it may have expired, been used or been withdrawn)');
    const passwordHash = await hashPassword(newPassword);
    let recoveredElsewhere = false;
    await this.db.inOrg({ orgId: found.org_id, userId: found.user_id }, async (em) => {
      // Used once: two requests with the same link cannot both go through.
      const [r]: { second_factor: boolean; created_by: string | null }[] = await em.query(
        `WITH r AS (UPDATE account_recoveries SET used_at = now() WHERE org_id = $1 AND id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() RETURNING second_factor, created_by) SELECT * FROM r`,
        [found.org_id, found.recovery_id],
      );
      if (!r) throw AppError.notFound('recovery link (it may have expired, been used or been withdrawn)');
      // An org's link, checked again now: the account is still this org's alone and active here, and
      // the person who issued it may still do so. (The operator's link, created_by NULL, is the platform's.)
      if (r.created_by !== null) {
        const target = await this.recoverable(em, found.org_id, found.user_id);
        const [issuerMembership]: { status: string }[] = await em.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [found.org_id, r.created_by]);
        const issuer = await this.access.roleSet(em, found.org_id, r.created_by);
        const targetSet = await this.access.roleSet(em, found.org_id, found.user_id);
        const mayIssue =
          issuerMembership?.status === 'active' &&
          issuer.rules.some((x) => x.subject === 'Member' && x.action === 'recover' && !x.own) &&
          (!target.owner || issuer.roles.includes('owner')) &&
          canGrant(issuer.rules, targetSet.rules);
        if (!mayIssue) throw AppError.forbidden('The person who issued this link may no longer recover accounts here: ask for a new one.');
      }
      await em.query(
        `UPDATE users SET password_hash = $2, password_failures = 0, password_failures_since = NULL${r.second_factor ? ', totp_enabled_at = NULL, totp_secret_sealed = NULL, totp_last_step = NULL, totp_failures = 0, totp_failures_since = NULL' : ''} WHERE id = $1`,
        [found.user_id, passwordHash],
      );
      const revoked = await revokeHeldCredentials(em, found.org_id, found.user_id, null);
      if (r.created_by === null) recoveredElsewhere = true;
      await this.audit.record(
        em,
        { orgId: found.org_id, actorType: 'user', actorId: found.user_id, client: 'console', sourceIp: meta.sourceIp, requestId: meta.requestId },
        { action: 'auth.account_recover', targetType: 'User', targetId: found.user_id, payload: { recoveryId: found.recovery_id, issuedBy: r.created_by ?? 'operator', secondFactorRemoved: r.second_factor, ...revoked } },
      );
    });
    // The operator's link recovers an account of several orgs: what it held in each of them ends too.
    if (recoveredElsewhere) {
      const orgs: { org_id: string }[] = await this.db.outsideOrg((em) => em.query('SELECT org_id FROM steward_auth_user_orgs($1)', [found.user_id]));
      for (const o of orgs.filter((x) => x.org_id !== found.org_id)) {
        await this.db.inOrg({ orgId: o.org_id, userId: found.user_id }, (em) => revokeHeldCredentials(em, o.org_id, found.user_id, null));
      }
    }
  }

  /**
   * The member, if their account may be recovered by this org: a member here (404 otherwise), active,
   * belonging to no other org, in an org that signs in with passwords.
   */
  private async recoverable(em: EntityManager, orgId: string, userId: string): Promise<{ owner: boolean; totpEnabled: boolean }> {
    const m = await em.findOneBy(Membership, { orgId, userId });
    if (!m) throw AppError.notFound('member');
    if (m.status !== 'active') throw AppError.conflict('The member is suspended: reactivate them first.');
    const org = await em.findOneByOrFail(Org, { id: orgId });
    if (!org.passwordSignIn) throw AppError.conflict('This org signs in through its identity provider: the account is recovered there.');
    const [{ n }]: { n: number }[] = await em.query('SELECT count(*)::int AS n FROM steward_auth_user_orgs($1) WHERE org_id <> $2', [userId, orgId]);
    if (n > 0) throw AppError.conflict('This account is also a member of other orgs: it is not one org\'s to recover. An operator recovers it (docs/operations.md, "Account recovery").');
    const user = await em.findOneByOrFail(User, { id: userId });
    const owner = (await em.countBy(RoleAssignment, { orgId, userId, role: 'owner' })) > 0;
    return { owner, totpEnabled: user.totpEnabledAt !== null };
  }
}
