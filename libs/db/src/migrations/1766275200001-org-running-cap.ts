import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Fairness between tenants sharing the workers: an org runs at most so many agent tasks at once.
 * The deployment sets the ceiling (TASKS_MAX_RUNNING_PER_ORG); an org may set a lower limit of its
 * own (`orgs.max_running_tasks`, null: the ceiling). A task that comes to start while its org is at
 * its limit is parked: it holds no worker and no job (`parked`), and the workers' timer releases
 * the org's parked tasks, oldest first, as places free up (`parked_since` is kept until it starts,
 * so a task released and beaten to the place keeps its turn). Tasks waiting for a person
 * (approval, review) hold no place.
 */
export class OrgRunningCap1766275200001 implements MigrationInterface {
  name = 'OrgRunningCap1766275200001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orgs ADD COLUMN max_running_tasks integer CHECK (max_running_tasks BETWEEN 1 AND 1000)`);
    await q.query(`GRANT UPDATE (max_running_tasks) ON orgs TO steward_app`);
    await q.query(`ALTER TABLE tasks ADD COLUMN parked boolean NOT NULL DEFAULT false, ADD COLUMN parked_since timestamptz`);
    await q.query(`GRANT UPDATE (parked, parked_since) ON tasks TO steward_app`);
    // An org's running tasks, counted without reading the others; its parked ones, oldest first.
    await q.query(`CREATE INDEX tasks_running_idx ON tasks (org_id) WHERE state = 'running'`);
    await q.query(`CREATE INDEX tasks_parked_idx ON tasks (org_id, parked_since) WHERE parked`);
    // The orgs with parked tasks (the workers' timer runs outside any org, then releases each org's in it).
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`
      CREATE FUNCTION steward_tasks_parked_orgs(p_limit int) RETURNS TABLE (org_id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT DISTINCT t.org_id FROM tasks t WHERE t.parked LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`ALTER FUNCTION steward_tasks_parked_orgs(int) OWNER TO steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_tasks_parked_orgs(int) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_tasks_parked_orgs(int) TO steward_app`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION steward_tasks_parked_orgs(int)`);
    // Parked tasks get a job again (the relay moves their outbox rows) once the columns are gone: their epoch moves on.
    await q.query(`
      WITH p AS (UPDATE tasks SET epoch = epoch + 1, updated_at = now() WHERE parked RETURNING org_id, id, epoch)
      INSERT INTO outbox (org_id, id, queue, job_name, job_id, payload)
      SELECT org_id, gen_random_uuid(), 'agent-tasks', 'run-task', id || '-' || epoch, jsonb_build_object('orgId', org_id, 'taskId', id, 'epoch', epoch) FROM p`);
    await q.query(`DROP INDEX tasks_parked_idx`);
    await q.query(`DROP INDEX tasks_running_idx`);
    await q.query(`ALTER TABLE tasks DROP COLUMN parked, DROP COLUMN parked_since`);
    await q.query(`ALTER TABLE orgs DROP COLUMN max_running_tasks`);
  }
}
