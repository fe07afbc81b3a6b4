import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, ErrorCode, hashToken, newId, newToken, SecretBox, TokenPrefix, totpAad } from '@steward/common';
import { ApiKey, type EntityManager, Org, queryReturning, Session, User } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { type AuditActor, AuditService } from '../audit/audit.service';
import { Db } from '../core/db.service';
import { CONFIG, REDIS } from '../core/tokens';
import type { Redis } from 'ioredis';
import type { LoginBody, SessionView } from './auth.schemas';
import { decoyHash, hashPassword, verifyPassword } from './passwords';
import type { Principal } from './principal';
import { checkTotp, newTotpSecret, totpUri } from './totp';

export interface RequestMeta {
  sourceIp: string | null;
  userAgent: string | null;
  requestId: string;
}

interface UserAuthRow {
  user_id: string;
  password_hash: string | null;
  totp_secret_sealed: string | null;
  totp_enabled: boolean;
  totp_last_step: string | null;
}

const invalid = () => new AppError(401, ErrorCode.InvalidCredentials, 'Invalid credentials', 'The email or password is wrong.');

/** The least time a refused password sign-in takes (see AuthService.login). */
export const FAILED_SIGN_IN_MS = 300;

/** Wrong authenticator codes an account takes within the window (from any address) before its second factor refuses every code until the window ends. */
/**
 * Attempts an account takes within a window, from any address (besides each address's own limit):
 * authenticator codes, and passwords at sign-in (guesses spread over many addresses run out).
 */
const ATTEMPTS = {
  totp: { limit: 10, minutes: 15, column: 'totp_failures', table: 'users' },
  password: { limit: 20, minutes: 15, column: 'password_failures', table: 'users' },
  // Step-up codes count per membership: an org's identity provider can open sessions as its
  // members, and must not lock a person's factor in their other orgs.
  step_up: { limit: 10, minutes: 15, column: 'step_up_failures', table: 'memberships' },
} as const;

