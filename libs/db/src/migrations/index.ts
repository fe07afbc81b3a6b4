import { Init1763769600000 } from './1763769600000-init';
import { TenancyAndRoles1763769600001 } from './1763769600001-tenancy-and-roles';
import { PoliciesAndWorkflows1763856000000 } from './1763856000000-policies-and-workflows';
import { AuditTrail1763942400000 } from './1763942400000-audit-trail';
import { RetentionAndHolds1764028800000 } from './1764028800000-retention-and-holds';
import { SiemSinks1764115200000 } from './1764115200000-siem-sinks';
import { AuditLookupIndexes1764201600000 } from './1764201600000-audit-lookup-indexes';
import { AuditErasure1764288000000 } from './1764288000000-audit-erasure';
import { ConnectorsAndCredentials1764374400000 } from './1764374400000-connectors-and-credentials';
import { ActionGate1764460800000 } from './1764460800000-action-gate';
import { AgentTasks1764547200000 } from './1764547200000-agent-tasks';
import { ApprovalsReviewsViolations1764633600000 } from './1764633600000-approvals-reviews-violations';
import { OutcomeUnknown1764720000000 } from './1764720000000-outcome-unknown';
import { TaskSchedules1764720000001 } from './1764720000001-task-schedules';
import { MonthlyBudgets1764720000002 } from './1764720000002-monthly-budgets';
import { GateClaimFence1764720000003 } from './1764720000003-gate-claim-fence';
import { UserSecretRotation1764806400000 } from './1764806400000-user-secret-rotation';
import { GateClaimBatch1764806400001 } from './1764806400001-gate-claim-batch';
import { SsoAndScim1764979200000 } from './1764979200000-sso-and-scim';
import { McpAuthorization1764979200001 } from './1764979200001-mcp-authorization';
import { McpRefreshTokens1765065600000 } from './1765065600000-mcp-refresh-tokens';
import { OpsMetrics1765065600001 } from './1765065600001-ops-metrics';
import { OversightReports1765152000000 } from './1765152000000-oversight-reports';
import { IncidentsSanctionsPilot1765238400000 } from './1765238400000-incidents-sanctions-pilot';
import { AuditDerivedColumns1765411200000 } from './1765411200000-audit-derived-columns';
import { ModelRouting1765497600000 } from './1765497600000-model-routing';
import { ApprovalNoticesSlack1765540800000 } from './1765540800000-approval-notices-slack';
import { ReviewFinalize1765584000000 } from './1765584000000-review-finalize';
import { ConnectorRelay1765670400000 } from './1765670400000-connector-relay';
import { GatewayOutcomeUnknown1765756800000 } from './1765756800000-gateway-outcome-unknown';
import { OutcomeSweepCursor1765843200000 } from './1765843200000-outcome-sweep-cursor';
import { AutomaticStrikesLock1765843200001 } from './1765843200001-automatic-strikes-lock';
import { TaskKeysRotation1765843200002 } from './1765843200002-task-keys-rotation';
import { SessionProof1765843200003 } from './1765843200003-session-proof';
import { SlackNoticesConnector1765929600000 } from './1765929600000-slack-notices-connector';
import { SecondFactorAttempts1765929600001 } from './1765929600001-second-factor-attempts';
import { BudgetReservations1765929600002 } from './1765929600002-budget-reservations';
import { TaskAcceptBatch1766016000000 } from './1766016000000-task-accept-batch';
import { WaitingActionsIndex1766016000001 } from './1766016000001-waiting-actions-index';
import { CredentialOwnerBinding1766016000002 } from './1766016000002-credential-owner-binding';
import { GateOutcomeBatch1766016000003 } from './1766016000003-gate-outcome-batch';
import { ModelWaits1766102400000 } from './1766102400000-model-waits';
import { McpClientTaint1766102400001 } from './1766102400001-mcp-client-taint';
import { ApprovalsFrozenWhilePaused1766102400002 } from './1766102400002-approvals-frozen-while-paused';
import { GatewayReviews1766188800000 } from './1766188800000-gateway-reviews';
import { ReviewStepClaims1766188800001 } from './1766188800001-review-step-claims';
import { TaskCostMonths1766188800002 } from './1766188800002-task-cost-months';
import { ReviewDismiss1766275200000 } from './1766275200000-review-dismiss';
import { OrgRunningCap1766275200001 } from './1766275200001-org-running-cap';
import { PasswordAttempts1766275200002 } from './1766275200002-password-attempts';
import { HeldCopiesReleased1766361600000 } from './1766361600000-held-copies-released';
import { WorkflowAccess1766448000000 } from './1766448000000-workflow-access';
import { ScheduleWrittenWithKey1766448000001 } from './1766448000001-schedule-written-with-key';
import { VerifiedDomains1766534400000 } from './1766534400000-verified-domains';
import { StepUpAttempts1766534400001 } from './1766534400001-step-up-attempts';
import { AuditPartitionsUtc1766620800000 } from './1766620800000-audit-partitions-utc';
import { InvitationDomains1766620800001 } from './1766620800001-invitation-domains';
import { LastOwnerStrikes1766707200000 } from './1766707200000-last-owner-strikes';
import { AccountFirstOrg1766707200001 } from './1766707200001-account-first-org';
import { TaskRunErrors1766793600000 } from './1766793600000-task-run-errors';
import { AccountRecoveries1766880000000 } from './1766880000000-account-recoveries';
import { SetupTokens1766880000001 } from './1766880000001-setup-tokens';
import { AuditPartitionsRealign1766880000002 } from './1766880000002-audit-partitions-realign';
import { ReportRetries1766880000003 } from './1766880000003-report-retries';
import { PolicyHistory1766880000004 } from './1766880000004-policy-history';
import { SiemSinkHold1766880000005 } from './1766880000005-siem-sink-hold';
import { ApprovedKeptForWaitingTask1766880000006 } from './1766880000006-approved-kept-for-waiting-task';
import { TaskNotBefore1766880000007 } from './1766880000007-task-not-before';
import { SuspendedBy1766880000008 } from './1766880000008-suspended-by';

