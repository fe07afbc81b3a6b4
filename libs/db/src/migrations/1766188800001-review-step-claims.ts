import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A reviewer's undo or finishing step is claimed before it runs: `accepting` or `reverting`, with
 * the reviewer and the time (reviewed_by, reviewed_at), committed before the call. A step the API
 * did not see end, or that ended in a way that may have acted (review_interrupted), stays so and
 * is settled by a person (done or not done); it is never run again
 * blindly. Before, the step ran inside the transaction that recorded it, and a crash between the
 * call and the commit left the action pending, so that it could be sent twice.
 */
export class ReviewStepClaims1766188800001 implements MigrationInterface {
  name = 'ReviewStepClaims1766188800001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_review_state_check`);
    await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_review_state_check CHECK (review_state IN ('accepting', 'reverting', 'accepted', 'reverted'))`);
    // A step that ended in a way that may have acted (a timeout, HTTP 5xx) is interrupted at once, not only once the grace passed.
    await q.query(`ALTER TABLE task_actions ADD COLUMN review_interrupted boolean NOT NULL DEFAULT false`);
    await q.query(`GRANT UPDATE (review_interrupted) ON task_actions TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE task_actions DROP COLUMN review_interrupted`);
    await q.query(`UPDATE task_actions SET review_state = NULL, reviewed_by = NULL, reviewed_at = NULL WHERE review_state IN ('accepting', 'reverting')`);
    await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_review_state_check`);
    await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_review_state_check CHECK (review_state IN ('accepted', 'reverted'))`);
  }
}