@Injectable()
export class AuthService {
  private readonly box: SecretBox;

  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly access: AccessService,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(REDIS) private readonly redis: Redis,
  ) {
    this.box = new SecretBox(config.STEWARD_MASTER_KEY);
  }

  /**
   * Wrong passwords for an email with no account (or none with a password), counted as an account's
   * are (in Redis, by a keyed hash of the address): past the same limit the answer is the account's
   * lockout answer, so 429 after the 20th guess does not tell which addresses have accounts. Redis
   * not answering: no count (401, as for a wrong password).
   */
  private async unknownAttempt(email: string): Promise<AppError | null> {
    const { limit, minutes } = ATTEMPTS.password;
    const key = `${this.config.REDIS_PREFIX}:login-unknown:${hashToken(this.config.STEWARD_TOKEN_PEPPER, email.trim().toLowerCase()).toString('hex')}`;
    try {
      const [[, n], [, ttl]] = (await this.redis.multi().incr(key).ttl(key).exec()) as [[null, number], [null, number]];
      if (ttl < 0) await this.redis.expire(key, minutes * 60);
      if (n <= limit) return null;
      const wait = Math.max(1, Math.ceil((ttl > 0 ? ttl : minutes * 60) / 60));
      return new AppError(429, ErrorCode.RateLimited, 'Too many wrong passwords', `${limit} wrong passwords were entered for this account; it takes no password for ${wait} more minute(s) (single sign-on still works).`);
    } catch {
      return null;
    }
  }

  totpAad(userId: string): string {
    return totpAad(userId);
  }

  /**
   * Password sign-in. A refused one (401, 429) answers no sooner than FAILED_SIGN_IN_MS after it
   * began: an address with an account and one without do different work (database writes against a
   * Redis count, and no password hash once locked), which its timing would otherwise tell apart.
   */
  async login(body: z.infer<typeof LoginBody>, meta: RequestMeta): Promise<{ token: string; view: z.infer<typeof SessionView> }> {
    const started = Date.now();
    try {
      return await this.signIn(body, meta);
    } catch (err) {
      const wait = FAILED_SIGN_IN_MS - (Date.now() - started);
      if (err instanceof AppError && (err.status === 401 || err.status === 429) && wait > 0) await new Promise((r) => setTimeout(r, wait));
      throw err;
    }
  }

  private async signIn(body: z.infer<typeof LoginBody>, meta: RequestMeta): Promise<{ token: string; view: z.infer<typeof SessionView> }> {
    const rows: UserAuthRow[] = await this.db.outsideOrg((em) => em.query('SELECT * FROM steward_auth_user_by_email($1)', [body.email]));
    const row = rows[0];
    const orgs: { org_id: string; slug: string; status: string }[] = row ? await this.db.outsideOrg((em) => em.query('SELECT * FROM steward_auth_user_orgs($1)', [row.user_id])) : [];
    const chosen = body.org ? orgs.find((o) => o.slug === body.org) : orgs.length === 1 ? orgs[0] : undefined;
    const actor = (orgId: string): AuditActor => ({
      orgId,
      actorType: 'user',
      actorId: row!.user_id,
      client: 'console',
      sourceIp: meta.sourceIp,
      requestId: meta.requestId,
    });
    const fail = async (reason: string, error: AppError): Promise<never> => {
      if (chosen && row) {
        await this.db.inOrg({ orgId: chosen.org_id, userId: row.user_id }, (em) =>
          this.audit.record(em, actor(chosen.org_id), { action: 'auth.login', targetType: 'User', targetId: row.user_id, outcome: 'failure', payload: { reason } }),
        );
      }
      throw error;
    };
    // Counted against the account before the password is checked (a right one resets the count).
    const locked = row?.password_hash ? await this.db.inOrg({ orgId: '', userId: row.user_id }, (em) => this.takeAttempt(em, row.user_id, 'password')) : null;
    if (locked) return fail('password_locked', locked);
    // An address with no account (or none with a password) is counted the same way, before the hash as
    // for an account, so that neither the answer nor its timing tells the two apart once locked.
    const unknownLocked = !row?.password_hash ? await this.unknownAttempt(body.email) : null;
    if (unknownLocked) throw unknownLocked;
    const passwordOk = await verifyPassword(row?.password_hash ?? (await decoyHash()), body.password);
    if (!row || !row.password_hash) throw invalid();
    if (passwordOk) await this.db.inOrg({ orgId: '', userId: row.user_id }, (em) => em.query(`UPDATE users SET password_failures = 0, password_failures_since = NULL WHERE id = $1 AND password_failures > 0`, [row.user_id]));
    if (!passwordOk) return fail('password', invalid());
    if (!chosen) {
      if (orgs.length === 0 || body.org) throw invalid();
      throw AppError.validation(
        [{ path: 'org', message: `you belong to several orgs; choose one of: ${orgs.map((o) => o.slug).join(', ')}` }],
        'Say which org to sign in to.',
      );
    }
    if (chosen.status !== 'active') return fail('suspended', AppError.forbidden('Your membership of this org is suspended.'));
    const passwordSignIn = await this.db.inOrg({ orgId: chosen.org_id, userId: row.user_id }, async (em) => (await em.findOneBy(Org, { id: chosen.org_id }))?.passwordSignIn ?? true);
    if (!passwordSignIn) {
      return fail('password_sign_in_disabled', new AppError(403, ErrorCode.Forbidden, 'Use single sign-on', 'This org signs in through its identity provider (POST /v1/auth/sso/start).'));
    }

    let mfaAt: Date | null = null;
    if (row.totp_enabled) {
      if (!body.totpCode) {
        throw new AppError(401, ErrorCode.MfaRequired, 'Second factor required', 'Enter the 6-digit code from your authenticator app.');
      }
      const ctx = { orgId: chosen.org_id, userId: row.user_id };
      // The attempt is counted (committed) before the code is checked: codes sent side by side all count.
      const locked = await this.db.inOrg(ctx, (em) => this.takeAttempt(em, row.user_id));
      if (locked) return fail('totp_locked', locked);
      const step = await this.verifyCode(row, body.totpCode);
      const used = step !== null && (await this.db.inOrg(ctx, (em) => this.useStep(em, row.user_id, step)));
      if (!used) return fail('totp', new AppError(401, ErrorCode.InvalidCredentials, 'Invalid code', 'The authenticator code is wrong or was already used.'));
      mfaAt = new Date();
    }

    return this.openSession(chosen.org_id, row.user_id, mfaAt, meta, actor(chosen.org_id), { mfa: mfaAt !== null });
  }

  /**
   * A new console session for a member (password sign-in and SSO end the same way): the
   * session row and the `auth.login` event in one transaction; the token is returned once.
   */
  async openSession(
    orgId: string,
    userId: string,
    mfaAt: Date | null,
    meta: RequestMeta,
    actor: AuditActor,
    payload: Record<string, unknown>,
    before?: (em: EntityManager) => Promise<void>,
    provenBy: 'password' | 'sso' = 'password',
  ): Promise<{ token: string; view: z.infer<typeof SessionView> }> {
    const token = newToken(TokenPrefix.Session);
    const view = await this.db.inOrg({ orgId, userId }, async (em) => {
      if (before) await before(em);
      const session = em.create(Session, {
        id: newId(),
        orgId,
        userId,
        tokenHash: hashToken(this.config.STEWARD_TOKEN_PEPPER, token),
        expiresAt: new Date(Date.now() + this.config.SESSION_TTL_HOURS * 3_600_000),
        mfaAt,
        revokedAt: null,
        sourceIp: meta.sourceIp?.slice(0, 64) ?? null,
        userAgent: meta.userAgent?.slice(0, 300) ?? null,
        provenBy,
      });
      await em.insert(Session, session);
      await this.audit.record(em, actor, { action: 'auth.login', targetType: 'Session', targetId: session.id, payload });
      return this.describe(em, orgId, userId, 'session', mfaAt, session.expiresAt);
    });
    return { token, view };
  }

  /** What proved the person when this console session was opened (null: not a session). */
  private async provenBy(em: EntityManager, p: Principal): Promise<Session['provenBy'] | null> {
    return (await em.findOneBy(Session, { orgId: p.orgId, id: p.credentialId }))?.provenBy ?? null;
  }

  /** Uses a code's time step once: false when it (or a later one) was used meanwhile, by a request at the same moment too. */
  private async useStep(em: EntityManager, userId: string, step: number): Promise<boolean> {
    const rows = await queryReturning(
      em,
      `UPDATE users SET totp_last_step = $2, totp_failures = 0, totp_failures_since = NULL WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id`,
      [userId, step],
    );
    return rows.length > 0;
  }

  /**
   * Counts an attempt against the account before it is checked, in one statement that takes the
   * user's row lock (attempts sent side by side are counted one after the other): null while the
   * account takes attempts of this kind, or the refusal once its limit of attempts not followed by a
   * right one came within its window, from any address. A right one resets the count (useStep for
   * codes, a right password at sign-in).
   */
  private async takeAttempt(em: EntityManager, userId: string, kind: 'totp' | 'password' | 'step_up' = 'totp', orgId?: string): Promise<AppError | null> {
    const { limit, minutes, column, table } = ATTEMPTS[kind];
    // users by id; memberships by org and user (the caller's org: RLS keeps it to that org anyway).
    const where = table === 'users' ? 'id = $1' : 'user_id = $1 AND org_id = $4';
    const params = table === 'users' ? [userId, minutes, limit] : [userId, minutes, limit, orgId];
    const taken = await queryReturning(
      em,
      `UPDATE ${table} SET ${column} = CASE WHEN ${column}_since IS NULL OR ${column}_since <= now() - make_interval(mins => $2) THEN 1 ELSE ${column} + 1 END,
                        ${column}_since = CASE WHEN ${column}_since IS NULL OR ${column}_since <= now() - make_interval(mins => $2) THEN now() ELSE ${column}_since END
        WHERE ${where} AND NOT (${column} >= $3 AND ${column}_since > now() - make_interval(mins => $2))
        RETURNING id`,
      params,
    );
    if (taken.length) return null;
    const [u]: { retry_seconds: number | null }[] = await em.query(
      `SELECT ceil(extract(epoch FROM ${column}_since + make_interval(mins => $2) - now()))::int AS retry_seconds FROM ${table} WHERE ${table === 'users' ? 'id = $1' : 'user_id = $1 AND org_id = $3'}`,
      table === 'users' ? [userId, minutes] : [userId, minutes, orgId],
    );
    const wait = Math.max(1, Math.ceil((u?.retry_seconds ?? 60) / 60));
    if (kind === 'step_up') return new AppError(429, ErrorCode.RateLimited, 'Too many wrong codes', `${limit} wrong authenticator codes were entered in this organisation; step-up here takes no code for ${wait} more minute(s).`);
    return kind === 'totp'
      ? new AppError(429, ErrorCode.RateLimited, 'Too many wrong codes', `${limit} wrong authenticator codes were entered for this account; its second factor takes no code for ${wait} more minute(s).`)
      : new AppError(429, ErrorCode.RateLimited, 'Too many wrong passwords', `${limit} wrong passwords were entered for this account; it takes no password for ${wait} more minute(s) (single sign-on still works).`);
  }

  private async verifyCode(row: Pick<UserAuthRow, 'user_id' | 'totp_secret_sealed' | 'totp_last_step'>, code: string): Promise<number | null> {
    if (!row.totp_secret_sealed) return null;
    const secret = this.box.open(row.totp_secret_sealed, this.totpAad(row.user_id));
    const step = await checkTotp(secret, code);
    if (step === null) return null;
    if (row.totp_last_step !== null && step <= Number(row.totp_last_step)) return null; // replay
    return step;
  }

  async describe(
    em: EntityManager,
    orgId: string,
    userId: string,
    kind: 'session' | 'api_key',
    mfaAt: Date | null,
    expiresAt: Date | null,
    scopes?: string[],
  ): Promise<z.infer<typeof SessionView>> {
    const user = await em.findOneByOrFail(User, { id: userId });
    const org = await em.findOneByOrFail(Org, { id: orgId });
    const { roles, rules } = await this.access.roleSet(em, orgId, userId);
    const permissions = [
      ...new Set(
        rules
          .filter((r) => !scopes || scopes.includes('*') || scopes.includes(`${r.action}:${r.subject}`))
          .map((r) => `${r.action}:${r.subject}${r.own ? ':own' : ''}`),
      ),
    ].sort();
    return {
      kind,
      user: { id: user.id, email: user.email, name: user.name },
      org: { id: org.id, name: org.name, slug: org.slug },
      roles,
      permissions,
      mfa: { enrolled: user.totpEnabledAt !== null, verifiedAt: mfaAt?.toISOString() ?? null },
      expiresAt: expiresAt?.toISOString() ?? null,
    };
  }

  async current(p: Principal): Promise<z.infer<typeof SessionView>> {
    // MCP access tokens are accepted by the gateway alone; the REST routes never see one.
    if (p.kind === 'mcp_token') throw AppError.unauthenticated();
    const kind = p.kind;
    return this.db.inOrg({ orgId: p.orgId, userId: p.userId }, async (em) => {
      let expiresAt: Date | null;
      let scopes: string[] | undefined;
      if (kind === 'session') {
        expiresAt = (await em.findOneByOrFail(Session, { orgId: p.orgId, id: p.credentialId })).expiresAt;
      } else {
        const key = await em.findOneByOrFail(ApiKey, { orgId: p.orgId, id: p.credentialId });
        expiresAt = key.expiresAt;
        scopes = key.scopes;
      }
      return this.describe(em, p.orgId, p.userId, kind, p.mfaAt, expiresAt, scopes);
    });
  }

  /** The orgs of the signed-in person, for the console's org switcher. */
  async myOrgs(p: Principal): Promise<{ items: { slug: string; current: boolean; active: boolean }[] }> {
    const orgs: { org_id: string; slug: string; status: string }[] = await this.db.outsideOrg((em) => em.query('SELECT * FROM steward_auth_user_orgs($1)', [p.userId]));
    return { items: orgs.map((o) => ({ slug: o.slug, current: o.org_id === p.orgId, active: o.status === 'active' })).sort((a, b) => a.slug.localeCompare(b.slug)) };
  }

  /**
   * Moves a console session to another org of the same person: a new session there (carrying the
   * second factor this one proved), this one revoked. Nothing new is proved, so the target org's
   * own sign-in rules must hold for a password session: an org that signs in only through SSO is
   * refused (sign in there through its identity provider). Audited in both orgs.
   */
  async switchOrg(p: Principal, slug: string, meta: RequestMeta): Promise<{ token: string; view: z.infer<typeof SessionView> }> {
    if (p.kind !== 'session') throw AppError.forbidden('Only a console session can switch orgs; an API key belongs to one org.');
    const orgs: { org_id: string; slug: string; status: string }[] = await this.db.outsideOrg((em) => em.query('SELECT * FROM steward_auth_user_orgs($1)', [p.userId]));
    const target = orgs.find((o) => o.slug === slug);
    // Not a member: the same answer as an org that does not exist.
    if (!target) throw AppError.notFound('org');
    if (target.org_id === p.orgId) throw AppError.conflict('This session is already in that org.');
    if (target.status !== 'active') throw AppError.forbidden('Your membership of that org is suspended.');
    // An org's identity provider speaks for that org only: its session does not open the person's other orgs.
    if ((await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, (em) => this.provenBy(em, p))) !== 'password') {
      throw new AppError(403, ErrorCode.Forbidden, 'Sign in there', "This session was opened through this org's single sign-on, which speaks for this org only: sign in to that org with its own sign-in.");
    }
    const passwordSignIn = await this.db.inOrg({ orgId: target.org_id, userId: p.userId }, async (em) => (await em.findOneBy(Org, { id: target.org_id }))?.passwordSignIn ?? true);
    if (!passwordSignIn) throw new AppError(403, ErrorCode.Forbidden, 'Use single sign-on', 'That org signs in through its identity provider: sign in there with SSO.');
    await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, async (em) => {
      await em.update(Session, { orgId: p.orgId, id: p.credentialId }, { revokedAt: new Date() });
      await this.audit.record(em, p, { action: 'auth.switch_org', targetType: 'Session', targetId: p.credentialId, payload: { to: slug } });
    });
    const from = orgs.find((o) => o.org_id === p.orgId)?.slug ?? null;
    const actor: AuditActor = { orgId: target.org_id, actorType: 'user', actorId: p.userId, client: 'console', sourceIp: meta.sourceIp, requestId: meta.requestId };
    return this.openSession(target.org_id, p.userId, p.mfaAt, meta, actor, { switchedFrom: from, mfa: p.mfaAt !== null });
  }

  async logout(p: Principal): Promise<void> {
    await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, async (em) => {
      await em.update(Session, { orgId: p.orgId, id: p.credentialId }, { revokedAt: new Date() });
      await this.audit.record(em, p, { action: 'auth.logout', targetType: 'Session', targetId: p.credentialId });
    });
  }

  async stepUp(p: Principal, code: string): Promise<void> {
    await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, async (em) => {
      const user = await em.findOneByOrFail(User, { id: p.userId });
      if (!user.totpEnabledAt) throw AppError.conflict('Enrol an authenticator first (POST /v1/auth/totp/enroll).');
      const locked = await this.takeAttempt(em, user.id, 'step_up', p.orgId);
      if (locked) {
        await this.audit.record(em, p, { action: 'auth.step_up', targetType: 'Session', targetId: p.credentialId, outcome: 'failure', payload: { reason: 'totp_locked' } });
        return locked;
      }
      const step = await this.verifyCode({ user_id: user.id, totp_secret_sealed: user.totpSecretSealed, totp_last_step: user.totpLastStep }, code);
      if (step === null || !(await this.useStep(em, user.id, step))) {
        await this.audit.record(em, p, { action: 'auth.step_up', targetType: 'Session', targetId: p.credentialId, outcome: 'failure' });
        return new AppError(401, ErrorCode.InvalidCredentials, 'Invalid code', 'The authenticator code is wrong or was already used.');
      }
      await em.update(Session, { orgId: p.orgId, id: p.credentialId }, { mfaAt: new Date() });
      await em.query(`UPDATE memberships SET step_up_failures = 0, step_up_failures_since = NULL WHERE org_id = $1 AND user_id = $2`, [p.orgId, p.userId]);
      await this.audit.record(em, p, { action: 'auth.step_up', targetType: 'Session', targetId: p.credentialId });
      return null;
    }).then((refused) => {
      // Thrown once the failure (its count and audit event) committed.
      if (refused) throw refused;
    });
  }

  async enrollTotp(p: Principal, password?: string): Promise<{ secret: string; otpauthUri: string }> {
    // Whoever holds a session alone does not get to add a factor (then pass step-up with it, and lock
    // the person out): the account's password is given again (counted as sign-in's are), or, for an
    // account that signs in only through single sign-on, the session is a fresh sign-in.
    const [known]: { password_hash: string | null; totp_enabled_at: Date | null; session_age: number; proven_by: string }[] = await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, (em) =>
      em.query(`SELECT u.password_hash, u.totp_enabled_at, extract(epoch FROM now() - s.created_at)::int AS session_age, s.proven_by FROM users u, sessions s WHERE u.id = $1 AND s.org_id = $2 AND s.id = $3`, [p.userId, p.orgId, p.credentialId]),
    );
    if (known?.totp_enabled_at) throw AppError.conflict('An authenticator is already enrolled; disable it first.');
    // An account with a password of its own gets its second factor from a session its password
    // opened: an org's single sign-on speaks for that org only, not for the person's account.
    if (known?.password_hash && known.proven_by === 'sso') throw AppError.forbidden('Enrol an authenticator from a session opened with your password (this one was opened through single sign-on).');
    if (known?.password_hash) {
      if (password === undefined) throw AppError.validation([{ path: 'password', message: "your account's password is needed to add a second factor" }]);
      if (!(await this.checkAccountPassword(p.userId, known.password_hash, password))) throw new AppError(401, ErrorCode.InvalidCredentials, 'Invalid credentials', 'The password is wrong.');
    } else if (!known || known.session_age > 600) {
      throw AppError.forbidden('Sign in again through single sign-on, then add the second factor within 10 minutes.');
    } else {
      // An account without a password is the org's that made it (its first membership): another org's
      // single sign-on, which can open sessions as its members too, does not set the account's factor.
      const [home]: { org_id: string | null }[] = await this.db.outsideOrg((em) => em.query('SELECT steward_account_first_org($1) AS org_id', [p.userId]));
      if (home?.org_id && home.org_id !== p.orgId) throw AppError.forbidden("Your account was made by another org's single sign-on: add the second factor from a session of that org.");
    }
    return this.db.inOrg({ orgId: p.orgId, userId: p.userId }, async (em) => {
      const user = await em.findOneByOrFail(User, { id: p.userId });
      if (user.totpEnabledAt) throw AppError.conflict('An authenticator is already enrolled; disable it first.');
      if (user.passwordHash !== known?.password_hash) throw AppError.conflict('The password changed meanwhile: start again.');
      const secret = newTotpSecret();
      await em.update(User, { id: user.id }, { totpSecretSealed: this.box.seal(secret, this.totpAad(user.id)) });
      await this.audit.record(em, p, { action: 'auth.totp_enroll_start', targetType: 'User', targetId: user.id });
      return { secret, otpauthUri: totpUri(secret, user.email) };
    });
  }

  async confirmTotp(p: Principal, code: string): Promise<void> {
    const ok = await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, async (em) => {
      const user = await em.findOneByOrFail(User, { id: p.userId });
      if (user.totpEnabledAt) throw AppError.conflict('An authenticator is already enrolled.');
      if (!user.totpSecretSealed) throw AppError.conflict('Start with POST /v1/auth/totp/enroll.');
      const step = await this.verifyCode({ user_id: user.id, totp_secret_sealed: user.totpSecretSealed, totp_last_step: null }, code);
      if (step === null) return false;
      // (Enrolling is not a step-up: the session proves its second factor with a later code.)
      await em.update(User, { id: user.id }, { totpEnabledAt: new Date(), totpLastStep: String(step) });
      await this.audit.record(em, p, { action: 'auth.totp_enable', targetType: 'User', targetId: user.id });
      return true;
    });
    if (!ok) throw AppError.validation([{ path: 'totpCode', message: 'the code does not match' }], 'The authenticator code is wrong.');
  }

  async disableTotp(p: Principal, password: string, code: string): Promise<void> {
    const ok = await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, async (em) => {
      const user = await em.findOneByOrFail(User, { id: p.userId });
      if (!user.totpEnabledAt) throw AppError.conflict('No authenticator is enrolled.');
      // The factor guards every org of the account: an org's single sign-on (which can open a session
      // as any of its members) does not get to guess at removing it.
      const [session]: { proven_by: string }[] = await em.query(`SELECT proven_by FROM sessions WHERE org_id = $1 AND id = $2`, [p.orgId, p.credentialId]);
      if (session?.proven_by === 'sso') throw AppError.forbidden('Remove the authenticator from a session opened with your password and code (this one was opened through single sign-on).');
      // Counted in this org, as step-up is (only sessions that passed the code get here).
      const locked = await this.takeAttempt(em, user.id, 'step_up', p.orgId);
      if (locked) {
        await this.audit.record(em, p, { action: 'auth.totp_disable', targetType: 'User', targetId: user.id, outcome: 'failure', payload: { reason: 'totp_locked' } });
        return locked;
      }
      const step = await this.verifyCode({ user_id: user.id, totp_secret_sealed: user.totpSecretSealed, totp_last_step: user.totpLastStep }, code);
      // A right code is used up (and resets the count) even when the password is wrong.
      const used = step !== null && (await this.useStep(em, user.id, step));
      if (!user.passwordHash || !(await verifyPassword(user.passwordHash, password)) || !used) {
        await this.audit.record(em, p, { action: 'auth.totp_disable', targetType: 'User', targetId: user.id, outcome: 'failure' });
        return false;
      }
      await em.update(User, { id: user.id }, { totpEnabledAt: null, totpSecretSealed: null, totpLastStep: null });
      await this.audit.record(em, p, { action: 'auth.totp_disable', targetType: 'User', targetId: user.id });
      return true;
    });
    if (ok instanceof AppError) throw ok;
    if (!ok) throw new AppError(401, ErrorCode.InvalidCredentials, 'Invalid credentials', 'The password or the authenticator code is wrong.');
  }

  /**
   * A password given outside sign-in (changing it, joining an org with it): counted against the
   * account as sign-in's are (20 wrong ones in 15 minutes, from any address, and it takes no more
   * for a while: 429); a right one resets the count.
   */
  async checkAccountPassword(userId: string, hash: string | null, password: string): Promise<boolean> {
    const locked = hash ? await this.db.inOrg({ orgId: '', userId }, (em) => this.takeAttempt(em, userId, 'password')) : null;
    if (locked) throw locked;
    const ok = await verifyPassword(hash ?? (await decoyHash()), password);
    if (ok && hash) await this.db.inOrg({ orgId: '', userId }, (em) => em.query(`UPDATE users SET password_failures = 0, password_failures_since = NULL WHERE id = $1 AND password_failures > 0`, [userId]));
    return ok && hash !== null;
  }

  async changePassword(p: Principal, current: string, next: string): Promise<void> {
    const [known]: { password_hash: string | null; proven_by: string | null }[] = await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, (em) =>
      em.query('SELECT u.password_hash, (SELECT s.proven_by FROM sessions s WHERE s.org_id = $2 AND s.id = $3) AS proven_by FROM users u WHERE u.id = $1', [p.userId, p.orgId, p.credentialId]),
    );
    // The password is the account's in every org: an org's single sign-on (which can open a session as
    // any of its members) does not get to change it, and with it lock the person out everywhere else.
    if (known?.proven_by === 'sso') throw AppError.forbidden('Change your password from a session opened with it (this one was opened through single sign-on).');
    const right = await this.checkAccountPassword(p.userId, known?.password_hash ?? null, current).catch(async (err: unknown) => {
      await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, (em) => this.audit.record(em, p, { action: 'auth.password_change', targetType: 'User', targetId: p.userId, outcome: 'failure', payload: { reason: 'password_locked' } }));
      throw err;
    });
    const ok = await this.db.inOrg({ orgId: p.orgId, userId: p.userId }, async (em) => {
      const user = await em.findOneByOrFail(User, { id: p.userId });
      // (Checked against the hash it was checked with: a change made meanwhile wins.)
      if (!right || user.passwordHash !== known?.password_hash) {
        await this.audit.record(em, p, { action: 'auth.password_change', targetType: 'User', targetId: user.id, outcome: 'failure' });
        return false;
      }
      await em.update(User, { id: user.id }, { passwordHash: await hashPassword(next) });
      // Other sessions of this user in this org end; this one stays (and in their other orgs, below).
      const revoked = await revokeHeldCredentials(em, p.orgId, p.userId, p.credentialId);
      await this.audit.record(em, p, { action: 'auth.password_change', targetType: 'User', targetId: user.id, payload: revoked });
      return true;
    });
    if (!ok) throw new AppError(401, ErrorCode.InvalidCredentials, 'Invalid credentials', 'The current password is wrong.');
    // The password is the person's in every org they belong to: their sessions there end too.
    const orgs: { org_id: string }[] = await this.db.outsideOrg((em) => em.query('SELECT org_id FROM steward_auth_user_orgs($1)', [p.userId]));
    for (const o of orgs.filter((x) => x.org_id !== p.orgId)) {
      await this.db.inOrg({ orgId: o.org_id, userId: p.userId }, (em) => revokeHeldCredentials(em, o.org_id, p.userId, null));
    }
  }
}

