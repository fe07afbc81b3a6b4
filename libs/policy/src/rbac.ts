import { createMongoAbility, subject as asSubject, type ForcedSubject, type MongoAbility, type RawRuleOf } from '@casl/ability';

/**
 * RBAC over the API's subjects. Actions and subjects are typed, and only the pairs
 * below exist, so a permission check on a pair that does not exist does not compile.
 * This module has no I/O: the console reuses it to explain what a role may do.
 */
export const PERMISSIONS = {
  /** `pause_agents`: the kill switch (pause and resume every agent of the org). */
  Org: ['read', 'update', 'pause_agents'],
  /** `recover`: issue a one-time recovery link for a member who lost their password or authenticator. */
  Member: ['read', 'suspend', 'assign_roles', 'recover'],
  Invitation: ['read', 'create', 'revoke'],
  Role: ['read', 'create', 'update', 'delete'],
  Group: ['read', 'create', 'update', 'delete', 'manage_members'],
  /** API keys, and the grants members gave MCP clients through OAuth: both are bearer credentials of the gateway. */
  ApiKey: ['read', 'create', 'revoke'],
  AuditEvent: ['read', 'read_sensitive', 'verify', 'export', 'checkpoint', 'erase'],
  Policy: ['read', 'create', 'update', 'delete', 'activate'],
  Workflow: ['read', 'create', 'update', 'delete'],
  LegalHold: ['read', 'create', 'release'],
  SiemSink: ['read', 'create', 'update', 'delete'],
  /** Installed connectors, their tools' mapping and approval, the org's egress allowlist. */
  Connector: ['read', 'create', 'update', 'delete', 'review_tools'],
  /** Connector credentials (never readable: "read" is metadata only). Per-user ones are ownable. */
  Credential: ['read', 'set', 'test', 'rotate', 'revoke'],
  /** Agent tasks. Members run and see their own; admins, security and auditors read the org's. */
  Task: ['read', 'create', 'cancel'],
  /** Approval requests of Watched actions (and outcome-unknown actions to settle). Requesters see their own. */
  Approval: ['read', 'decide'],
  /** Review bundles of Batched actions (a task in review): accept or revert. Requesters see their own. */
  Review: ['read', 'decide'],
  /** Forbidden attempts opened for triage: confirm (a strike) or dismiss (injected content). */
  Violation: ['read', 'triage'],
  /** The org's OpenID Connect sign-in (issuer, client, group mapping) and the password sign-in switch. */
  SsoConfig: ['read', 'update'],
  /** Bearer tokens of the org's SCIM provisioning client (Okta, Entra ID). */
  ScimToken: ['read', 'create', 'revoke'],
  /** Incidents: open by hand, acknowledge/assign/resolve/close/comment (`respond`), the org's escalation channels (`configure`). */
  Incident: ['read', 'create', 'respond', 'configure'],
  /** The ladder steps confirmed violations led to: lift a suspension, record a disciplinary review's outcome (`resolve`). */
  Sanction: ['read', 'resolve'],
  /** The monthly anomaly report (IT): generate one for any period, read and download them, set the monthly schedule. */
  AnomalyReport: ['read', 'create', 'schedule'],
} as const;

export type SubjectName = keyof typeof PERMISSIONS;
export type ActionOf<S extends SubjectName> = (typeof PERMISSIONS)[S][number];
export type AnyAction = { [S in SubjectName]: ActionOf<S> }[SubjectName];

/** Records some rules can be limited to: the caller's own (userId matches). */
export type OwnedRecord = { userId: string };
type SubjectType<S extends SubjectName> = S | (ForcedSubject<S> & Partial<OwnedRecord>);

/** The union of every allowed [action, subject] pair. */
export type Permission = { [S in SubjectName]: [ActionOf<S>, SubjectType<S>] }[SubjectName];
export type AppAbility = MongoAbility<Permission>;

export const SUBJECTS = Object.keys(PERMISSIONS) as SubjectName[];

/** A rule as custom roles store it: a pair, optionally limited to the caller's own records. */
export interface PermissionRule {
  action: string;
  subject: string;
  own?: boolean;
}

