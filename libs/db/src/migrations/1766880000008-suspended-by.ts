import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Who suspended a member by hand (null: a sanction, the identity provider, or before this was kept):
 * lifting it takes someone who holds every permission that person held, so that security's
 * suspension of an admin during an incident is not lifted by the admin's peer.
 */
export class SuspendedBy1766880000008 implements MigrationInterface {
  name = 'SuspendedBy1766880000008';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE memberships ADD COLUMN suspended_by uuid`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE memberships DROP COLUMN suspended_by`);
  }
}
