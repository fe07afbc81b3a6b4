import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A task whose model stays unavailable (429/529 past the worker's retries) goes back to the queue
 * for a later try instead of failing at once; `model_waits` counts those waits, so that a model
 * that never comes back still ends the task (failed, `model_unavailable`) after a bounded time.
 */
export class ModelWaits1766102400000 implements MigrationInterface {
  name = 'ModelWaits1766102400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks ADD COLUMN model_waits integer NOT NULL DEFAULT 0 CHECK (model_waits >= 0)`);
    await q.query(`GRANT UPDATE (model_waits) ON tasks TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks DROP COLUMN model_waits`);
  }
}