/** Subjects whose records belong to one user, so "own" rules make sense. */
export const OWNABLE_SUBJECTS: ReadonlySet<SubjectName> = new Set(['ApiKey', 'Credential', 'Task', 'Approval', 'Review']);

export function isKnownPair(action: string, subject: string): boolean {
  const actions = (PERMISSIONS as Record<string, readonly string[]>)[subject];
  return Array.isArray(actions) && actions.includes(action);
}

export const BUILTIN_ROLES = ['owner', 'admin', 'security', 'auditor', 'approver', 'member'] as const;
export type BuiltinRole = (typeof BUILTIN_ROLES)[number];

const all = (s: SubjectName): PermissionRule[] => PERMISSIONS[s].map((action) => ({ action, subject: s }));
const pick = (s: SubjectName, ...actions: string[]): PermissionRule[] => actions.map((action) => ({ action, subject: s }));
const own = (s: SubjectName, ...actions: string[]): PermissionRule[] =>
  actions.map((action) => ({ action, subject: s, own: true }));

/** What each built-in role may do. Deny by default: anything not listed is refused. */
export const BUILTIN_ROLE_RULES: Record<BuiltinRole, PermissionRule[]> = {
  owner: SUBJECTS.flatMap(all),
  admin: [
    ...pick('Org', 'read'),
    ...all('Member'),
    ...all('Invitation'),
    ...pick('Role', 'read'),
    ...all('Group'),
    ...pick('SsoConfig', 'read'),
    ...pick('ScimToken', 'read'),
    ...all('ApiKey'),
    ...pick('AuditEvent', 'read'),
    ...pick('Policy', 'read', 'create', 'update', 'delete'),
    ...all('Workflow'),
    ...pick('SiemSink', 'read'),
    ...all('Connector'),
    ...all('Credential'),
    ...pick('Task', 'read', 'cancel'),
    ...own('Task', 'create'),
    ...pick('Approval', 'read'),
    ...pick('Review', 'read'),
    ...pick('Incident', 'read'),
    ...all('AnomalyReport'),
  ],
  security: [
    ...pick('Org', 'read'),
    ...pick('SsoConfig', 'read'),
    ...pick('ScimToken', 'read'),
    ...pick('Member', 'read', 'suspend'),
    ...pick('Invitation', 'read'),
    ...pick('Role', 'read'),
    ...pick('Group', 'read'),
    ...pick('ApiKey', 'read', 'revoke'),
    ...own('ApiKey', 'create'),
    ...pick('AuditEvent', 'read', 'verify', 'export', 'checkpoint', 'erase'),
    ...pick('LegalHold', 'read', 'create', 'release'),
    ...all('SiemSink'),
    ...pick('Policy', 'read'),
    ...pick('Workflow', 'read'),
    ...pick('Connector', 'read'),
    ...pick('Credential', 'read', 'revoke'),
    // Security may stop any agent task (incident response), but runs none; it pulls the kill switch and triages violations.
    ...pick('Task', 'read', 'cancel'),
    ...pick('Org', 'pause_agents'),
    ...pick('Approval', 'read'),
    ...pick('Review', 'read'),
    ...all('Violation'),
    ...pick('Incident', 'read', 'create', 'respond'),
    ...pick('Sanction', 'read'),
    ...pick('AnomalyReport', 'read', 'create'),
  ],
  auditor: [
    ...pick('Org', 'read'),
    ...pick('Member', 'read'),
    ...pick('Invitation', 'read'),
    ...pick('Role', 'read'),
    ...pick('Group', 'read'),
    ...pick('ApiKey', 'read'),
    ...own('ApiKey', 'create', 'revoke'),
    ...pick('AuditEvent', 'read', 'read_sensitive', 'verify', 'export'),
    ...pick('LegalHold', 'read'),
    ...pick('Policy', 'read'),
    ...pick('Workflow', 'read'),
    ...pick('Connector', 'read'),
    ...pick('Credential', 'read'),
    ...pick('Task', 'read'),
    ...pick('Approval', 'read'),
    ...pick('Review', 'read'),
    ...pick('Violation', 'read'),
    ...pick('Incident', 'read'),
    ...pick('Sanction', 'read'),
    ...pick('AnomalyReport', 'read'),
  ],
  approver: [
    ...pick('Org', 'read'),
    ...pick('Member', 'read'),
    ...pick('Group', 'read'),
    ...own('ApiKey', 'read', 'create', 'revoke'),
    ...pick('Policy', 'read'),
    ...pick('Workflow', 'read'),
    ...pick('Connector', 'read'),
    ...own('Credential', 'read', 'set', 'test', 'rotate', 'revoke'),
    ...own('Task', 'read', 'create', 'cancel'),
    // Approvers decide Watched actions (never their own: the service refuses self-approval) and review Batched bundles.
    ...all('Approval'),
    ...all('Review'),
  ],
  member: [
    ...pick('Org', 'read'),
    ...own('ApiKey', 'read', 'create', 'revoke'),
    ...pick('Policy', 'read'),
    ...pick('Workflow', 'read'),
    ...pick('Connector', 'read'),
    // Their own per-user credentials (OAuth connect, a personal API key): set, test, rotate, revoke.
    ...own('Credential', 'read', 'set', 'test', 'rotate', 'revoke'),
    ...own('Task', 'read', 'create', 'cancel'),
    ...own('Approval', 'read'),
    ...own('Review', 'read'),
  ],
};

