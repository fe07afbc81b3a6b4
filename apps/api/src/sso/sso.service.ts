import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import type { z } from 'zod';
import { AppError, type Config, type EgressResolver, ErrorCode, guardedFetch, isHostAllowlisted, newId, SecretBox, ssoClientSecretAad } from '@steward/common';
import { type EntityManager, Group, GroupMember, Membership, Org, queryReturning, RoleAssignment, User } from '@steward/db';
import { AccessService } from '../access/access.service';
import { type AuditActor, AuditService } from '../audit/audit.service';
import { AuthService, type RequestMeta } from '../auth/auth.service';
import type { Principal } from '../auth/principal';
import { accountOwnedElsewhere } from '../auth/account-ownership';
import { Db } from '../core/db.service';
import { CONFIG, EGRESS_RESOLVER, REDIS } from '../core/tokens';
import type { PutSsoConfigBody, SsoCallbackQuery, SsoConfigView, SsoStartBody } from './sso.schemas';
import { heldBySanction } from '../sanctions/held-by-sanction';
import { domainVerified } from '../orgs/org-domains.service';

interface SsoConfigRow {
  org_id: string;
  issuer: string;
  client_id: string;
  client_secret_sealed: string | null;
  enabled: boolean;
  groups_claim: string;
  group_map: Record<string, string>;
  default_role: string;
  verified_at: Date | null;
  updated_at: Date;
}

/** What a started sign-in keeps server-side (Redis, ten minutes, single use). */
interface PendingLogin {
  orgId: string;
  verifier: string;
  nonce: string;
  /** SHA-256 of the browser binding cookie: a callback from another browser is refused. */
  binding: string;
  /** Where the browser goes once signed in, when not the console: the MCP consent page (a path on this API). */
  returnTo?: string;
}

/** The only places a sign-in may return to besides the console: the MCP consent page of one authorization request. */
export const SSO_RETURN_PATH = /^\/oauth\/consent\?request=[A-Za-z0-9_-]{1,100}$/;

export const SSO_BINDING_COOKIE = 'steward_sso';
const PENDING_TTL_SECONDS = 600;
const secretAad = ssoClientSecretAad;
const sha256 = (v: string) => createHash('sha256').update(v).digest('hex');

const refused = (detail: string) => new AppError(401, ErrorCode.InvalidCredentials, 'Single sign-on failed', detail);

/**
 * OpenID Connect sign-in per org (authorization code + PKCE S256 + state + nonce) on
 * `openid-client`. The pending sign-in (verifier, nonce, org) lives in Redis under a hash of
 * the state, bound to the browser that started it; the callback consumes it once (GETDEL).
 * People are created just in time, linked by (issuer, subject); mapped group claims are
 * synchronised into Steward groups on every sign-in.
 */
