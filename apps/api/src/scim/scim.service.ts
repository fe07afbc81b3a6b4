import { Inject, Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { AppError, type Config, ErrorCode, hashToken, newId, newToken, TokenPrefix, tokenHint } from '@steward/common';
import { type EntityManager, Group, GroupMember, Membership, RoleAssignment, User } from '@steward/db';
import { AccessService } from '../access/access.service';
import { type AuditActor, AuditService } from '../audit/audit.service';
import type { Principal, ScimCaller } from '../auth/principal';
import { Db } from '../core/db.service';
import { accountOwnedElsewhere } from '../auth/account-ownership';
import { CONFIG } from '../core/tokens';
import { domainVerified } from '../orgs/org-domains.service';
import { Boolish, type CreateScimTokenBody, SCIM, type ScimGroupBody, type ScimListQuery, type ScimPatchBody, type ScimUserBody } from './scim.schemas';
import { closeWorkflowsOf } from '../workflows/workflow-access';
import { heldBySanction } from '../sanctions/held-by-sanction';
import { lockOwners } from '../members/owners';

/** An error in SCIM's terms (RFC 7644 §3.12 scimType), rendered with the SCIM error schema. */
export class ScimError extends AppError {
  constructor(status: number, readonly scimType: string | undefined, detail: string) {
    const code = status === 409 ? ErrorCode.Conflict : status === 404 ? ErrorCode.NotFound : ErrorCode.ValidationFailed;
    super(status, code, status === 409 ? 'Conflict' : status === 404 ? 'Not found' : 'Bad request', detail);
  }
}

const invalid = (detail: string, scimType = 'invalidValue') => new ScimError(400, scimType, detail);
/** A suspension the identity provider made (deprovisioned): only the identity provider lifts it. */
export const SCIM_SUSPENSION = 'Deprovisioned by the identity provider (SCIM)';
export const SANCTION_SUSPENSION = 'Suspended by an open sanction: an owner lifts it in Steward (the identity provider cannot)';
const onlyOwner = () => new ScimError(409, undefined, "This person is the org's only active owner: make another member owner in Steward before deprovisioning them.");

/** Whether the person is the org's one active owner (deprovisioning them would leave the org with none, for good). */
async function lastActiveOwner(em: EntityManager, orgId: string, userId: string): Promise<boolean> {
  await lockOwners(em, orgId);
  const [r]: { me: boolean | null; n: number }[] = await em.query(
    `SELECT bool_or(r.user_id = $2) AS me, count(DISTINCT r.user_id)::int AS n FROM role_assignments r
       JOIN memberships m ON m.org_id = r.org_id AND m.user_id = r.user_id AND m.status = 'active'
      WHERE r.org_id = $1 AND r.role = 'owner'`,
    [orgId, userId],
  );
  return r?.me === true && r.n <= 1;
}


interface UserRow {
  membership_id: string;
  user_id: string;
  email: string;
  name: string;
  status: string;
  suspended_reason: string | null;
  scim_external_id: string | null;
  created_at: Date;
  updated_at: Date;
}

interface GroupRow {
  id: string;
  name: string;
  scim_external_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** What a user-changing request wants, after Okta's or Entra ID's shapes are read. */
interface UserChange {
  email?: string;
  name?: string;
  givenName?: string;
  familyName?: string;
  externalId?: string | null;
  active?: boolean;
}

/** `attr eq "value"` (RFC 7644 §3.4.2.2), the filters provisioning clients send. */
function parseFilter(filter: string | undefined): { attr: string; value: string } | undefined {
  if (!filter) return undefined;
  const m = /^\s*([A-Za-z][\w.:]*(?:\[type eq "work"\])?(?:\.value)?)\s+eq\s+"((?:[^"\\]|\\.){0,300})"\s*$/i.exec(filter);
  if (!m) throw invalid('Only filters of the form `attribute eq "value"` are supported.', 'invalidFilter');
  return { attr: m[1]!.toLowerCase(), value: m[2]!.replace(/\\(.)/g, '$1') };
}

const USER_FILTERS: Record<string, string> = {
  username: 'u.email = lower($2)',
  externalid: 'm.scim_external_id = $2',
  'emails.value': 'u.email = lower($2)',
  'emails[type eq "work"].value': 'u.email = lower($2)',
  emails: 'u.email = lower($2)',
  displayname: 'u.name = $2',
  id: 'm.id::text = $2',
};
const GROUP_FILTERS: Record<string, string> = {
  displayname: 'g.name = $2',
  externalid: 'g.scim_external_id = $2',
  id: 'g.id::text = $2',
};

function emailLike(v: unknown): v is string {
  return typeof v === 'string' && /^[^@\s]{1,64}@[^@\s]{1,253}$/.test(v);
}

