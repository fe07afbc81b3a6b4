import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The copies a legal hold kept of a person's sealed audit fields past retention
 * (`audit_held_payloads`) go when the hold is released: the runtime role may delete them (the
 * release does, in its transaction; the retention purge removes any a concurrent purge wrote).
 */
export class HeldCopiesReleased1766361600000 implements MigrationInterface {
  name = 'HeldCopiesReleased1766361600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`GRANT DELETE ON audit_held_payloads TO steward_app`);
    await q.query(`CREATE INDEX audit_held_payloads_hold_idx ON audit_held_payloads (org_id, hold_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS audit_held_payloads_hold_idx`);
    await q.query(`REVOKE DELETE ON audit_held_payloads FROM steward_app`);
  }
}
