import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A SIEM sink whose endpoint refuses the sink itself (401, 403, 404: a rotated token, a URL gone)
 * waits with backoff, not at every push round (each second) for ever: `held_failures` counts the
 * refusals in a row, `held_until` holds the sink back until then. A delivery, or an admin's edit of
 * the sink (its URL, token or enabled flag), clears both.
 */
export class SiemSinkHold1766880000005 implements MigrationInterface {
  name = 'SiemSinkHold1766880000005';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_siem_sinks ADD COLUMN held_failures int NOT NULL DEFAULT 0, ADD COLUMN held_until timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_siem_sinks DROP COLUMN held_failures, DROP COLUMN held_until`);
  }
}
