import { isIP } from 'node:net';
import type { CanonicalEvent } from './event';
import type { ExportLine } from './export';

/**
 * OCSF 1.8.0 export. Agent actions and Steward's own admin operations become API Activity
 * (6003); identity changes become the fitting IAM class. Steward specifics go to `unmapped`;
 * a sealed part is never carried, only the fact that there is one.
 */
export const OCSF_VERSION = '1.8.0';

export const AGENT_ACTION_FAMILIES = ['file', 'email', 'drive', 'chat', 'calendar', 'web', 'saas', 'git', 'payment', 'hr', 'contract', 'data', 'model', 'unknown'] as const;

export function isAgentAction(action: string): boolean {
  const dot = action.indexOf('.');
  return dot > 0 && (AGENT_ACTION_FAMILIES as readonly string[]).includes(action.slice(0, dot));
}

type Obj = Record<string, unknown>;
interface Mapping {
  class_uid: number;
  class_name: string;
  category_uid: number;
  category_name: string;
  activity_id: number;
  activity_name: string;
}

const IAM = { category_uid: 3, category_name: 'Identity & Access Management' };
const APP = { category_uid: 6, category_name: 'Application Activity' };

const API_ACTIVITIES: [RegExp, number, string][] = [
  [/^(create|add|invite|upload|send|post|write|insert|new|execute|pay|schedule|enroll|provision|commit|push|sign)/, 1, 'Create'],
  [/^(read|get|list|search|view|query|export|download|fetch|browse|verify|payload_view|inspect|preview)/, 2, 'Read'],
  [/^(update|edit|set|activate|deactivate|rename|move|patch|modify|release|merge|approve|share|assign|checkpoint|change)/, 3, 'Update'],
  [/^(delete|remove|revoke|purge|cancel|drop|partition_drop|archive|destroy|unshare)/, 4, 'Delete'],
];

function apiActivity(verb: string): [number, string] {
  for (const [re, id, name] of API_ACTIVITIES) if (re.test(verb)) return [id, name];
  return [99, 'Other'];
}

function activityOf(verb: string): { activity_id: number; activity_name: string } {
  const [activity_id, activity_name] = apiActivity(verb);
  return { activity_id, activity_name };
}

function pick(table: [RegExp, number, string][], verb: string): [number, string] {
  for (const [re, id, name] of table) if (re.test(verb)) return [id, name];
  return [99, 'Other'];
}

const classCache = new Map<string, Mapping>();

/** The OCSF class and activity for a Steward action (memoised: a trail has few distinct actions). */
export function ocsfClassOf(action: string): Mapping {
  let m = classCache.get(action);
  if (!m) {
    m = classify(action);
    if (classCache.size < 10_000) classCache.set(action, m);
  }
  return m;
}

