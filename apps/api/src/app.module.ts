import { resolveTxt } from 'node:dns/promises';
import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, DiscoveryModule } from '@nestjs/core';
import type { Redis } from 'ioredis';
import { type Config, type EgressResolver, type Logger, systemResolver } from '@steward/common';
import type { DataSource } from '@steward/db';
import { AccessService } from './access/access.service';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { ApiKeysService } from './api-keys/api-keys.service';
import { AuditController } from './audit/audit.controller';
import { AuditEventsService } from './audit/audit-events.service';
import { AuditService } from './audit/audit.service';
import { AuditTrailController } from './audit/trail.controller';
import { AuditTrailService } from './audit/trail.service';
import { AuthController } from './auth/auth.controller';
import { AuthGuard } from './auth/auth.guard';
import { AccountRecoveryService } from './auth/account-recovery.service';
import { AuthService } from './auth/auth.service';
import { Db } from './core/db.service';
import { ApiMetrics } from './core/metrics';
import { OpenApiService } from './core/openapi';
import { ProblemFilter } from './core/problem.filter';
import { ScimController, ScimTokensController } from './scim/scim.controller';
import { ScimService } from './scim/scim.service';
import { McpAuthController } from './mcp-auth/mcp-auth.controller';
import { McpAuthService } from './mcp-auth/mcp-auth.service';
import { McpGrantsController } from './mcp-auth/mcp-grants.controller';
import { McpGrantsService } from './mcp-auth/mcp-grants.service';
import { SsoController } from './sso/sso.controller';
import { SsoService } from './sso/sso.service';
import { Lifecycle } from './core/lifecycle';
import { CONFIG, DATA_SOURCE, EGRESS_RESOLVER, LOGGER, METRICS, REDIS, TXT_RESOLVER, type TxtResolver } from './core/tokens';
import { CatalogConnectorsController, ConnectorsController, CredentialsController, EgressController, OAuthController } from './connectors/connectors.controller';
import { ConnectorChanges } from './connectors/connector-changes';
import { ConnectorsService } from './connectors/connectors.service';
import { CredentialsService } from './connectors/credentials.service';
import { ValidationInterceptor } from './core/validation.interceptor';
import { GatewayService } from './gateway/gateway.service';
import { GroupsController } from './groups/groups.controller';
import { GroupsService } from './groups/groups.service';
import { HealthController } from './health/health.controller';
import { InvitationsController } from './invitations/invitations.controller';
import { InvitationsService } from './invitations/invitations.service';
import { LegalHoldsController } from './legal-holds/legal-holds.controller';
import { LegalHoldsService } from './legal-holds/legal-holds.service';
import { SiemSinksController } from './siem-sinks/siem-sinks.controller';
import { SiemSinksService } from './siem-sinks/siem-sinks.service';
import { MembersController } from './members/members.controller';
import { MembersService } from './members/members.service';
import { OrgsController } from './orgs/orgs.controller';
import { ApprovalsService } from './oversight/approvals.service';
import { ApprovalsController, ReviewsController, ViolationsController } from './oversight/oversight.controller';
import { ReviewsService } from './oversight/reviews.service';
import { ViolationsService } from './oversight/violations.service';
import { OrgsService } from './orgs/orgs.service';
import { OrgDomainsService } from './orgs/org-domains.service';
import { CatalogController, PoliciesController } from './policies/policies.controller';
import { PoliciesService } from './policies/policies.service';
import { RolesController } from './roles/roles.controller';
import { RolesService } from './roles/roles.service';
import { SetupController } from './setup/setup.controller';
import { SetupService } from './setup/setup.service';
import { TasksController } from './tasks/tasks.controller';
import { TasksService } from './tasks/tasks.service';
import { PolicyReplayController, ReportsController } from './reports/reports.controller';
import { ReportsService } from './reports/reports.service';
import { SchedulesController, UsageController } from './schedules/schedules.controller';
import { SchedulesService } from './schedules/schedules.service';
import { WorkflowsController } from './workflows/workflows.controller';
import { WorkflowsService } from './workflows/workflows.service';
import { IncidentSettingsController, IncidentsController } from './incidents/incidents.controller';
import { IncidentsService } from './incidents/incidents.service';
import { MemberStrikesController, SanctionsController, ViolationEvidenceController } from './sanctions/sanctions.controller';
import { SanctionsService } from './sanctions/sanctions.service';
import { TuningController } from './tuning/tuning.controller';
import { TuningService } from './tuning/tuning.service';
import { PilotBaselineController, PilotController, TaskRatingController } from './pilot/pilot.controller';
import { PilotService } from './pilot/pilot.service';

