import { ApiKey } from './api-key.entity';
import { Group, GroupMember } from './group.entity';
import { Invitation } from './invitation.entity';
import { LegalHold } from './legal-hold.entity';
import { Membership } from './membership.entity';
import { Org } from './org.entity';
import { PolicyVersion } from './policy-version.entity';
import { RoleAssignment } from './role-assignment.entity';
import { Role } from './role.entity';
import { Session } from './session.entity';
import { SetupState } from './setup-state.entity';
import { User } from './user.entity';
import { Workflow } from './workflow.entity';

export * from './api-key.entity';
export type { ActorType, AuditClient, AuditOutcome } from './audit-event.entity';
export * from './group.entity';
export * from './invitation.entity';
export * from './legal-hold.entity';
export * from './membership.entity';
export * from './org.entity';
export * from './policy-version.entity';
export * from './role-assignment.entity';
export * from './role.entity';
export * from './session.entity';
export * from './setup-state.entity';
export * from './user.entity';
export * from './workflow.entity';

export const ENTITIES = [
  Org,
  User,
  Membership,
  Role,
  RoleAssignment,
  Group,
  GroupMember,
  Invitation,
  ApiKey,
  Session,
  SetupState,
  PolicyVersion,
  Workflow,
  LegalHold,
];

/** Tables that carry org_id: each has forced Row Level Security. */
export const TENANT_TABLES = [
  'memberships',
  'roles',
  'role_assignments',
  'groups',
  'group_members',
  'invitations',
  'api_keys',
  'sessions',
  'audit_events',
  'policies',
  'workflows',
  'audit_chain',
  'audit_heads',
  'audit_checkpoints',
  'audit_keys',
  'legal_holds',
  'audit_erasures',
  'task_actions',
  'audit_held_payloads',
  'audit_siem_sinks',
  'audit_siem_dead_letters',
  'connectors',
  'connector_tools',
  'credentials',
  'oauth_states',
  'egress_allow_hosts',
  'tasks',
  'outbox',
  'task_events',
  'approvals',
  'approval_votes',
  'violations',
  'notifications',
  'task_schedules',
  'sso_configs',
  'sso_identities',
  'scim_tokens',
  'mcp_access_tokens',
  'incident_settings',
  'incident_secrets',
  'incidents',
  'incident_comments',
  'incident_notifications',
  'sanctions',
  'task_ratings',
  'pilot_baselines',
  'mcp_refresh_tokens',
  'mcp_client_taint',
  'task_cost_months',
  'verified_domains',
  'anomaly_reports',
  'report_schedules',
  'account_recoveries',
] as const;
