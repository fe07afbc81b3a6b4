import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `steward_ops_approvals()`: how many approvals wait for a person across all orgs, and how long
 * the oldest has waited — for the Prometheus gauges of the API and the worker. Counts only: no
 * org, no content leaves it (SECURITY DEFINER under the narrow lookup role, which may read approvals).
 */
export class OpsMetrics1765065600001 implements MigrationInterface {
  name = 'OpsMetrics1765065600001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION steward_ops_approvals() RETURNS TABLE (pending bigint, oldest_seconds double precision)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float, 0) FROM approvals WHERE state = 'pending'
      $$`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`ALTER FUNCTION steward_ops_approvals() OWNER TO steward_lookup`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_ops_approvals() FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_ops_approvals() TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_ops_approvals()`);
  }
}
