import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Wrong authenticator codes are counted per account (`totp_failures` since `totp_failures_since`),
 * not only per client address: past the limit the account's second factor refuses every code for
 * the rest of the window, so codes guessed from many addresses (a stolen password, a stolen
 * session trying step-up) run out. A right code resets the count.
 */
export class SecondFactorAttempts1765929600001 implements MigrationInterface {
  name = 'SecondFactorAttempts1765929600001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users ADD COLUMN totp_failures integer NOT NULL DEFAULT 0, ADD COLUMN totp_failures_since timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users DROP COLUMN totp_failures, DROP COLUMN totp_failures_since`);
  }
}
