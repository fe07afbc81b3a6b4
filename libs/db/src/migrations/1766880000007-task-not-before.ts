import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When a task that waits (its model unavailable, agents paused) is to run again, kept in Postgres
 * with the outbox row that enqueues it: a Redis that lost its delayed job has the sweep enqueue the
 * task again delayed as it was, not at once (each run that came too early used up one of the task's
 * bounded waits for the model).
 */
export class TaskNotBefore1766880000007 implements MigrationInterface {
  name = 'TaskNotBefore1766880000007';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks ADD COLUMN not_before timestamptz`);
    await q.query(`GRANT UPDATE (not_before) ON tasks TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`REVOKE UPDATE (not_before) ON tasks FROM steward_app`);
    await q.query(`ALTER TABLE tasks DROP COLUMN not_before`);
  }
}
