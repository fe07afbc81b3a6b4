import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The person an event's sealed fields are about (`sealed.subject`: the user an agent acted for)
 * as a generated column with an index, so that legal holds and retention find a person's events
 * through an index. A column rather than an expression index: under row-level security
 * PostgreSQL will not use a condition on a JSON expression as an index condition (the JSON
 * operators are not leakproof), while a plain text equality it will. Text, not uuid: a
 * subject that is not a uuid must never make an append fail.
 * Adding a stored column rewrites the existing month partitions once.
 */
export class AuditSubjectIndex1765411200000 implements MigrationInterface {
  name = 'AuditSubjectIndex1765411200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events ADD COLUMN sealed_subject text GENERATED ALWAYS AS (((canonical::jsonb)->'sealed'->>'subject')) STORED`);
    await q.query(`CREATE INDEX audit_events_subject_idx ON audit_events (sealed_subject, org_id, occurred_at) WHERE sealed_subject IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_subject_idx`);
    await q.query(`ALTER TABLE audit_events DROP COLUMN sealed_subject`);
  }
}
