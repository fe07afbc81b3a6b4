import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What proved the person when a console session was opened: their password (`password`, also for
 * a session switched from such a one) or an org's single sign-on (`sso`). An identity provider
 * speaks for its own org only, so a session it opened cannot move to the person's other orgs.
 * Existing sessions count as password ones (SSO sessions opened before this migration could switch;
 * they expire within SESSION_TTL_HOURS).
 */
export class SessionProof1765843200003 implements MigrationInterface {
  name = 'SessionProof1765843200003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE sessions ADD COLUMN proven_by varchar(16) NOT NULL DEFAULT 'password'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE sessions DROP COLUMN proven_by`);
  }
}
