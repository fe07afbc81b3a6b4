import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Runs of a task that ended in an error (not a lost lease, not a crash): a task whose every run
 * fails the same way (a call the database refuses, a transcript the loop cannot go on from) would
 * otherwise be taken up again for ever, holding one of its org's running places. Past a bound the
 * worker fails it instead.
 */
export class TaskRunErrors1766793600000 implements MigrationInterface {
  name = 'TaskRunErrors1766793600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks ADD COLUMN run_errors integer NOT NULL DEFAULT 0`);
    await q.query(`GRANT UPDATE (run_errors) ON tasks TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks DROP COLUMN IF EXISTS run_errors`);
  }
}
