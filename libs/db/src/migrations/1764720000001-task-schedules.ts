import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Scheduled tasks: a task template with a cron expression and a time zone ("0 17 * * 5" in
 * Asia/Tokyo: Fridays 17:00 Tokyo time). Postgres is the source of truth: the worker sweeps due
 * schedules from here (so nothing is lost when Redis is), and each firing creates the task, its
 * outbox row and the schedule's next run in one transaction. The prompt is sealed like a task's.
 * A schedule is skipped (not caught up) while the org's kill switch is on or its owner is not an
 * active member.
 */
export class TaskSchedules1764720000001 implements MigrationInterface {
  name = 'TaskSchedules1764720000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE task_schedules (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        user_id uuid NOT NULL,
        name varchar(200) NOT NULL,
        cron varchar(100) NOT NULL,
        time_zone varchar(64) NOT NULL,
        prompt_sealed bytea NOT NULL,
        prompt_key text NOT NULL,
        prompt_digest char(64) NOT NULL,
        prompt_bytes integer NOT NULL,
        workflow varchar(100),
        connectors text[] NOT NULL DEFAULT '{}',
        model_preference varchar(100),
        max_steps integer NOT NULL,
        budget_micros bigint,
        paused_at timestamptz,
        next_run_at timestamptz NOT NULL,
        last_run_at timestamptz,
        last_task_id uuid,
        runs integer NOT NULL DEFAULT 0,
        skipped integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT task_schedules_pkey PRIMARY KEY (org_id, id)
      )`);
    await q.query(`CREATE INDEX task_schedules_user_idx ON task_schedules (org_id, user_id, id)`);
    await q.query(`CREATE INDEX task_schedules_due_idx ON task_schedules (next_run_at) WHERE paused_at IS NULL`);
    await q.query(`ALTER TABLE task_schedules ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE task_schedules FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON task_schedules USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON task_schedules TO steward_app`);

    // The worker's sweep finds due schedules before any org is known: ids only.
    await q.query(`GRANT SELECT ON task_schedules TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON task_schedules FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`
      CREATE FUNCTION steward_schedules_due(p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id, id FROM task_schedules WHERE paused_at IS NULL AND next_run_at <= now()
         ORDER BY next_run_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`ALTER FUNCTION steward_schedules_due(int) OWNER TO steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_schedules_due(int) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_schedules_due(int) TO steward_app`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_schedules_due(int)`);
    await q.query(`DROP TABLE task_schedules`);
  }
}
