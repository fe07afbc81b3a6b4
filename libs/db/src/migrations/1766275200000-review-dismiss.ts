import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A reviewer may close a Batched action without running anything: `dismissed`, with a reason. It is
 * what is left when neither step can run (the connector was removed, the draft was deleted by hand
 * upstream) and otherwise the action, and its task, waited in review for ever.
 */
export class ReviewDismiss1766275200000 implements MigrationInterface {
  name = 'ReviewDismiss1766275200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_review_state_check`);
    await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_review_state_check CHECK (review_state IN ('accepting', 'reverting', 'accepted', 'reverted', 'dismissed'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    // Dismissed actions are pending again, and their tasks back in review (else nothing could decide them).
    await q.query(`UPDATE tasks t SET state = 'in_review' WHERE t.state = 'completed' AND EXISTS (SELECT 1 FROM task_actions a WHERE a.org_id = t.org_id AND a.task_id = t.id AND a.review_state = 'dismissed')`);
    await q.query(`UPDATE task_actions SET review_state = NULL, reviewed_by = NULL, reviewed_at = NULL WHERE review_state = 'dismissed'`);
    await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_review_state_check`);
    await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_review_state_check CHECK (review_state IN ('accepting', 'reverting', 'accepted', 'reverted'))`);
  }
}
