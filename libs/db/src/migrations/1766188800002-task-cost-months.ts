import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Model spend booked to the calendar month (UTC) it was spent in, per task: each model turn adds
 * its cost and tokens to the row of its task and month. Monthly budgets and usage read these.
 * Before, a task's whole cost counted in the month the task was created, so a task running across
 * a month boundary spent in the new month against neither budget. Existing spend is booked to its
 * task's creation month (all that is known of it).
 */
export class TaskCostMonths1766188800002 implements MigrationInterface {
  name = 'TaskCostMonths1766188800002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE task_cost_months (
        org_id uuid NOT NULL,
        task_id uuid NOT NULL,
        month date NOT NULL,
        user_id uuid NOT NULL,
        cost_micros bigint NOT NULL DEFAULT 0,
        input_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        CONSTRAINT task_cost_months_pkey PRIMARY KEY (org_id, month, task_id),
        CONSTRAINT task_cost_months_task_fk FOREIGN KEY (org_id, task_id) REFERENCES tasks (org_id, id) ON DELETE CASCADE,
        CONSTRAINT task_cost_months_first_day CHECK (extract(day FROM month) = 1)
      )`);
    await q.query(`CREATE INDEX task_cost_months_task_idx ON task_cost_months (org_id, task_id)`);
    await q.query(`ALTER TABLE task_cost_months ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE task_cost_months FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON task_cost_months USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT ON task_cost_months TO steward_app`);
    await q.query(`GRANT UPDATE (cost_micros, input_tokens, output_tokens) ON task_cost_months TO steward_app`);
    await q.query(`
      INSERT INTO task_cost_months (org_id, task_id, month, user_id, cost_micros, input_tokens, output_tokens)
      SELECT org_id, id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date, user_id, cost_micros, input_tokens, output_tokens
        FROM tasks WHERE cost_micros > 0 OR input_tokens > 0 OR output_tokens > 0`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE task_cost_months`);
  }
}
