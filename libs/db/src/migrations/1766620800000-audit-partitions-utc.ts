import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Audit partitions span calendar months in UTC, whatever the session's TimeZone. Their bounds were
 * date literals read in the caller's time zone: on a database whose TimeZone is not UTC a month's
 * partition started hours off the UTC month that retention drops, the purge point marks and the
 * verifier reads. Partitions made before keep their bounds.
 */
export class AuditPartitionsUtc1766620800000 implements MigrationInterface {
  name = 'AuditPartitionsUtc1766620800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION steward_audit_ensure_partitions(date, int) SET TimeZone = 'UTC'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION steward_audit_ensure_partitions(date, int) RESET TimeZone`);
  }
}
