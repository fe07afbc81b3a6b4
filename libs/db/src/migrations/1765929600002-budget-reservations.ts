import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Budgets are reserved, not only checked: before each model turn a running task reserves what the
 * turn may cost at most (`reserved_micros`: its input as sent and the whole `max_tokens` of output
 * at the model's prices), under a per-org lock, against the org's and the user's monthly budgets;
 * the turn's real cost replaces the reservation. Tasks running side by side can then no longer
 * each see the same remaining budget and together overspend it.
 */
export class BudgetReservations1765929600002 implements MigrationInterface {
  name = 'BudgetReservations1765929600002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks ADD COLUMN reserved_micros bigint NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0)`);
    await q.query(`GRANT UPDATE (reserved_micros) ON tasks TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`REVOKE UPDATE (reserved_micros) ON tasks FROM steward_app`);
    await q.query(`ALTER TABLE tasks DROP COLUMN reserved_micros`);
  }
}