function classify(action: string): Mapping {
  const dot = action.indexOf('.');
  const family = dot > 0 ? action.slice(0, dot) : '';
  const verb = dot > 0 ? action.slice(dot + 1) : action;
  const iam = (class_uid: number, class_name: string, [activity_id, activity_name]: [number, string]): Mapping => ({ class_uid, class_name, ...IAM, activity_id, activity_name });
  const accountChange = (v: string) =>
    iam(3001, 'Account Change', pick([
      [/^password_reset/, 4, 'Password Reset'],
      [/^password/, 3, 'Password Change'],
      [/^totp_(enable|enroll)/, 10, 'MFA Factor Enable'],
      [/^totp_(disable|remove|reset)/, 11, 'MFA Factor Disable'],
      [/^(create|invite|add)/, 1, 'Create'],
      [/^(enable|reactivate|accept|unsuspend|restore)/, 2, 'Enable'],
      [/^(suspend|disable|deactivate)/, 5, 'Disable'],
      [/^(delete|remove|revoke|cancel)/, 6, 'Delete'],
      [/^lock/, 9, 'Lock'],
      [/^unlock/, 12, 'Unlock'],
    ], v));
  switch (family) {
    case 'auth':
      if (/^login|^logon/.test(verb)) return iam(3002, 'Authentication', [1, 'Logon']);
      if (/^logout|^logoff/.test(verb)) return iam(3002, 'Authentication', [2, 'Logoff']);
      if (/^(password|totp)/.test(verb)) return accountChange(verb);
      return iam(3002, 'Authentication', [99, verb === 'step_up' ? 'Step-up' : 'Other']);
    case 'member':
      if (/role/.test(verb)) return iam(3005, 'User Access Management', pick([[/^(unassign|revoke|remove)/, 2, 'Revoke Privileges'], [/./, 1, 'Assign Privileges']], verb));
      return accountChange(verb);
    case 'role':
      if (/^(assign|grant)/.test(verb)) return iam(3005, 'User Access Management', [1, 'Assign Privileges']);
      if (/^(unassign|revoke)/.test(verb)) return iam(3005, 'User Access Management', [2, 'Revoke Privileges']);
      return accountChange(verb); // a role is created/deleted like an account ("A user/role was created")
    case 'invitation':
    case 'api_key':
      return accountChange(verb);
    case 'mcp':
      // A session of the MCP gateway is opened and ended with the member's API key or access token: a logon and a logoff.
      if (verb === 'session_open') return iam(3002, 'Authentication', [1, 'Logon']);
      if (verb === 'session_close') return iam(3002, 'Authentication', [2, 'Logoff']);
      // Reads of what an upstream offers (resource.read, prompt.get) by their last word.
      return { class_uid: 6003, class_name: 'API Activity', ...APP, ...activityOf(verb.slice(verb.lastIndexOf('.') + 1)) };
    case 'group':
      return iam(3006, 'Group Management', pick([
        [/^(add_member|add_user)/, 3, 'Add User'],
        [/^(remove_member|remove_user)/, 4, 'Remove User'],
        [/^(assign|grant)/, 1, 'Assign Privileges'],
        [/^(revoke|unassign)/, 2, 'Revoke Privileges'],
        [/^delete/, 5, 'Delete'],
        [/^create/, 6, 'Create'],
      ], verb));
    default:
      return { class_uid: 6003, class_name: 'API Activity', ...APP, ...activityOf(verb) };
  }
}

const DENY = /deny|denied|block|forbid|reject/;
const APPROVE = /approv/;

/** security_control profile: action (allowed/denied) and disposition. */
export function ocsfControl(e: Pick<CanonicalEvent, 'level' | 'decision' | 'outcome' | 'approval'>): { action_id: number; action: string; disposition_id: number; disposition: string } {
  const denied = e.outcome === 'denied' || e.level === 'forbidden' || DENY.test(e.decision ?? '');
  if (denied) return { action_id: 2, action: 'Denied', disposition_id: 2, disposition: 'Blocked' };
  if (e.approval || APPROVE.test(e.decision ?? '')) return { action_id: 1, action: 'Allowed', disposition_id: 8, disposition: 'Approved' };
  if (e.outcome === 'failure') return { action_id: 1, action: 'Allowed', disposition_id: 27, disposition: 'Error' };
  return { action_id: 1, action: 'Allowed', disposition_id: 1, disposition: 'Allowed' };
}

const PRODUCT = Object.freeze({ name: 'Steward', vendor_name: 'Steward' });

const SEVERITY: Record<string, [number, string]> = { success: [1, 'Informational'], failure: [2, 'Low'], denied: [3, 'Medium'] };
const USER_TYPE: Record<string, [number, string]> = { user: [1, 'User'], api_key: [4, 'Service'], agent_task: [4, 'Service'], system: [3, 'System'] };

/** A copy without the undefined members (a fresh object: deleting keys would make V8 slow to read and serialise it). */
function compact<T extends Obj>(o: T): T {
  const r: Obj = {};
  for (const k in o) if (o[k] !== undefined) r[k] = o[k];
  return r as T;
}

