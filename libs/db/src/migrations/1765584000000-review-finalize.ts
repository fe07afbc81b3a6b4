import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A Batched action's finishing step: where the connector has one, the call that makes the
 * reversible form final (a draft becomes the sent message) is recorded with the outcome, beside
 * its undo, and run when a reviewer accepts the action.
 */
export class ReviewFinalize1765584000000 implements MigrationInterface {
  name = 'ReviewFinalize1765584000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE task_actions ADD COLUMN finalize jsonb`);
    await q.query(`GRANT UPDATE (finalize) ON task_actions TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`REVOKE UPDATE (finalize) ON task_actions FROM steward_app`);
    await q.query(`ALTER TABLE task_actions DROP COLUMN finalize`);
  }
}