export function isBuiltinRole(role: string): role is BuiltinRole {
  return (BUILTIN_ROLES as readonly string[]).includes(role);
}

/**
 * The role names and rules a member's role assignments add up to: a built-in role by its name, a
 * custom one (`custom:<key>`) by its stored permissions; an assignment whose custom role is gone
 * adds nothing. The one place the API's access checks and the worker's schedules compute them.
 */
export function rulesOfAssignments(assignments: { role: string; custom: { key: string; permissions: PermissionRule[] } | null }[]): { roles: string[]; rules: PermissionRule[] } {
  const roles: string[] = [];
  const rules: PermissionRule[] = [];
  for (const a of assignments) {
    if (isBuiltinRole(a.role)) {
      roles.push(a.role);
      rules.push(...BUILTIN_ROLE_RULES[a.role]);
    } else if (a.custom) {
      roles.push(`custom:${a.custom.key}`);
      rules.push(...a.custom.permissions);
    }
  }
  return { roles, rules };
}

/**
 * Builds the CASL ability of one principal from the rules of its roles, intersected
 * with an API key's scopes when the principal is a key ("read:Org", or "*").
 */
export function buildAbility(rules: PermissionRule[], userId: string, scopes?: readonly string[]): AppAbility {
  const raw: RawRuleOf<AppAbility>[] = [];
  for (const rule of scopedRules(rules, scopes)) {
    if (!isKnownPair(rule.action, rule.subject)) continue;
    raw.push({
      action: rule.action,
      subject: rule.subject,
      ...(rule.own ? { conditions: { userId } } : {}),
    } as RawRuleOf<AppAbility>);
  }
  return createMongoAbility<AppAbility>(raw);
}

/** A loaded record typed as a CASL subject, for a check on the instance. */
export function subjectOf<S extends SubjectName>(type: S, record: Partial<OwnedRecord>): ForcedSubject<S> & Partial<OwnedRecord> {
  return asSubject(type, { ...record }) as ForcedSubject<S> & Partial<OwnedRecord>;
}

/**
 * True when `granter` holds every rule of `rules` (an unconditional rule needs an
 * unconditional grant; an "own" rule is covered by either). Used so nobody can hand
 * out (to themselves or others) a permission they do not hold.
 */
/** A principal's rules as far as an API key's scopes reach ("read:Org", or "*": all of them). */
export function scopedRules(rules: PermissionRule[], scopes?: readonly string[]): PermissionRule[] {
  if (!scopes || scopes.includes('*')) return rules;
  return rules.filter((rule) => scopes.includes(`${rule.action}:${rule.subject}`));
}

export function canGrant(granter: PermissionRule[], rules: PermissionRule[]): boolean {
  return rules.every((wanted) =>
    granter.some((held) => held.action === wanted.action && held.subject === wanted.subject && (!held.own || wanted.own)),
  );
}

/** All scope strings an API key may carry. */
export const ALL_SCOPES: string[] = SUBJECTS.flatMap((s) => PERMISSIONS[s].map((a) => `${a}:${s}`));