export interface AppDeps {
  config: Config;
  log: Logger;
  dataSource: DataSource;
  redis: Redis;
  metrics: ApiMetrics;
  /** DNS for the egress guard (default: the system resolver). */
  resolver?: EgressResolver;
  /** DNS TXT lookups for domain verification (default: the system resolver). */
  txtResolver?: TxtResolver;
}

@Module({})
export class AppModule {
  static forRoot(deps: AppDeps): DynamicModule {
    return {
      module: AppModule,
      imports: [DiscoveryModule],
      controllers: [
        HealthController,
        SetupController,
        AuthController,
        OrgsController,
        MembersController,
        InvitationsController,
        RolesController,
        GroupsController,
        ApiKeysController,
        AuditController,
        AuditTrailController,
        LegalHoldsController,
        SiemSinksController,
        PoliciesController,
        CatalogController,
        WorkflowsController,
        CatalogConnectorsController,
        EgressController,
        ConnectorsController,
        CredentialsController,
        OAuthController,
        TasksController,
        ApprovalsController,
        ReviewsController,
        ViolationsController,
        SchedulesController,
        UsageController,
        ReportsController,
        PolicyReplayController,
        SsoController,
        ScimController,
        ScimTokensController,
        McpAuthController,
        McpGrantsController,
        IncidentsController,
        IncidentSettingsController,
        SanctionsController,
        MemberStrikesController,
        ViolationEvidenceController,
        TuningController,
        PilotController,
        PilotBaselineController,
        TaskRatingController,
      ],
      providers: [
        { provide: CONFIG, useValue: deps.config },
        { provide: LOGGER, useValue: deps.log },
        { provide: DATA_SOURCE, useValue: deps.dataSource },
        { provide: REDIS, useValue: deps.redis },
        { provide: METRICS, useValue: deps.metrics },
        { provide: EGRESS_RESOLVER, useValue: deps.resolver ?? systemResolver },
        { provide: TXT_RESOLVER, useValue: deps.txtResolver ?? ((name: string) => resolveTxt(name)) },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_INTERCEPTOR, useClass: ValidationInterceptor },
        { provide: APP_FILTER, useClass: ProblemFilter },
        Db,
        Lifecycle,
        ConnectorChanges,
        OpenApiService,
        AuditService,
        AccessService,
        AuthService,
        AccountRecoveryService,
        SetupService,
        OrgsService,
        OrgDomainsService,
        MembersService,
        InvitationsService,
        RolesService,
        GroupsService,
        ApiKeysService,
        AuditEventsService,
        AuditTrailService,
        LegalHoldsService,
        SiemSinksService,
        PoliciesService,
        WorkflowsService,
        ConnectorsService,
        CredentialsService,
        TasksService,
        ApprovalsService,
        ReviewsService,
        ViolationsService,
        SchedulesService,
        ReportsService,
        GatewayService,
        SsoService,
        ScimService,
        McpAuthService,
        McpGrantsService,
        IncidentsService,
        SanctionsService,
        TuningService,
        PilotService,
      ],
      exports: [SetupService, OpenApiService, GatewayService, Lifecycle],
    };
  }
}