@Injectable()
export class SsoService {
  private readonly box: SecretBox;

  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    private readonly auth: AuthService,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(EGRESS_RESOLVER) private readonly resolver: EgressResolver,
  ) {
    this.box = new SecretBox(config.STEWARD_MASTER_KEY);
  }

  redirectUri(): string {
    const base = (this.config.STEWARD_PUBLIC_URL ?? `http://localhost:${this.config.PORT}`).replace(/\/+$/, '');
    return `${base}/v1/auth/sso/callback`;
  }

  private key(state: string): string {
    return `${this.config.REDIS_PREFIX}:sso:${sha256(state)}`;
  }

  private view(row: SsoConfigRow): z.infer<typeof SsoConfigView> {
    return {
      issuer: row.issuer,
      clientId: row.client_id,
      clientSecretSet: row.client_secret_sealed !== null,
      enabled: row.enabled,
      groupsClaim: row.groups_claim,
      groupMap: row.group_map,
      defaultRole: row.default_role as z.infer<typeof SsoConfigView>['defaultRole'],
      verifiedAt: row.verified_at?.toISOString() ?? null,
      redirectUri: this.redirectUri(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }

  private async row(em: EntityManager, orgId: string): Promise<SsoConfigRow | undefined> {
    const rows: SsoConfigRow[] = await em.query(`SELECT * FROM sso_configs WHERE org_id = $1`, [orgId]);
    return rows[0];
  }

  async get(p: Principal) {
    await this.access.authorize(p, 'read', 'SsoConfig');
    return this.db.inOrg(p, async (em) => {
      const row = await this.row(em, p.orgId);
      if (!row) throw AppError.notFound('SSO configuration');
      return this.view(row);
    });
  }

  async put(p: Principal, body: z.infer<typeof PutSsoConfigBody>) {
    await this.access.authorize(p, 'update', 'SsoConfig');
    return this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      const existing = await this.row(em, p.orgId);
      if (!existing && !body.clientSecret) throw AppError.validation([{ path: 'clientSecret', message: 'required when SSO is first configured' }]);
      const ids = [...new Set(Object.values(body.groupMap))];
      if (ids.length) {
        const found: { id: string }[] = await em.query(`SELECT id FROM groups WHERE org_id = $1 AND id = ANY($2::uuid[])`, [p.orgId, ids]);
        const missing = ids.filter((id) => !found.some((f) => f.id === id));
        if (missing.length) throw AppError.validation(missing.map((id) => ({ path: 'groupMap', message: `no group ${id} in this org` })));
      }
      const org = await em.findOneByOrFail(Org, { id: p.orgId });
      if (!body.enabled && !org.passwordSignIn) throw AppError.conflict('Password sign-in is off: turn it on before disabling SSO, or nobody could sign in.');
      const issuerChanged = existing !== undefined && (existing.issuer !== body.issuer || existing.client_id !== body.clientId);
      const sealed = body.clientSecret ? this.box.seal(body.clientSecret, secretAad(p.orgId)) : existing!.client_secret_sealed;
      await em.query(
        `INSERT INTO sso_configs (org_id, issuer, client_id, client_secret_sealed, enabled, groups_claim, group_map, default_role, verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)
         ON CONFLICT (org_id) DO UPDATE SET issuer = $2, client_id = $3, client_secret_sealed = $4, enabled = $5, groups_claim = $6,
           group_map = $7, default_role = $8, updated_at = now(),
           verified_at = CASE WHEN $9 THEN NULL ELSE sso_configs.verified_at END`,
        [p.orgId, body.issuer, body.clientId, sealed, body.enabled, body.groupsClaim, JSON.stringify(body.groupMap), body.defaultRole, issuerChanged],
      );
      if (issuerChanged && !org.passwordSignIn) throw AppError.conflict('Password sign-in is off: a new provider must work before it replaces the old one; turn password sign-in on first.');
      await this.audit.record(em, p, {
        action: existing ? 'sso_config.update' : 'sso_config.create',
        targetType: 'Org',
        targetId: p.orgId,
        payload: { issuer: body.issuer, clientId: body.clientId, secretChanged: body.clientSecret !== undefined, enabled: body.enabled, groupsClaim: body.groupsClaim, mappedGroups: Object.keys(body.groupMap).length, defaultRole: body.defaultRole },
      });
      return this.view((await this.row(em, p.orgId))!);
    });
  }

  async remove(p: Principal): Promise<void> {
    await this.access.authorize(p, 'update', 'SsoConfig');
    await this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      const org = await em.findOneByOrFail(Org, { id: p.orgId });
      if (!org.passwordSignIn) throw AppError.conflict('Password sign-in is off: turn it on before removing SSO, or nobody could sign in.');
      const rows = await queryReturning(em, `DELETE FROM sso_configs WHERE org_id = $1 RETURNING org_id`, [p.orgId]);
      if (!rows.length) throw AppError.notFound('SSO configuration');
      await this.audit.record(em, p, { action: 'sso_config.delete', targetType: 'Org', targetId: p.orgId });
    });
  }

  /** True when the org's SSO has completed a sign-in (the condition for switching password sign-in off). */
  async verified(em: EntityManager, orgId: string): Promise<boolean> {
    const row = await this.row(em, orgId);
    return !!row && row.enabled && row.verified_at !== null;
  }

  private async discover(row: SsoConfigRow): Promise<oidc.Configuration> {
    const issuer = new URL(row.issuer);
    const allowHosts = this.config.STEWARD_EGRESS_ALLOW_HOSTS;
    const secret = row.client_secret_sealed ? this.box.open(row.client_secret_sealed, secretAad(row.org_id)) : undefined;
    const fetcher = guardedFetch({ allowHosts, resolver: this.resolver, protocols: issuer.protocol === 'http:' && isHostAllowlisted(issuer.hostname, allowHosts) ? ['http:', 'https:'] : ['https:'] });
    try {
      return await oidc.discovery(issuer, row.client_id, undefined, secret ? oidc.ClientSecretPost(secret) : oidc.None(), {
        [oidc.customFetch]: (url, options) => fetcher(url, options as RequestInit),
        execute: issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
      });
    } catch {
      throw new AppError(503, ErrorCode.Unavailable, 'Identity provider unavailable', 'The identity provider could not be reached or its metadata is not valid.');
    }
  }

  /** Which org's SSO serves an email (its domain) or a slug; the authorization URL to send the browser to. */
  async start(body: z.infer<typeof SsoStartBody>, returnTo?: string): Promise<{ authorizationUrl: string; org: { slug: string }; binding: string }> {
    if (returnTo !== undefined && !SSO_RETURN_PATH.test(returnTo)) throw new Error('SSO returnTo must be a consent page path');
    const domain = body.email ? body.email.slice(body.email.lastIndexOf('@') + 1) : null;
    const orgs: { org_id: string; slug: string }[] = await this.db.outsideOrg((em) => em.query(`SELECT org_id, slug FROM steward_sso_org($1, $2)`, [domain, body.org ?? null]));
    if (orgs.length !== 1) {
      throw AppError.notFound(orgs.length ? 'single org for that domain (sign in with the org slug)' : 'SSO for that email or org');
    }
    const org = orgs[0]!;
    const row = await this.db.inOrg({ orgId: org.org_id }, (em) => this.row(em, org.org_id));
    if (!row || !row.enabled) throw AppError.notFound('SSO for that email or org');
    const config = await this.discover(row);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const binding = randomBytes(32).toString('base64url');
    const pending: PendingLogin = { orgId: org.org_id, verifier, nonce, binding: sha256(binding), ...(returnTo ? { returnTo } : {}) };
    await this.redis.set(this.key(state), JSON.stringify(pending), 'EX', PENDING_TTL_SECONDS);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri(),
      scope: 'openid email profile',
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(body.email ? { login_hint: body.email } : {}),
    });
    return { authorizationUrl: url.href, org: { slug: org.slug }, binding };
  }

  /**
   * The provider's redirect back: the pending sign-in is taken once (a replayed or forged
   * state finds nothing), the code exchanged with the PKCE verifier, the ID token's nonce
   * checked, then the member found or created and a session opened.
   */
  async callback(query: z.infer<typeof SsoCallbackQuery>, rawQuery: string, bindingCookie: string | undefined, meta: RequestMeta) {
    const raw = await this.redis.getdel(this.key(query.state));
    if (!raw) throw refused('The sign-in expired or its state is not valid; start again.');
    const pending = JSON.parse(raw) as PendingLogin;
    const systemActor: AuditActor = { orgId: pending.orgId, actorType: 'system', actorId: null, client: 'console', sourceIp: meta.sourceIp, requestId: meta.requestId };
    const fail = async (reason: string, detail: string, status: 401 | 403 = 401): Promise<never> => {
      await this.db.inOrg({ orgId: pending.orgId }, (em) => this.audit.record(em, systemActor, { action: 'auth.sso_login', targetType: 'Org', targetId: pending.orgId, outcome: 'failure', payload: { reason } }));
      throw status === 401 ? refused(detail) : AppError.forbidden(detail);
    };
    if (!bindingCookie || sha256(bindingCookie) !== pending.binding) return fail('browser_binding', 'The sign-in was started in another browser; start again.');
    if (query.error) return fail('provider_error', `The identity provider refused the sign-in (${query.error.slice(0, 60)}).`);
    const row = await this.db.inOrg({ orgId: pending.orgId }, (em) => this.row(em, pending.orgId));
    if (!row || !row.enabled) return fail('sso_disabled', 'SSO is not enabled for this org.');
    const config = await this.discover(row);
    let claims: Record<string, unknown>;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, new URL(`${this.redirectUri()}?${rawQuery}`), {
        pkceCodeVerifier: pending.verifier,
        expectedState: query.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      claims = { ...(tokens.claims() ?? {}) };
      if (typeof claims.email !== 'string' || !(row.groups_claim in claims)) {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, String(claims.sub));
        claims = { ...info, ...claims, email: claims.email ?? info.email, [row.groups_claim]: claims[row.groups_claim] ?? info[row.groups_claim] };
      }
    } catch (err) {
      const code = (err as { code?: string; error?: string }).error ?? (err as { code?: string }).code ?? 'invalid_response';
      return fail(`token:${String(code).slice(0, 60)}`, 'The identity provider response could not be verified.');
    }
    const subject = typeof claims.sub === 'string' ? claims.sub : '';
    const email = typeof claims.email === 'string' ? claims.email.toLowerCase() : '';
    if (!subject || subject.length > 255 || !/^[^@\s]{1,64}@[^@\s]{1,253}$/.test(email)) return fail('claims', 'The identity provider sent no usable subject and email.');
    if (claims.email_verified === false) return fail('email_unverified', 'The identity provider says the email is not verified.');
    const name = (typeof claims.name === 'string' && claims.name.trim().slice(0, 200)) || email;
    const rawGroups = claims[row.groups_claim];
    const groups = new Set((Array.isArray(rawGroups) ? rawGroups : typeof rawGroups === 'string' ? [rawGroups] : []).filter((g): g is string => typeof g === 'string').slice(0, 500));

    const org = await this.db.inOrg({ orgId: pending.orgId }, (em) => em.findOneByOrFail(Org, { id: pending.orgId }));
    const domain = email.slice(email.lastIndexOf('@') + 1);
    if (org.domains.length && !org.domains.includes(domain)) return fail('email_domain', 'That email is outside the org\'s domains.', 403);

    // Who: the identity linked before, else the account with that email, else a new one.
    const linked: { user_id: string }[] = await this.db.inOrg({ orgId: org.id }, (em) =>
      em.query(`SELECT user_id FROM sso_identities WHERE org_id = $1 AND issuer = $2 AND subject = $3`, [org.id, row.issuer, subject]),
    );
    let userId = linked[0]?.user_id;
    let createdUser = false;
    let ownedElsewhere = false;
    if (!userId) {
      const [existing]: { user_id: string }[] = await this.db.outsideOrg((em) => em.query('SELECT user_id FROM steward_auth_user_by_email($1)', [email]));
      // An existing account is linked by its email only when the provider vouches for that email
      // (email_verified true): a provider that lets people edit their email and omits the claim
      // (Entra ID) would otherwise hand anyone there the account of whoever they name.
      if (existing && claims.email_verified !== true) {
        return fail('email_unverified', 'An account with this email exists already, and the identity provider does not say the email is verified: it is not linked.', 403);
      }
      userId = existing?.user_id ?? newId();
      createdUser = !existing;
      ownedElsewhere = !!existing && (await accountOwnedElsewhere(this.db, email, org.id));
    }
    const uid = userId;
    // Single sign-on adds people only at a domain the org proved is its own: its identity provider
    // (a public one, say) could vouch for anyone, and an org can list any domain it likes. Those
    // already members still sign in.
    const admitted = await this.db.inOrg({ orgId: org.id, userId: uid }, async (em) =>
      (!createdUser && (await em.countBy(Membership, { orgId: org.id, userId: uid })) > 0) || (await domainVerified(em, org.id, domain)),
    );
    if (!admitted) return fail('domain_unverified', `${domain} is not a verified domain of the org: single sign-on adds no new people there until an admin verifies it (org settings).`, 403);
    const outcome = { joined: false, added: [] as string[], removed: [] as string[] };
    const suspended = await this.db.inOrg({ orgId: org.id, userId: uid }, async (em) => {
      const m = await em.findOneBy(Membership, { orgId: org.id, userId: uid });
      // No membership left (deprovisioned) does not undo an open sanction: no new one is made.
      return (m !== null && m.status !== 'active') || (m === null && !createdUser && (await heldBySanction(em, org.id, uid)));
    });
    if (suspended) return fail('suspended', 'Your membership of this org is suspended.', 403);

    const actor: AuditActor = { orgId: org.id, actorType: 'user', actorId: uid, client: 'console', sourceIp: meta.sourceIp, requestId: meta.requestId };
    // An account that exists already and is somebody's own (it has a password or a second factor,
    // or belongs to another org) is linked only when it is a member of this org (it accepted an
    // invitation with its password): this org's identity provider cannot claim it.
    if (ownedElsewhere) {
      const member = await this.db.inOrg({ orgId: org.id, userId: uid }, (em) => em.countBy(Membership, { orgId: org.id, userId: uid }));
      if (!member) return fail('existing_account', 'An account with this email exists already: an admin of this org invites it (accepted with its password), then single sign-on links it.', 403);
    }
    const session = await this.auth.openSession(org.id, uid, null, meta, actor, { method: 'sso', issuer: row.issuer, outcome }, async (em) => {
      if (createdUser) {
        await em.insert(User, { id: uid, email, name, passwordHash: null, totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
      }
      if (!linked.length) {
        await em.query(`INSERT INTO sso_identities (org_id, id, issuer, subject, user_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, [org.id, newId(), row.issuer, subject, uid]);
      }
      await em.query(`UPDATE sso_identities SET last_login_at = now() WHERE org_id = $1 AND issuer = $2 AND subject = $3`, [org.id, row.issuer, subject]);
      if (!(await em.countBy(Membership, { orgId: org.id, userId: uid }))) {
        await em.insert(Membership, { id: newId(), orgId: org.id, userId: uid, status: 'active', suspendedAt: null, suspendedReason: null });
        await em.insert(RoleAssignment, { id: newId(), orgId: org.id, userId: uid, role: row.default_role, customRoleId: null });
        outcome.joined = true;
      }
      await this.syncGroups(em, org.id, uid, row.group_map, groups, outcome);
      if (!row.verified_at) await em.query(`UPDATE sso_configs SET verified_at = now() WHERE org_id = $1 AND verified_at IS NULL`, [org.id]);
      if (outcome.joined || outcome.added.length || outcome.removed.length) {
        await this.audit.record(em, actor, {
          action: 'auth.sso_provision',
          targetType: 'User',
          targetId: uid,
          payload: { createdUser, joined: outcome.joined, role: outcome.joined ? row.default_role : undefined, groupsAdded: outcome.added, groupsRemoved: outcome.removed },
        });
      }
    }, 'sso');
    return { ...session, returnTo: pending.returnTo && SSO_RETURN_PATH.test(pending.returnTo) ? pending.returnTo : undefined };
  }

  /** Mapped groups follow the claim: added when present, removed when absent. Unmapped groups are left alone. */
  private async syncGroups(em: EntityManager, orgId: string, userId: string, map: Record<string, string>, claimed: Set<string>, outcome: { added: string[]; removed: string[] }) {
    const wanted = new Set(Object.entries(map).filter(([value]) => claimed.has(value)).map(([, id]) => id));
    const managed = new Set(Object.values(map));
    const current = new Set((await em.findBy(GroupMember, { orgId, userId })).map((gm) => gm.groupId));
    for (const id of wanted) {
      if (current.has(id) || !(await em.countBy(Group, { orgId, id }))) continue;
      await em.insert(GroupMember, { id: newId(), orgId, groupId: id, userId });
      outcome.added.push(id);
    }
    for (const id of current) {
      if (managed.has(id) && !wanted.has(id)) {
        await em.delete(GroupMember, { orgId, groupId: id, userId });
        outcome.removed.push(id);
      }
    }
  }
}