/** Every migration, in order. Schema changes are migrations only (synchronize is never on). */
export const MIGRATIONS = [
  Init1763769600000,
  TenancyAndRoles1763769600001,
  PoliciesAndWorkflows1763856000000,
  AuditTrail1763942400000,
  RetentionAndHolds1764028800000,
  SiemSinks1764115200000,
  AuditLookupIndexes1764201600000,
  AuditErasure1764288000000,
  ConnectorsAndCredentials1764374400000,
  ActionGate1764460800000,
  AgentTasks1764547200000,
  ApprovalsReviewsViolations1764633600000,
  OutcomeUnknown1764720000000,
  TaskSchedules1764720000001,
  MonthlyBudgets1764720000002,
  GateClaimFence1764720000003,
  UserSecretRotation1764806400000,
  GateClaimBatch1764806400001,
  SsoAndScim1764979200000,
  McpAuthorization1764979200001,
  McpRefreshTokens1765065600000,
  OpsMetrics1765065600001,
  OversightReports1765152000000,
  IncidentsSanctionsPilot1765238400000,
  AuditDerivedColumns1765411200000,
  ModelRouting1765497600000,
  ApprovalNoticesSlack1765540800000,
  ReviewFinalize1765584000000,
  ConnectorRelay1765670400000,
  GatewayOutcomeUnknown1765756800000,
  OutcomeSweepCursor1765843200000,
  AutomaticStrikesLock1765843200001,
  TaskKeysRotation1765843200002,
  SessionProof1765843200003,
  SlackNoticesConnector1765929600000,
  SecondFactorAttempts1765929600001,
  BudgetReservations1765929600002,
  TaskAcceptBatch1766016000000,
  WaitingActionsIndex1766016000001,
  CredentialOwnerBinding1766016000002,
  GateOutcomeBatch1766016000003,
  ModelWaits1766102400000,
  McpClientTaint1766102400001,
  ApprovalsFrozenWhilePaused1766102400002,
  GatewayReviews1766188800000,
  ReviewStepClaims1766188800001,
  TaskCostMonths1766188800002,
  ReviewDismiss1766275200000,
  OrgRunningCap1766275200001,
  PasswordAttempts1766275200002,
  HeldCopiesReleased1766361600000,
  WorkflowAccess1766448000000,
  ScheduleWrittenWithKey1766448000001,
  VerifiedDomains1766534400000,
  StepUpAttempts1766534400001,
  AuditPartitionsUtc1766620800000,
  InvitationDomains1766620800001,
  LastOwnerStrikes1766707200000,
  AccountFirstOrg1766707200001,
  TaskRunErrors1766793600000,
  AccountRecoveries1766880000000,
  SetupTokens1766880000001,
  AuditPartitionsRealign1766880000002,
  ReportRetries1766880000003,
  PolicyHistory1766880000004,
  SiemSinkHold1766880000005,
  ApprovedKeptForWaitingTask1766880000006,
  TaskNotBefore1766880000007,
  SuspendedBy1766880000008,
];
