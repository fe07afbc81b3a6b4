import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, ErrorCode, hashToken, newId, newToken, TokenPrefix } from '@steward/common';
import { Invitation, Membership, RoleAssignment, User } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import { hashPassword } from '../auth/passwords';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { Password } from '../core/schemas';
import { CONFIG } from '../core/tokens';
import type { AcceptInvitationBody, CreateInvitationBody, InvitationView, ListInvitationsQuery } from './invitations.schemas';
import { heldBySanction } from '../sanctions/held-by-sanction';
import { AuthService } from '../auth/auth.service';
import { canGrant } from '@steward/policy';

function status(i: Invitation): z.infer<typeof InvitationView>['status'] {
  if (i.acceptedAt) return 'accepted';
  if (i.revokedAt) return 'revoked';
  if (i.expiresAt.getTime() <= Date.now()) return 'expired';
  return 'pending';
}

export function invitationView(i: Invitation): z.infer<typeof InvitationView> {
  return {
    id: i.id,
    email: i.email,
    roles: i.roles,
    invitedBy: i.invitedBy,
    status: status(i),
    expiresAt: i.expiresAt.toISOString(),
    createdAt: i.createdAt.toISOString(),
  };
}

@Injectable()
export class InvitationsService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
    private readonly auth: AuthService,
  ) {}

  async list(p: Principal, q: z.infer<typeof ListInvitationsQuery>) {
    await this.access.authorize(p, 'read', 'Invitation');
    return this.db.inOrg(p, async (em) => {
      const qb = em.createQueryBuilder(Invitation, 'i').where('i.org_id = :org', { org: p.orgId });
      if (q.status === 'accepted') qb.andWhere('i.accepted_at IS NOT NULL');
      if (q.status === 'revoked') qb.andWhere('i.revoked_at IS NOT NULL AND i.accepted_at IS NULL');
      if (q.status === 'expired') qb.andWhere('i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at <= now()');
      if (q.status === 'pending') qb.andWhere('i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()');
      const [rows, total] = await qb.orderBy('i.created_at', 'DESC').addOrderBy('i.id', 'DESC').take(q.limit).skip(q.offset).getManyAndCount();
      return { items: rows.map(invitationView), total, limit: q.limit, offset: q.offset };
    });
  }

  async create(p: Principal, body: z.infer<typeof CreateInvitationBody>) {
    await this.access.authorize(p, 'create', 'Invitation');
    const token = newToken(TokenPrefix.Invitation);
    const invitation = await this.db.inOrg(p, async (em) => {
      const grants = await this.access.resolveRoles(em, p.orgId, body.roles);
      this.access.assertCanGrant(p, grants);
      // An invitation to more than a plain membership grants roles as a role change does: the org's step-up applies
      // (else a stolen session or key that cannot step up would invite an owner of its own and step up as that).
      if (body.roles.some((r) => r !== 'member')) await this.access.requireStepUp(em, p);
      const existing = await em
        .createQueryBuilder(Membership, 'm')
        .innerJoin(User, 'u', 'u.id = m.user_id')
        .where('m.org_id = :org AND u.email = :email', { org: p.orgId, email: body.email })
        .getCount();
      if (existing) throw AppError.conflict('That person is already a member of this org.');
      const pending = await em
        .createQueryBuilder(Invitation, 'i')
        .where('i.org_id = :org AND i.email = :email AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()', {
          org: p.orgId,
          email: body.email,
        })
        .getCount();
      if (pending) throw AppError.conflict('A pending invitation for that email exists; revoke it first.');
      const inv = em.create(Invitation, {
        id: newId(),
        orgId: p.orgId,
        email: body.email,
        roles: [...new Set(body.roles)],
        tokenHash: hashToken(this.config.STEWARD_TOKEN_PEPPER, token),
        invitedBy: p.userId,
        expiresAt: new Date(Date.now() + body.expiresInDays * 86_400_000),
        acceptedAt: null,
        revokedAt: null,
      });
      await em.save(inv);
      await this.audit.record(em, p, { action: 'invitation.create', targetType: 'Invitation', targetId: inv.id, payload: { roles: inv.roles }, sensitive: { email: inv.email } });
      return inv;
    });
    return { invitation: invitationView(invitation), token };
  }

  async revoke(p: Principal, id: string): Promise<void> {
    await this.access.authorize(p, 'read', 'Invitation');
    await this.db.inOrg(p, async (em) => {
      const inv = await em.findOneBy(Invitation, { orgId: p.orgId, id });
      if (!inv) throw AppError.notFound('invitation');
      await this.access.authorize(p, 'revoke', 'Invitation', { id });
      if (status(inv) !== 'pending') throw AppError.conflict(`The invitation is ${status(inv)}.`);
      inv.revokedAt = new Date();
      await em.save(inv);
      await this.audit.record(em, p, { action: 'invitation.revoke', targetType: 'Invitation', targetId: inv.id, sensitive: { email: inv.email } });
    });
  }

  /** Public: the invitee joins with the token, as a new user, with their existing account's password, or signed in as that account (`signedIn`). */
  async accept(body: z.infer<typeof AcceptInvitationBody>, meta: { sourceIp: string | null; requestId: string }, signedIn: { userId: string; orgId: string; sessionId: string } | null = null) {
    const tokenHash = hashToken(this.config.STEWARD_TOKEN_PEPPER, body.token);
    const [found]: { invitation_id: string; org_id: string; email: string }[] = await this.db.outsideOrg((em) =>
      em.query('SELECT invitation_id, org_id, email FROM steward_invitation_by_token($1)', [tokenHash]),
    );
    if (!found) throw AppError.notFound('invitation (it may have expired, been used or been revoked)');
    const [existing]: { user_id: string; password_hash: string | null; totp_enabled: boolean }[] = await this.db.outsideOrg((em) =>
      em.query('SELECT user_id, password_hash, totp_enabled FROM steward_auth_user_by_email($1)', [found.email]),
    );
    let userId: string;
    let passwordHash: string | null = null;
    if (body.password === undefined) {
      // Signed in: the invitation must be for the account of the session, which then needs no password.
      if (!signedIn) throw new AppError(401, ErrorCode.InvalidCredentials, 'Invalid credentials', "Give the account's password (or a new one, for a new account), or accept while signed in as the invited account.");
      if (!existing || existing.user_id !== signedIn.userId) throw AppError.forbidden('This invitation is for another account than the one signed in: nothing was joined.');
      // A session opened through an org's single sign-on speaks for that org only: it does not join the account to others.
      // An account with a password joins from a session opened with it; one without, from a session of the org that made it.
      const [session]: { proven_by: string }[] = await this.db.inOrg({ orgId: signedIn.orgId, userId: signedIn.userId }, (em) =>
        em.query(`SELECT proven_by FROM sessions WHERE org_id = $1 AND id = $2`, [signedIn.orgId, signedIn.sessionId]),
      );
      if (session?.proven_by !== 'password') {
        const [{ first }]: { first: string | null }[] = await this.db.outsideOrg((em) => em.query('SELECT steward_account_first_org($1) AS first', [signedIn.userId]));
        if (existing.password_hash || existing.totp_enabled || first !== signedIn.orgId) {
          throw AppError.forbidden(
            existing.password_hash || existing.totp_enabled
              ? "Accept from a session opened with the account's password (this one was opened through single sign-on): nothing was joined."
              : 'Accept from a session of the org whose single sign-on made this account: nothing was joined.',
          );
        }
      }
      userId = existing.user_id;
    } else if (existing) {
      // Counted against the account as a sign-in's password is (an invitation is no way round that limit).
      const ok = await this.auth.checkAccountPassword(existing.user_id, existing.password_hash, body.password);
      if (!ok) {
        throw new AppError(401, ErrorCode.InvalidCredentials, 'Invalid credentials', 'This email has an account: give its password to join, or accept while signed in as it.');
      }
      // An account with a second factor is not joined on its password alone (a phished password
      // would make its holder a member elsewhere, and that org's single sign-on could then act as it).
      if (existing.totp_enabled) throw AppError.forbidden('This account has a second factor: sign in with its password and code, then accept the invitation while signed in.');
      userId = existing.user_id;
    } else {
      // A new account at a domain another org verified is that org's to make (its single sign-on or
      // SCIM): made here, by whoever holds the token, it would take that person's address.
      const domain = found.email.slice(found.email.lastIndexOf('@') + 1);
      const [held]: { held: boolean }[] = await this.db.outsideOrg((em) => em.query('SELECT steward_domain_held_elsewhere($1, $2) AS held', [domain, found.org_id]));
      if (held?.held) {
        throw AppError.forbidden(`${domain} is a domain another org verified: accounts there are made by that org. Sign in with the account it gave you, then accept while signed in.`);
      }
      const pw = Password.safeParse(body.password);
      if (!pw.success) throw AppError.validation(pw.error.issues.map((i) => ({ path: 'password', message: i.message })));
      if (!body.name) throw AppError.validation([{ path: 'name', message: 'a new account needs a name' }]);
      userId = newId();
      passwordHash = await hashPassword(body.password);
    }
    await this.db.inOrg({ orgId: found.org_id, userId }, async (em) => {
      const inv = await em.findOneBy(Invitation, { orgId: found.org_id, id: found.invitation_id });
      if (!inv || status(inv) !== 'pending') throw AppError.notFound('invitation');
      // Sent by someone no longer active here (suspended, deprovisioned, gone): it speaks for nobody now.
      const [inviter]: { status: string }[] = await em.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [inv.orgId, inv.invitedBy]);
      if (inviter?.status !== 'active') throw AppError.forbidden('The person who sent this invitation is no longer active in the org: ask for a new one.');
      if (!existing) {
        await em.insert(User, { id: userId, email: inv.email, name: body.name!, passwordHash, totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
      }
      if (await em.countBy(Membership, { orgId: inv.orgId, userId })) throw AppError.conflict('You are already a member of this org.');
      // An open sanction survives leaving the org: an invitation does not lift it (an owner does).
      if (existing && (await heldBySanction(em, inv.orgId, userId))) throw AppError.forbidden("An open sanction holds this person's agent access in this org: an owner lifts it before they join again.");
      await em.insert(Membership, { id: newId(), orgId: inv.orgId, userId, status: 'active', suspendedAt: null, suspendedReason: null });
      const grants = await this.access.resolveRoles(em, inv.orgId, inv.roles).catch(() => []);
      // The roles are granted now, by the sender as they are now: someone who lost a role since
      // (an owner demoted, an admin made a member) cannot have it handed back through an invitation
      // they sent before — each role must still be theirs to grant, the owner role only an owner's.
      const sender = await this.access.roleSet(em, inv.orgId, inv.invitedBy);
      for (const g of grants) {
        if ((g.role === 'owner' && !sender.roles.includes('owner')) || !canGrant(sender.rules, g.rules)) {
          throw AppError.forbidden(`The person who sent this invitation can no longer grant "${g.role}": ask for a new one.`);
        }
      }
      for (const g of grants) await em.insert(RoleAssignment, { id: newId(), orgId: inv.orgId, userId, role: g.role, customRoleId: g.customRoleId });
      // Conditional update: two accepts racing for one token cannot both succeed.
      const claimed = await em
        .createQueryBuilder()
        .update(Invitation)
        .set({ acceptedAt: () => 'now()' })
        .where('id = :id AND accepted_at IS NULL AND revoked_at IS NULL', { id: inv.id })
        .execute();
      if (claimed.affected !== 1) throw AppError.notFound('invitation');
      await this.audit.record(
        em,
        { orgId: inv.orgId, actorType: 'user', actorId: userId, client: 'console', sourceIp: meta.sourceIp, requestId: meta.requestId },
        { action: 'invitation.accept', targetType: 'Invitation', targetId: inv.id, payload: { roles: grants.map((g) => g.role), newUser: !existing, provenBy: body.password === undefined ? 'session' : 'password' }, sensitive: { email: inv.email } },
      );
    });
    return { orgId: found.org_id, userId };
  }
}
