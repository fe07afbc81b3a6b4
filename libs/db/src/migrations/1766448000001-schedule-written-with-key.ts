import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The API key that last wrote a schedule's template (null: a person's session). Revoking a key
 * pauses the schedules it wrote: a leaked key's schedules would otherwise go on creating tasks as
 * their owner after the key itself was revoked.
 */
export class ScheduleWrittenWithKey1766448000001 implements MigrationInterface {
  name = 'ScheduleWrittenWithKey1766448000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE task_schedules ADD COLUMN written_with_key uuid`);
    await q.query(`CREATE INDEX task_schedules_written_with_key_idx ON task_schedules (org_id, written_with_key) WHERE written_with_key IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS task_schedules_written_with_key_idx`);
    await q.query(`ALTER TABLE task_schedules DROP COLUMN IF EXISTS written_with_key`);
  }
}
