import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rotation of the key-encryption key re-wraps the data keys of agent tasks too (task prompts and
 * transcripts, sealed task events, schedule prompts): the runtime role may now rewrite a task's
 * `prompt_key` and a task event's `sealed_key` — the wrapped key only; the sealed data, and every
 * other column of an event, stay as written.
 */
export class TaskKeysRotation1765843200002 implements MigrationInterface {
  name = 'TaskKeysRotation1765843200002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`GRANT UPDATE (prompt_key) ON tasks TO steward_app`);
    await q.query(`GRANT UPDATE (sealed_key) ON task_events TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`REVOKE UPDATE (sealed_key) ON task_events FROM steward_app`);
    await q.query(`REVOKE UPDATE (prompt_key) ON tasks FROM steward_app`);
  }
}
