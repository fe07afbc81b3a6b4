import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Monthly budgets for agent work, in the org's settings: one for the whole org and one for each
 * user (null: no limit). Spend is the model cost of the tasks created in the calendar month
 * (UTC); the index lets the API and the worker sum a month of an org's or a user's tasks cheaply.
 */
export class MonthlyBudgets1764720000002 implements MigrationInterface {
  name = 'MonthlyBudgets1764720000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orgs ADD COLUMN monthly_budget_micros bigint, ADD COLUMN user_monthly_budget_micros bigint`);
    await q.query(`GRANT UPDATE (monthly_budget_micros, user_monthly_budget_micros) ON orgs TO steward_app`);
    await q.query(`CREATE INDEX tasks_month_cost_idx ON tasks (org_id, created_at) INCLUDE (user_id, cost_micros, input_tokens, output_tokens)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX tasks_month_cost_idx`);
    await q.query(`ALTER TABLE orgs DROP COLUMN monthly_budget_micros, DROP COLUMN user_monthly_budget_micros`);
  }
}
