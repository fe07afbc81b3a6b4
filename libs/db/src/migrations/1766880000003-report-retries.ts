import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A scheduled anomaly report that fails (a statement timeout in a very large org, a zone the
 * database does not know) is retried with backoff, not at every worker tick for ever: `failures`
 * counts the failures in a row, `retry_at` holds the report back until then, `last_error` says why.
 * `next_run_at` (which gives the month reported) does not move until the report is made.
 */
export class ReportRetries1766880000003 implements MigrationInterface {
  name = 'ReportRetries1766880000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE report_schedules ADD COLUMN failures int NOT NULL DEFAULT 0, ADD COLUMN retry_at timestamptz, ADD COLUMN last_error varchar(1000)`);
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_reports_due(p_limit int) RETURNS TABLE (org_id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id FROM report_schedules WHERE enabled AND next_run_at <= now() AND (retry_at IS NULL OR retry_at <= now())
         ORDER BY greatest(next_run_at, coalesce(retry_at, next_run_at)) LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_reports_due(p_limit int) RETURNS TABLE (org_id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id FROM report_schedules WHERE enabled AND next_run_at <= now()
         ORDER BY next_run_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`ALTER TABLE report_schedules DROP COLUMN failures, DROP COLUMN retry_at, DROP COLUMN last_error`);
  }
}