function excluded(q: { attributes?: string; excludedAttributes?: string }, attr: string): boolean {
  const ex = (q.excludedAttributes ?? '').toLowerCase().split(',').map((s) => s.trim());
  return ex.includes(attr.toLowerCase());
}

/**
 * SCIM 2.0 provisioning of one org (the token says which): Users are the org's memberships
 * (the SCIM id is the membership id; userName is the email), Groups are Steward groups.
 * Deactivating suspends the membership, which the gate's write-ahead refuses from the user's
 * next agent action on; sessions of the user in the org end at once.
 */
@Injectable()
export class ScimService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  baseUrl(): string {
    return `${(this.config.STEWARD_PUBLIC_URL ?? `http://localhost:${this.config.PORT}`).replace(/\/+$/, '')}/scim/v2`;
  }

  private actor(c: ScimCaller): AuditActor {
    return { orgId: c.orgId, actorType: 'scim_token', actorId: c.tokenId, client: 'scim', sourceIp: c.sourceIp, requestId: c.requestId };
  }

  // ---------------------------------------------------------------- Users

  private async userRows(em: EntityManager, orgId: string, where: string, params: unknown[], limit = 1, offset = 0): Promise<UserRow[]> {
    return em.query(
      `SELECT m.id AS membership_id, m.user_id, u.email, u.name, m.status, m.suspended_reason, m.scim_external_id, m.created_at, m.updated_at
         FROM memberships m JOIN users u ON u.id = m.user_id
        WHERE m.org_id = $1 AND ${where} ORDER BY m.created_at, m.id LIMIT ${limit} OFFSET ${offset}`,
      [orgId, ...params],
    );
  }

  private async loadUser(em: EntityManager, orgId: string, id: string): Promise<UserRow> {
    const [row] = await this.userRows(em, orgId, 'm.id = $2', [id]);
    if (!row) throw new ScimError(404, undefined, `No user ${id}.`);
    return row;
  }

  private async userResource(em: EntityManager, orgId: string, row: UserRow, withGroups = true) {
    const groups: { id: string; name: string }[] = withGroups
      ? await em.query(`SELECT g.id, g.name FROM group_members gm JOIN groups g ON g.org_id = gm.org_id AND g.id = gm.group_id WHERE gm.org_id = $1 AND gm.user_id = $2 ORDER BY g.name`, [orgId, row.user_id])
      : [];
    const [given, ...rest] = row.name.split(' ');
    return {
      schemas: [SCIM.user],
      id: row.membership_id,
      ...(row.scim_external_id ? { externalId: row.scim_external_id } : {}),
      userName: row.email,
      name: { formatted: row.name, givenName: given ?? '', familyName: rest.join(' ') },
      displayName: row.name,
      emails: [{ value: row.email, type: 'work', primary: true }],
      active: row.status === 'active',
      ...(withGroups ? { groups: groups.map((g) => ({ value: g.id, display: g.name, $ref: `${this.baseUrl()}/Groups/${g.id}` })) } : {}),
      meta: { resourceType: 'User', created: new Date(row.created_at).toISOString(), lastModified: new Date(row.updated_at).toISOString(), location: `${this.baseUrl()}/Users/${row.membership_id}` },
    };
  }

  async listUsers(c: ScimCaller, q: z.infer<typeof ScimListQuery>) {
    const f = parseFilter(q.filter);
    let where = 'true';
    const params: unknown[] = [];
    if (f) {
      const clause = USER_FILTERS[f.attr];
      if (!clause) throw invalid(`Filtering on "${f.attr}" is not supported (userName, externalId, emails.value, displayName, id).`, 'invalidFilter');
      where = clause;
      params.push(f.value);
    }
    const start = q.startIndex ?? 1;
    const count = Math.min(q.count ?? 100, 200);
    return this.db.inOrg({ orgId: c.orgId }, async (em) => {
      const [{ n }]: { n: number }[] = await em.query(`SELECT count(*)::int AS n FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND ${where}`, [c.orgId, ...params]);
      const rows = count === 0 ? [] : await this.userRows(em, c.orgId, where, params, count, start - 1);
      const resources = [];
      for (const r of rows) resources.push(await this.userResource(em, c.orgId, r, !excluded(q, 'groups')));
      return { schemas: [SCIM.list], totalResults: n, startIndex: start, itemsPerPage: resources.length, Resources: resources };
    });
  }

  async getUser(c: ScimCaller, id: string, q: { excludedAttributes?: string }) {
    return this.db.inOrg({ orgId: c.orgId }, async (em) => this.userResource(em, c.orgId, await this.loadUser(em, c.orgId, id), !excluded(q, 'groups')));
  }

  private readUser(body: z.infer<typeof ScimUserBody>): UserChange {
    const primary = body.emails?.find((e) => e.primary) ?? body.emails?.find((e) => e.type === 'work') ?? body.emails?.[0];
    const email = emailLike(body.userName) ? body.userName : primary?.value;
    if (!emailLike(email)) throw invalid('userName (or a primary email) must be an email address.');
    const composed = [body.name?.givenName, body.name?.familyName].filter(Boolean).join(' ');
    return {
      email: email.toLowerCase(),
      name: (body.displayName || body.name?.formatted || composed || email).trim().slice(0, 200),
      externalId: body.externalId ?? null,
      active: body.active ?? true,
    };
  }

  /** SCIM adds and renames people only at a domain the org proved is its own (org settings: verify). */
  private async assertDomain(em: EntityManager, orgId: string, email: string): Promise<void> {
    const domain = email.slice(email.lastIndexOf('@') + 1);
    if (!(await domainVerified(em, orgId, domain))) throw invalid(`${domain} is not a verified domain of the org (an admin verifies it in the org settings).`);
  }

  async createUser(c: ScimCaller, body: z.infer<typeof ScimUserBody>) {
    const want = this.readUser(body);
    const email = want.email!;
    const [existing]: { user_id: string }[] = await this.db.outsideOrg((em) => em.query('SELECT user_id FROM steward_auth_user_by_email($1)', [email]));
    const userId = existing?.user_id ?? newId();
    const ownedElsewhere = !!existing && (await accountOwnedElsewhere(this.db, email, c.orgId));
    return this.db.inOrg({ orgId: c.orgId, userId }, async (em) => {
      await this.assertDomain(em, c.orgId, email);
      if (await em.countBy(Membership, { orgId: c.orgId, userId })) throw new ScimError(409, 'uniqueness', `A user with userName ${email} exists.`);
      // An account that is somebody's own (a password or second factor of its own, or another org)
      // is not this identity provider's to claim: it joins by invitation, accepted with its password.
      if (ownedElsewhere) throw new ScimError(409, 'uniqueness', `An account with userName ${email} exists outside this org: invite it (POST /v1/invitations), then link it here.`);
      if (want.externalId && (await this.userRows(em, c.orgId, 'm.scim_external_id = $2', [want.externalId])).length) {
        throw new ScimError(409, 'uniqueness', 'A user with that externalId exists.');
      }
      if (!existing) await em.insert(User, { id: userId, email, name: want.name!, passwordHash: null, totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
      const [sso]: { default_role: string }[] = await em.query(`SELECT default_role FROM sso_configs WHERE org_id = $1`, [c.orgId]);
      const role = sso?.default_role ?? 'member';
      const membershipId = newId();
      // Deleted and provisioned again while a sanction keeps them suspended: they come back suspended by it.
      const held = existing ? await heldBySanction(em, c.orgId, userId) : false;
      const active = want.active && !held;
      await em.insert(Membership, {
        id: membershipId,
        orgId: c.orgId,
        userId,
        status: active ? 'active' : 'suspended',
        suspendedAt: active ? null : new Date(),
        suspendedReason: active ? null : held ? SANCTION_SUSPENSION : SCIM_SUSPENSION,
      });
      await em.query(`UPDATE memberships SET scim_external_id = $3 WHERE org_id = $1 AND id = $2`, [c.orgId, membershipId, want.externalId]);
      await em.insert(RoleAssignment, { id: newId(), orgId: c.orgId, userId, role, customRoleId: null });
      await this.audit.record(em, this.actor(c), {
        action: 'scim.user_create',
        targetType: 'User',
        targetId: userId,
        payload: { membershipId, newUser: !existing, role, active, ...(held ? { keptSuspended: 'open_sanction' } : {}) },
        sensitive: { email },
      });
      return this.userResource(em, c.orgId, await this.loadUser(em, c.orgId, membershipId));
    });
  }

  async replaceUser(c: ScimCaller, id: string, body: z.infer<typeof ScimUserBody>) {
    return this.changeUser(c, id, this.readUser(body), 'scim.user_replace');
  }

  async patchUser(c: ScimCaller, id: string, body: z.infer<typeof ScimPatchBody>) {
    const change: UserChange = {};
    const apply = (path: string, value: unknown, op: string) => {
      const p = path.toLowerCase();
      const str = (max: number) => {
        if (op === 'remove') return null;
        if (typeof value !== 'string' || value.length > max) throw invalid(`${path} must be a string of at most ${max} characters.`);
        return value;
      };
      if (p === 'active') {
        const b = Boolish.safeParse(value);
        if (!b.success) throw invalid('active must be a boolean.');
        change.active = b.data;
      } else if (p === 'externalid') change.externalId = str(255);
      else if (p === 'username' || p === 'emails' || p === 'emails.value' || p === 'emails[type eq "work"].value' || p === 'emails[primary eq true].value') {
        // Entries that are not objects (null, a bare string) are no email entry.
        const entries = p === 'emails' && Array.isArray(value) ? (value as unknown[]).filter((e): e is { value?: unknown; primary?: unknown } => !!e && typeof e === 'object') : null;
        const v = entries ? (entries.find((e) => e.primary === true || e.primary === 'True') ?? entries[0])?.value : value;
        if (op === 'remove' || !emailLike(v)) throw invalid(`${path} must be an email address.`);
        change.email = v.toLowerCase();
      } else if (p === 'displayname' || p === 'name.formatted') change.name = str(200) ?? undefined;
      else if (p === 'name.givenname') change.givenName = str(100) ?? '';
      else if (p === 'name.familyname') change.familyName = str(100) ?? '';
      else if (p === 'name' && value && typeof value === 'object') {
        const n = value as Record<string, unknown>;
        if (typeof n.formatted === 'string') change.name = n.formatted.slice(0, 200);
        if (typeof n.givenName === 'string') change.givenName = n.givenName.slice(0, 100);
        if (typeof n.familyName === 'string') change.familyName = n.familyName.slice(0, 100);
      }
      // Other attributes (title, phoneNumbers, the enterprise extension, ...) are accepted and not stored.
    };
    for (const operation of body.Operations) {
      const op = operation.op.toLowerCase();
      if (!['add', 'replace', 'remove'].includes(op)) throw invalid(`Unknown op "${operation.op}".`, 'invalidSyntax');
      if (operation.path) apply(operation.path, operation.value, op);
      else if (operation.value && typeof operation.value === 'object' && !Array.isArray(operation.value)) {
        for (const [k, v] of Object.entries(operation.value as Record<string, unknown>).slice(0, 100)) apply(k, v, op);
      } else throw invalid('An operation without a path needs an object value.', 'noTarget');
    }
    return this.changeUser(c, id, change, 'scim.user_patch');
  }

  private async changeUser(c: ScimCaller, id: string, change: UserChange, action: string) {
    const current = await this.db.inOrg({ orgId: c.orgId }, (em) => this.loadUser(em, c.orgId, id));
    // The person's global record (name, email) changes only when this org is the only one they belong to.
    const orgs: unknown[] = await this.db.outsideOrg((em) => em.query('SELECT org_id FROM steward_auth_user_orgs($1)', [current.user_id]));
    const sole = orgs.length <= 1;
    return this.db.inOrg({ orgId: c.orgId, userId: current.user_id }, async (em) => {
      const row = await this.loadUser(em, c.orgId, id);
      const changed: string[] = [];
      let name = change.name;
      if (name === undefined && (change.givenName !== undefined || change.familyName !== undefined)) {
        const [given, ...rest] = row.name.split(' ');
        name = [change.givenName ?? given, change.familyName ?? rest.join(' ')].filter(Boolean).join(' ').trim() || row.email;
      }
      if (sole && name !== undefined && name !== row.name) {
        await em.update(User, { id: row.user_id }, { name });
        changed.push('name');
      }
      if (change.email !== undefined && change.email !== row.email) {
        if (!sole) throw new ScimError(400, 'mutability', 'This person belongs to other orgs too; their email cannot be changed from here.');
        await this.assertDomain(em, c.orgId, change.email);
        const [taken]: unknown[] = await this.db.outsideOrg((o) => o.query('SELECT user_id FROM steward_auth_user_by_email($1)', [change.email]));
        if (taken) throw new ScimError(409, 'uniqueness', 'Another account has that email.');
        await em.update(User, { id: row.user_id }, { email: change.email });
        changed.push('userName');
      }
      if (change.externalId !== undefined && change.externalId !== row.scim_external_id) {
        await em.query(`UPDATE memberships SET scim_external_id = $3, updated_at = now() WHERE org_id = $1 AND id = $2`, [c.orgId, id, change.externalId]);
        changed.push('externalId');
      }
      if (change.active !== undefined) {
        const outcome = await this.setActive(em, c.orgId, row, change.active);
        if (outcome) changed.push(outcome);
      }
      await this.audit.record(em, this.actor(c), { action, targetType: 'User', targetId: row.user_id, payload: { membershipId: id, changed } });
      return this.userResource(em, c.orgId, await this.loadUser(em, c.orgId, id));
    });
  }

  /**
   * Deactivation suspends the membership (the gate refuses the user's next agent action; the
   * auth guard refuses their sessions and keys) and ends their sessions in this org.
   * Reactivation lifts only a suspension SCIM made (a disciplinary one stays).
   */
  private async setActive(em: EntityManager, orgId: string, row: UserRow, active: boolean): Promise<string | undefined> {
    if (!active && row.status === 'active') {
      if (await lastActiveOwner(em, orgId, row.user_id)) throw onlyOwner();
      await em.query(`UPDATE memberships SET status = 'suspended', suspended_at = now(), suspended_reason = $3, suspended_by = NULL, updated_at = now() WHERE org_id = $1 AND id = $2`, [orgId, row.membership_id, SCIM_SUSPENSION]);
      await em.query(`UPDATE sessions SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL`, [orgId, row.user_id]);
      return 'deactivated';
    }
    if (active && row.status !== 'active' && row.suspended_reason === SCIM_SUSPENSION) {
      // A sanction confirmed while they were deprovisioned keeps them suspended: an owner lifts it in Steward.
      if (await heldBySanction(em, orgId, row.user_id)) {
        await em.query(`UPDATE memberships SET suspended_reason = $3, updated_at = now() WHERE org_id = $1 AND id = $2`, [orgId, row.membership_id, SANCTION_SUSPENSION]);
        return 'kept_suspended_by_sanction';
      }
      await em.query(`UPDATE memberships SET status = 'active', suspended_at = NULL, suspended_reason = NULL, suspended_by = NULL, updated_at = now() WHERE org_id = $1 AND id = $2`, [orgId, row.membership_id]);
      return 'reactivated';
    }
    return undefined;
  }

  async deleteUser(c: ScimCaller, id: string): Promise<void> {
    await this.db.inOrg({ orgId: c.orgId }, async (em) => {
      const row = await this.loadUser(em, c.orgId, id);
      if (row.status === 'active' && (await lastActiveOwner(em, c.orgId, row.user_id))) throw onlyOwner();
      await em.query(`UPDATE sessions SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL`, [c.orgId, row.user_id]);
      await em.query(`UPDATE api_keys SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL`, [c.orgId, row.user_id]);
      // MCP clients' tokens too: were the person provisioned again, an old client would not come back with them.
      await em.query(`UPDATE mcp_access_tokens SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL`, [c.orgId, row.user_id]);
      await em.query(`UPDATE mcp_refresh_tokens SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL`, [c.orgId, row.user_id]);
      // And the person's own connector credentials (their OAuth grants, their API keys for a service):
      // shredded here, so that nothing acts with them, nor comes back with the person provisioned again.
      const [{ n: credentialsRevoked }]: { n: number }[] = await em.query(
        `WITH r AS (UPDATE credentials SET status = 'revoked', sealed = NULL, wrapped_key = NULL, revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND status <> 'revoked' RETURNING id) SELECT count(*)::int AS n FROM r`,
        [c.orgId, row.user_id],
      );
      await em.delete(GroupMember, { orgId: c.orgId, userId: row.user_id });
      await em.delete(RoleAssignment, { orgId: c.orgId, userId: row.user_id });
      await em.query(`DELETE FROM sso_identities WHERE org_id = $1 AND user_id = $2`, [c.orgId, row.user_id]);
      await em.delete(Membership, { orgId: c.orgId, id });
      await this.audit.record(em, this.actor(c), { action: 'scim.user_delete', targetType: 'User', targetId: row.user_id, payload: { membershipId: id, credentialsRevoked }, sensitive: { email: row.email } });
    });
  }

  // ---------------------------------------------------------------- Groups

  private async groupResource(em: EntityManager, orgId: string, g: GroupRow, withMembers = true) {
    const members: { id: string; email: string }[] = withMembers
      ? await em.query(
          `SELECT m.id, u.email FROM group_members gm JOIN memberships m ON m.org_id = gm.org_id AND m.user_id = gm.user_id JOIN users u ON u.id = gm.user_id
            WHERE gm.org_id = $1 AND gm.group_id = $2 ORDER BY u.email`,
          [orgId, g.id],
        )
      : [];
    return {
      schemas: [SCIM.group],
      id: g.id,
      ...(g.scim_external_id ? { externalId: g.scim_external_id } : {}),
      displayName: g.name,
      ...(withMembers ? { members: members.map((m) => ({ value: m.id, display: m.email, $ref: `${this.baseUrl()}/Users/${m.id}` })) } : {}),
      meta: { resourceType: 'Group', created: new Date(g.created_at).toISOString(), lastModified: new Date(g.updated_at).toISOString(), location: `${this.baseUrl()}/Groups/${g.id}` },
    };
  }

  private async groupRows(em: EntityManager, orgId: string, where: string, params: unknown[], limit = 1, offset = 0): Promise<GroupRow[]> {
    return em.query(`SELECT g.id, g.name, g.scim_external_id, g.created_at, g.updated_at FROM groups g WHERE g.org_id = $1 AND ${where} ORDER BY g.name, g.id LIMIT ${limit} OFFSET ${offset}`, [orgId, ...params]);
  }

  private async loadGroup(em: EntityManager, orgId: string, id: string): Promise<GroupRow> {
    const [g] = await this.groupRows(em, orgId, 'g.id = $2', [id]);
    if (!g) throw new ScimError(404, undefined, `No group ${id}.`);
    return g;
  }

  async listGroups(c: ScimCaller, q: z.infer<typeof ScimListQuery>) {
    const f = parseFilter(q.filter);
    let where = 'true';
    const params: unknown[] = [];
    if (f) {
      const clause = GROUP_FILTERS[f.attr];
      if (!clause) throw invalid(`Filtering on "${f.attr}" is not supported (displayName, externalId, id).`, 'invalidFilter');
      where = clause;
      params.push(f.value);
    }
    const start = q.startIndex ?? 1;
    const count = Math.min(q.count ?? 100, 200);
    return this.db.inOrg({ orgId: c.orgId }, async (em) => {
      const [{ n }]: { n: number }[] = await em.query(`SELECT count(*)::int AS n FROM groups g WHERE g.org_id = $1 AND ${where}`, [c.orgId, ...params]);
      const rows = count === 0 ? [] : await this.groupRows(em, c.orgId, where, params, count, start - 1);
      const resources = [];
      for (const g of rows) resources.push(await this.groupResource(em, c.orgId, g, !excluded(q, 'members')));
      return { schemas: [SCIM.list], totalResults: n, startIndex: start, itemsPerPage: resources.length, Resources: resources };
    });
  }

  async getGroup(c: ScimCaller, id: string, q: { excludedAttributes?: string }) {
    return this.db.inOrg({ orgId: c.orgId }, async (em) => this.groupResource(em, c.orgId, await this.loadGroup(em, c.orgId, id), !excluded(q, 'members')));
  }

  /** SCIM user ids (membership ids) → Steward user ids; an unknown one is refused. */
  private async memberUserIds(em: EntityManager, orgId: string, values: string[]): Promise<string[]> {
    if (!values.length) return [];
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
    const bad = values.find((v) => !uuid.test(v));
    if (bad) throw invalid(`No user ${bad.slice(0, 100)}.`);
    const rows: { id: string; user_id: string }[] = await em.query(`SELECT id, user_id FROM memberships WHERE org_id = $1 AND id = ANY($2::uuid[])`, [orgId, values]);
    const missing = values.find((v) => !rows.some((r) => r.id === v.toLowerCase()));
    if (missing) throw invalid(`No user ${missing}.`);
    return [...new Set(rows.map((r) => r.user_id))];
  }

  private async setMembers(em: EntityManager, orgId: string, groupId: string, userIds: string[], mode: 'add' | 'remove' | 'replace'): Promise<{ added: number; removed: number }> {
    const current = new Set((await em.findBy(GroupMember, { orgId, groupId })).map((m) => m.userId));
    const target = new Set(mode === 'replace' ? userIds : mode === 'add' ? [...current, ...userIds] : [...current].filter((u) => !userIds.includes(u)));
    let added = 0;
    let removed = 0;
    for (const u of target) {
      if (current.has(u)) continue;
      await em.insert(GroupMember, { id: newId(), orgId, groupId, userId: u });
      added++;
    }
    for (const u of current) {
      if (target.has(u)) continue;
      await em.delete(GroupMember, { orgId, groupId, userId: u });
      removed++;
    }
    return { added, removed };
  }

  private async assertGroupUnique(em: EntityManager, orgId: string, name: string | undefined, externalId: string | null | undefined, except?: string) {
    if (name !== undefined && (await em.query(`SELECT 1 FROM groups WHERE org_id = $1 AND name = $2 AND id IS DISTINCT FROM $3`, [orgId, name, except ?? null])).length) {
      throw new ScimError(409, 'uniqueness', `A group named "${name}" exists.`);
    }
    if (externalId && (await em.query(`SELECT 1 FROM groups WHERE org_id = $1 AND scim_external_id = $2 AND id IS DISTINCT FROM $3`, [orgId, externalId, except ?? null])).length) {
      throw new ScimError(409, 'uniqueness', 'A group with that externalId exists.');
    }
  }

  async createGroup(c: ScimCaller, body: z.infer<typeof ScimGroupBody>) {
    return this.db.inOrg({ orgId: c.orgId }, async (em) => {
      await this.assertGroupUnique(em, c.orgId, body.displayName, body.externalId);
      const id = newId();
      await em.insert(Group, { id, orgId: c.orgId, name: body.displayName, description: 'Provisioned by the identity provider (SCIM)' });
      await em.query(`UPDATE groups SET scim_external_id = $3 WHERE org_id = $1 AND id = $2`, [c.orgId, id, body.externalId ?? null]);
      const members = await this.setMembers(em, c.orgId, id, await this.memberUserIds(em, c.orgId, (body.members ?? []).map((m) => m.value)), 'replace');
      await this.audit.record(em, this.actor(c), { action: 'scim.group_create', targetType: 'Group', targetId: id, payload: { name: body.displayName, ...members } });
      return this.groupResource(em, c.orgId, await this.loadGroup(em, c.orgId, id));
    });
  }

  async replaceGroup(c: ScimCaller, id: string, body: z.infer<typeof ScimGroupBody>) {
    return this.db.inOrg({ orgId: c.orgId }, async (em) => {
      const g = await this.loadGroup(em, c.orgId, id);
      await this.assertGroupUnique(em, c.orgId, body.displayName, body.externalId, id);
      await em.query(`UPDATE groups SET name = $3, scim_external_id = $4, updated_at = now() WHERE org_id = $1 AND id = $2`, [c.orgId, id, body.displayName, body.externalId ?? g.scim_external_id]);
      const members = await this.setMembers(em, c.orgId, id, await this.memberUserIds(em, c.orgId, (body.members ?? []).map((m) => m.value)), 'replace');
      await this.audit.record(em, this.actor(c), { action: 'scim.group_replace', targetType: 'Group', targetId: id, payload: { before: g.name, name: body.displayName, ...members } });
      return this.groupResource(em, c.orgId, await this.loadGroup(em, c.orgId, id));
    });
  }

  async patchGroup(c: ScimCaller, id: string, body: z.infer<typeof ScimPatchBody>, q: { excludedAttributes?: string } = {}) {
    return this.db.inOrg({ orgId: c.orgId }, async (em) => {
      const g = await this.loadGroup(em, c.orgId, id);
      let added = 0;
      let removed = 0;
      let name: string | undefined;
      let externalId: string | null | undefined;
      const membersOf = (value: unknown): string[] => {
        if (!Array.isArray(value)) throw invalid('members must be an array of {"value": "<user id>"}.');
        return value.slice(0, 5000).map((m) => String((m as { value?: unknown })?.value ?? ''));
      };
      for (const operation of body.Operations) {
        const op = operation.op.toLowerCase();
        if (!['add', 'replace', 'remove'].includes(op)) throw invalid(`Unknown op "${operation.op}".`, 'invalidSyntax');
        const path = operation.path?.trim();
        const lower = path?.toLowerCase();
        const filtered = path ? /^members\[\s*value\s+eq\s+"([^"]{1,100})"\s*\]$/i.exec(path) : null;
        if (!path) {
          const v = (operation.value ?? {}) as Record<string, unknown>;
          if (typeof v !== 'object' || Array.isArray(v)) throw invalid('An operation without a path needs an object value.', 'noTarget');
          if (typeof v.displayName === 'string') name = v.displayName.trim().slice(0, 200);
          if (typeof v.externalId === 'string') externalId = v.externalId.slice(0, 255);
          if (v.members !== undefined) {
            const r = await this.setMembers(em, c.orgId, id, await this.memberUserIds(em, c.orgId, membersOf(v.members)), op === 'replace' ? 'replace' : op === 'add' ? 'add' : 'remove');
            added += r.added;
            removed += r.removed;
          }
        } else if (lower === 'displayname') {
          if (typeof operation.value !== 'string' || !operation.value.trim() || operation.value.length > 200) throw invalid('displayName must be a non-empty string of at most 200 characters.');
          name = operation.value.trim();
        } else if (lower === 'externalid') {
          externalId = op === 'remove' ? null : typeof operation.value === 'string' ? operation.value.slice(0, 255) : null;
        } else if (lower === 'members') {
          const ids = op === 'remove' && operation.value === undefined ? null : await this.memberUserIds(em, c.orgId, membersOf(operation.value));
          const r = ids === null
            ? await this.setMembers(em, c.orgId, id, [], 'replace')
            : await this.setMembers(em, c.orgId, id, ids, op === 'replace' ? 'replace' : op === 'add' ? 'add' : 'remove');
          added += r.added;
          removed += r.removed;
        } else if (filtered && op === 'remove') {
          const r = await this.setMembers(em, c.orgId, id, await this.memberUserIds(em, c.orgId, [filtered[1]!]), 'remove');
          removed += r.removed;
        } else {
          throw invalid(`Unsupported path "${path}".`, 'invalidPath');
        }
      }
      if (name !== undefined || externalId !== undefined) {
        await this.assertGroupUnique(em, c.orgId, name, externalId, id);
        await em.query(`UPDATE groups SET name = coalesce($3, name), scim_external_id = CASE WHEN $5 THEN $4 ELSE scim_external_id END, updated_at = now() WHERE org_id = $1 AND id = $2`, [
          c.orgId,
          id,
          name ?? null,
          externalId ?? null,
          externalId !== undefined,
        ]);
      }
      await this.audit.record(em, this.actor(c), { action: 'scim.group_patch', targetType: 'Group', targetId: id, payload: { before: g.name, name: name ?? g.name, added, removed } });
      return this.groupResource(em, c.orgId, await this.loadGroup(em, c.orgId, id), !excluded(q, 'members'));
    });
  }

  async deleteGroup(c: ScimCaller, id: string): Promise<void> {
    await this.db.inOrg({ orgId: c.orgId }, async (em) => {
      const g = await this.loadGroup(em, c.orgId, id);
      const workflows = await closeWorkflowsOf(em, c.orgId, id);
      await em.delete(Group, { orgId: c.orgId, id });
      await this.audit.record(em, this.actor(c), { action: 'scim.group_delete', targetType: 'Group', targetId: id, payload: { name: g.name, ...(workflows.length ? { workflowsClosed: workflows } : {}) } });
    });
  }

  serviceProviderConfig() {
    return {
      schemas: [SCIM.config],
      documentationUri: 'https://steward.dev/docs/scim',
      patch: { supported: true },
      bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
      filter: { supported: true, maxResults: 200 },
      changePassword: { supported: false },
      sort: { supported: false },
      etag: { supported: false },
      authenticationSchemes: [{ type: 'oauthbearertoken', name: 'OAuth Bearer Token', description: "The org's SCIM token (Authorization: Bearer stp_...)", primary: true }],
      meta: { resourceType: 'ServiceProviderConfig', location: `${this.baseUrl()}/ServiceProviderConfig` },
    };
  }

  // ---------------------------------------------------------------- SCIM tokens (admin API)

  private tokenView(r: { id: string; name: string; hint: string; created_by: string | null; last_used_at: Date | null; revoked_at: Date | null; created_at: Date }) {
    const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
    return { id: r.id, name: r.name, hint: r.hint, createdBy: r.created_by, lastUsedAt: iso(r.last_used_at), revokedAt: iso(r.revoked_at), createdAt: new Date(r.created_at).toISOString() };
  }

  async listTokens(p: Principal) {
    await this.access.authorize(p, 'read', 'ScimToken');
    return this.db.inOrg(p, async (em) => {
      const rows = await em.query(`SELECT id, name, hint, created_by, last_used_at, revoked_at, created_at FROM scim_tokens WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT 1000`, [p.orgId]);
      return { items: rows.map((r: Parameters<ScimService['tokenView']>[0]) => this.tokenView(r)) };
    });
  }

  private async insertToken(em: EntityManager, p: Principal, name: string) {
    const secret = newToken(TokenPrefix.Scim);
    const id = newId();
    const [row] = await em.query(
      `INSERT INTO scim_tokens (org_id, id, name, hint, token_hash, created_by) VALUES ($1, $2, $3, $4, $5, $6)
       RETURNING id, name, hint, created_by, last_used_at, revoked_at, created_at`,
      [p.orgId, id, name, tokenHint(secret), hashToken(this.config.STEWARD_TOKEN_PEPPER, secret), p.userId],
    );
    return { token: this.tokenView(row), secret, baseUrl: this.baseUrl() };
  }

  async createToken(p: Principal, body: z.infer<typeof CreateScimTokenBody>) {
    await this.access.authorize(p, 'create', 'ScimToken');
    return this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      const out = await this.insertToken(em, p, body.name);
      await this.audit.record(em, p, { action: 'scim_token.create', targetType: 'ScimToken', targetId: out.token.id, payload: { name: body.name, hint: out.token.hint } });
      return out;
    });
  }

  private async liveToken(em: EntityManager, p: Principal, id: string) {
    const [row]: { id: string; name: string; revoked_at: Date | null }[] = await em.query(`SELECT id, name, revoked_at FROM scim_tokens WHERE org_id = $1 AND id = $2`, [p.orgId, id]);
    if (!row) throw AppError.notFound('SCIM token');
    if (row.revoked_at) throw AppError.conflict('The SCIM token is already revoked.');
    return row;
  }

  /** A new token replaces the old one, which stops working at once. */
  async rotateToken(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'ScimToken');
    return this.db.inOrg(p, async (em) => {
      const old = await this.liveToken(em, p, id);
      await this.access.authorize(p, 'create', 'ScimToken');
      await this.access.authorize(p, 'revoke', 'ScimToken');
      await this.access.requireStepUp(em, p);
      await em.query(`UPDATE scim_tokens SET revoked_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, id]);
      const out = await this.insertToken(em, p, old.name);
      await this.audit.record(em, p, { action: 'scim_token.rotate', targetType: 'ScimToken', targetId: out.token.id, payload: { replaced: id, name: old.name, hint: out.token.hint } });
      return out;
    });
  }

  async revokeToken(p: Principal, id: string): Promise<void> {
    await this.access.authorize(p, 'read', 'ScimToken');
    await this.db.inOrg(p, async (em) => {
      const row = await this.liveToken(em, p, id);
      await this.access.authorize(p, 'revoke', 'ScimToken');
      await em.query(`UPDATE scim_tokens SET revoked_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, id]);
      await this.audit.record(em, p, { action: 'scim_token.revoke', targetType: 'ScimToken', targetId: id, payload: { name: row.name } });
    });
  }
}
