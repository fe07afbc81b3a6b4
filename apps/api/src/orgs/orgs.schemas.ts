import { z } from 'zod';
import { Domain, ModelTier, SlugOut, Timestamp, Uuid } from '../core/schemas';

export const OrgView = z.strictObject({
  id: Uuid,
  name: z.string().max(200),
  slug: SlugOut,
  domains: z.array(Domain).max(20),
  requireStepUp: z.boolean(),
  auditRetentionMonths: z.int().min(1).max(120),
  /** The kill switch: while set, no agent action executes, credential decrypts are refused, approvals are frozen. */
  agentsPausedAt: Timestamp.nullable(),
  agentsPausedBy: Uuid.nullable(),
  /** How long an approval request stays open, in seconds. */
  approvalTtlSeconds: z.int().min(60).max(2_592_000),
  /** The org's own limit on its agent tasks running at once (null: the deployment's); more wait, parked, holding no worker. Approvals and reviews hold no place. */
  maxRunningTasks: z.int().min(1).max(1000).nullable(),
  /** The deployment's limit (TASKS_MAX_RUNNING_PER_ORG): the org's own may only be lower. */
  maxRunningTasksCeiling: z.int().min(1).max(1000),
  /**
   * Where approval requests are announced (through the egress guard). The URL is what authenticates
   * the posts at most receivers (Teams, Slack, Zapier hooks): shown only to those who may change the
   * org's settings; null for others, who see `notifyWebhookSet`.
   */
  notifyWebhookUrl: z.string().max(2000).nullable(),
  notifyWebhookSet: z.boolean(),
  /** Forbidden attempts count as strikes without triage (off by default). */
  automaticStrikes: z.boolean(),
  /** Agent spend allowed per calendar month (UTC), US dollars: the whole org, and each user (null: no limit). */
  monthlyBudgetUsd: z.number().min(0).nullable(),
  userMonthlyBudgetUsd: z.number().min(0).nullable(),
  /** Off: members sign in only through the org's SSO. */
  passwordSignIn: z.boolean(),
  /** The model tier of the org's agent tasks: quick (Haiku), standard (Sonnet), complex (Opus). A workflow may set its own. */
  modelTier: ModelTier,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const UpdateOrgBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    domains: z.array(Domain).max(20).optional(),
    requireStepUp: z.boolean().optional(),
    /** Whole months of readable audit content (the seed's 180 days is 6). */
    auditRetentionMonths: z.int().min(1).max(120).optional(),
    approvalTtlSeconds: z.int().min(60).max(2_592_000).optional(),
    /** At most the deployment's limit (maxRunningTasksCeiling); null: the deployment's. */
    maxRunningTasks: z.int().min(1).max(1000).nullable().optional(),
    notifyWebhookUrl: z.url({ protocol: /^https?$/ }).max(2000).nullable().optional(),
    automaticStrikes: z.boolean().optional(),
    /** Monthly agent budgets in US dollars (null removes the limit). */
    monthlyBudgetUsd: z.number().min(0).max(10_000_000).nullable().optional(),
    userMonthlyBudgetUsd: z.number().min(0).max(10_000_000).nullable().optional(),
    /** Switch password sign-in off (only once the org's SSO has completed a sign-in) or back on. */
    passwordSignIn: z.boolean().optional(),
    modelTier: ModelTier.optional(),
  })
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change');

export const PauseAgentsBody = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });

export const OrgDomain = z.strictObject({
  domain: Domain,
  /** Proven by its DNS record: sign-ins by email go to the org's SSO, and SSO and SCIM may add people at it. */
  verified: z.boolean(),
  verifiedAt: Timestamp.nullable(),
  /** The TXT record that proves it: publish `value` at `name`, then verify. */
  record: z.strictObject({ name: z.string().max(300), value: z.string().max(100) }),
});
export const OrgDomainList = z.strictObject({ items: z.array(OrgDomain).max(20) });
export const VerifyDomainBody = z.strictObject({ domain: Domain });
