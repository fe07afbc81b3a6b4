import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Fairness between tenants sharing the workers: an org runs at most `max_running_tasks` agent tasks
 * at once (default 20). A task that comes to start while its org is at the cap goes back to the queue
 * for a few seconds; tasks waiting for a person (approval, review) hold no place. The partial index
 * counts an org's running tasks without reading the others.
 */
export class OrgRunningCap1766275200001 implements MigrationInterface {
  name = 'OrgRunningCap1766275200001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orgs ADD COLUMN max_running_tasks integer NOT NULL DEFAULT 20 CHECK (max_running_tasks BETWEEN 1 AND 1000)`);
    await q.query(`GRANT UPDATE (max_running_tasks) ON orgs TO steward_app`);
    await q.query(`CREATE INDEX tasks_running_idx ON tasks (org_id, lease_until) WHERE state = 'running'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX tasks_running_idx`);
    await q.query(`ALTER TABLE orgs DROP COLUMN max_running_tasks`);
  }
}
