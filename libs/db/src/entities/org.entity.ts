import { Check, Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** Model tiers: quick (Haiku), standard (Sonnet), complex (Opus); the model ids come from the deployment's config. */
export type ModelTier = 'quick' | 'standard' | 'complex';


@Entity({ name: 'orgs' })
@Check('orgs_model_tier_check', `"model_tier" IN ('quick', 'standard', 'complex')`)
@Check('orgs_max_running_tasks_check', `"max_running_tasks" BETWEEN 1 AND 1000`)
export class Org {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Index('orgs_slug_key', { unique: true })
  @Column({ type: 'varchar', length: 63 })
  slug!: string;

  /** The org's own mail domains (recipients inside them are "internal"). */
  @Column({ type: 'text', array: true, default: () => "'{}'" })
  domains!: string[];

  /** Require a fresh TOTP step-up for sensitive operations. */
  /** Off: members of this org sign in only through SSO (allowed once SSO has worked). */
  @Column({ name: 'password_sign_in', type: 'boolean', default: true })
  passwordSignIn!: boolean;

  /** The model tier of the org's agent tasks (quick, standard, complex; the models are the deployment's). */
  @Column({ name: 'model_tier', type: 'varchar', length: 16, default: 'standard' })
  modelTier!: ModelTier;

  @Column({ name: 'require_step_up', type: 'boolean', default: false })
  requireStepUp!: boolean;

  /** Audit retention in whole months (default six: the seed's 180 days). */
  @Column({ name: 'audit_retention_months', type: 'int', default: 6 })
  auditRetentionMonths!: number;

  /** The kill switch: while set, no agent action executes through any path and credential decrypts are refused. */
  @Column({ name: 'agents_paused_at', type: 'timestamptz', nullable: true })
  agentsPausedAt!: Date | null;

  @Column({ name: 'agents_paused_by', type: 'uuid', nullable: true })
  agentsPausedBy!: string | null;

  /** How long a Watched action's approval request stays open (seconds; default a day). */
  @Column({ name: 'approval_ttl_seconds', type: 'int', default: 86400 })
  approvalTtlSeconds!: number;

  /** The org's own limit on its agent tasks running at once, below the deployment's (TASKS_MAX_RUNNING_PER_ORG); null: the deployment's. */
  @Column({ name: 'max_running_tasks', type: 'int', nullable: true })
  maxRunningTasks!: number | null;

  /** Where approval requests are announced (an HTTPS webhook, sent through the egress guard). */
  @Column({ name: 'notify_webhook_url', type: 'varchar', length: 2000, nullable: true })
  notifyWebhookUrl!: string | null;

  /** Confirm Forbidden attempts as strikes without triage (off by default: injected text could get a victim suspended). */
  @Column({ name: 'automatic_strikes', type: 'boolean', default: false })
  automaticStrikes!: boolean;
  /** Agent spend allowed per calendar month (UTC) for the whole org, micro-dollars; null: no limit. */
  @Column({ name: 'monthly_budget_micros', type: 'bigint', nullable: true })
  monthlyBudgetMicros!: string | null;

  /** Agent spend allowed per calendar month (UTC) for each user, micro-dollars; null: no limit. */
  @Column({ name: 'user_monthly_budget_micros', type: 'bigint', nullable: true })
  userMonthlyBudgetMicros!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