/**
 * Ends what a person holds in one org once their password changed (or their account was
 * recovered): their console sessions (but `keepSession`), the grants they gave MCP clients (the
 * clients ask again), their API keys (the schedules a revoked key wrote pause at their next run),
 * the invitations they sent that nobody accepted yet and the recovery links they issued that nobody used. A stolen session could have made any of
 * these, to outlive the password. Returns how many of each, for the audit event.
 */
export async function revokeHeldCredentials(
  em: EntityManager,
  orgId: string,
  userId: string,
  keepSession: string | null,
): Promise<{ sessionsEnded: number; mcpGrantsRevoked: number; apiKeysRevoked: number; invitationsRevoked: number; recoveryLinksRevoked: number }> {
  const [r]: { sessions: number; grants: number; keys: number; invitations: number; recoveries: number }[] = await em.query(
    `WITH s AS (UPDATE sessions SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL AND id IS DISTINCT FROM $3 RETURNING id),
          r AS (UPDATE mcp_refresh_tokens SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING family_id),
          a AS (UPDATE mcp_access_tokens SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id),
          k AS (UPDATE api_keys SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id),
          i AS (UPDATE invitations SET revoked_at = now() WHERE org_id = $1 AND invited_by = $2 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id),
          rc AS (UPDATE account_recoveries SET revoked_at = now() WHERE org_id = $1 AND created_by = $2 AND used_at IS NULL AND revoked_at IS NULL RETURNING id)
     SELECT (SELECT count(*)::int FROM rc) AS recoveries, (SELECT count(*)::int FROM s) AS sessions, (SELECT count(DISTINCT family_id)::int FROM r) AS grants,
            (SELECT count(*)::int FROM k) AS keys, (SELECT count(*)::int FROM i) AS invitations`,
    [orgId, userId, keepSession],
  );
  return { sessionsEnded: r?.sessions ?? 0, mcpGrantsRevoked: r?.grants ?? 0, apiKeysRevoked: r?.keys ?? 0, invitationsRevoked: r?.invitations ?? 0, recoveryLinksRevoked: r?.recoveries ?? 0 };
}
