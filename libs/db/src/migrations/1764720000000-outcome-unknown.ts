import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Crash safety: an action whose claim exists but whose outcome is missing after a crash (its
 * worker died between the claim and the outcome) is marked `outcome_unknown` by the worker that
 * takes the task over, and the task waits for a human; it is never run again blindly.
 */
export class OutcomeUnknown1764720000000 implements MigrationInterface {
  name = 'OutcomeUnknown1764720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_state_check`);
    await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_state_check CHECK (state IN ('executing', 'succeeded', 'failed', 'refused', 'awaiting_approval', 'outcome_unknown'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`UPDATE task_actions SET state = 'executing' WHERE state = 'outcome_unknown'`);
    await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_state_check`);
    await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_state_check CHECK (state IN ('executing', 'succeeded', 'failed', 'refused', 'awaiting_approval'))`);
  }
}
