import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Model routing per org and workflow: a tier (quick → Haiku, standard → Sonnet, complex → Opus, the
 * models themselves named by the deployment's config) for the org's tasks, and optionally one per
 * workflow. The worker routes each task: a deployment route for its workflow, else the workflow's
 * tier, else the task's own model preference, else the org's tier.
 */
export class ModelRouting1765497600000 implements MigrationInterface {
  name = 'ModelRouting1765497600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orgs ADD COLUMN model_tier varchar(16) NOT NULL DEFAULT 'standard' CONSTRAINT orgs_model_tier_check CHECK (model_tier IN ('quick', 'standard', 'complex'))`);
    await q.query(`GRANT UPDATE (model_tier) ON orgs TO steward_app`);
    await q.query(`ALTER TABLE workflows ADD COLUMN model_tier varchar(16) NULL CONSTRAINT workflows_model_tier_check CHECK (model_tier IN ('quick', 'standard', 'complex'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE workflows DROP COLUMN model_tier`);
    await q.query(`REVOKE UPDATE (model_tier) ON orgs FROM steward_app`);
    await q.query(`ALTER TABLE orgs DROP COLUMN model_tier`);
  }
}