function actorUser(e: CanonicalEvent): Obj | undefined {
  if (!e.actor.id) return undefined;
  const [type_id, type] = USER_TYPE[e.actor.type] ?? [99, e.actor.type];
  return { uid: e.actor.id, type_id, type };
}

function payloadName(e: CanonicalEvent): string | undefined {
  const n = e.payload?.name;
  return typeof n === 'string' && n ? n : undefined;
}

export function toOcsf(line: ExportLine): Obj {
  const e = JSON.parse(line.canonical) as CanonicalEvent;
  const m = ocsfClassOf(e.action);
  const [severity_id, severity] = SEVERITY[e.outcome] ?? [0, 'Unknown'];
  const agent = isAgentAction(e.action);
  const ip = e.ip && isIP(e.ip) ? e.ip : undefined;
  const user = actorUser(e);
  const actor: Obj = user ? { user } : { app_name: 'Steward' };
  if (e.actor.type === 'agent_task') actor.app_name = 'Steward agent';
  const target = e.target;

  const out: Obj = {
    class_uid: m.class_uid,
    class_name: m.class_name,
    category_uid: m.category_uid,
    category_name: m.category_name,
    activity_id: m.activity_id,
    activity_name: m.activity_name,
    type_uid: m.class_uid * 100 + m.activity_id,
    type_name: `${m.class_name}: ${m.activity_id === 99 ? 'Other' : m.activity_name}`,
    time: Date.parse(e.at),
    severity_id,
    severity,
    status_id: e.outcome === 'success' ? 1 : 2,
    status: e.outcome === 'success' ? 'Success' : 'Failure',
  };
  if (e.outcome !== 'success') out.status_detail = e.outcome;
  out.message = e.action;
  const metadata: Obj = { version: OCSF_VERSION, product: PRODUCT, uid: e.id };
  if (e.req) metadata.correlation_uid = e.req;
  metadata.tenant_uid = e.org;
  metadata.log_name = 'audit';
  metadata.sequence = line.seq;
  if (agent) metadata.profiles = ['security_control'];
  out.metadata = metadata;
  out.actor = actor;
  out.src_endpoint = ip ? { ip } : { name: e.client };

  if (m.class_uid === 6003) {
    out.api = compact({ operation: e.action, service: { name: 'Steward' }, request: e.req ? { uid: e.req } : undefined });
    if (target) out.resources = [compact({ type: target.type, uid: target.id ?? undefined, name: target.id ? undefined : target.type })];
  } else {
    const subject: Obj = target?.id ? { uid: target.id, type: target.type } : (user ?? { name: 'unknown' });
    if (m.class_uid === 3002) {
      out.user = user ?? subject;
      out.service = { name: 'Steward' };
      if (e.action === 'auth.step_up') out.is_mfa = true;
    } else if (m.class_uid === 3006) {
      out.group = compact({ uid: target?.id ?? undefined, name: payloadName(e) ?? (target?.id ? undefined : 'unknown') });
      if (e.payload && typeof e.payload.userId === 'string') out.user = { uid: e.payload.userId };
    } else if (m.class_uid === 3005) {
      out.user = subject;
      const roles = e.payload?.roles;
      out.privileges = Array.isArray(roles) ? roles.map(String) : [payloadName(e) ?? e.action];
    } else {
      out.user = subject;
    }
  }

  if (agent) {
    Object.assign(out, ocsfControl(e));
    if (typeof e.policy === 'number') out.policy = { name: 'Steward policy', uid: e.org, version: String(e.policy) };
  }

  out.unmapped = compact({
    org: e.org,
    seq: line.seq,
    hash: line.hash,
    actor_type: e.actor.type,
    client: e.client,
    outcome: e.outcome,
    level: e.level,
    decision: e.decision,
    policy_version: e.policy,
    task: e.task,
    approval: e.approval,
    connector: e.connector,
    ip: e.ip && !ip ? e.ip : undefined,
    target: target ? { type: target.type, id: target.id } : undefined,
    payload: e.payload,
    sealed: e.sealed ? true : undefined,
  });
  return out;
}
