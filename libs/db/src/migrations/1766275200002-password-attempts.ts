import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Wrong passwords are counted per account (`password_failures` since `password_failures_since`),
 * besides each client address's own limit: past the limit the account takes no password for the
 * rest of the window, so guesses spread over many addresses run out. A right password resets it.
 */
export class PasswordAttempts1766275200002 implements MigrationInterface {
  name = 'PasswordAttempts1766275200002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users ADD COLUMN password_failures integer NOT NULL DEFAULT 0, ADD COLUMN password_failures_since timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users DROP COLUMN password_failures, DROP COLUMN password_failures_since`);
  }
}
