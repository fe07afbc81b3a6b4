import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Wrong step-up codes are counted per membership (one org's sessions of a person), not on the
 * account. An org's identity provider can open a session as any of its members; counted on the
 * account, ten wrong codes from such a session locked the person's second factor in every org
 * they belong to, their sign-in elsewhere included.
 */
export class StepUpAttempts1766534400001 implements MigrationInterface {
  name = 'StepUpAttempts1766534400001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE memberships ADD COLUMN step_up_failures integer NOT NULL DEFAULT 0, ADD COLUMN step_up_failures_since timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE memberships DROP COLUMN step_up_failures, DROP COLUMN step_up_failures_since`);
  }
}
