import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Oversight (libs/oversight):
 * - audit_events.subject_id: the person an event is about, derived from the canonical JSON like the
 *   other searchable columns — the user an agent action was for (`payload.facts.user`, which the gate
 *   records with the decision's inputs), else the sealed part's subject. The anomaly report groups
 *   millions of actions by it without parsing each event's JSON.
 * - anomaly_reports: each generated report (period, trigger, counts, the report itself as JSON).
 * - report_schedules: an org's monthly report (first day of the month, the org's time zone); the
 *   worker sweeps due rows from here through a narrow function, before any org is known.
 */
export class OversightReports1765152000000 implements MigrationInterface {
  name = 'OversightReports1765152000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events ADD COLUMN subject_id uuid GENERATED ALWAYS AS
      ((coalesce((canonical::jsonb)->'payload'->'facts'->>'user', (canonical::jsonb)->'sealed'->>'subject'))::uuid) STORED`);
    await q.query(`CREATE INDEX audit_events_org_subject_idx ON audit_events (org_id, subject_id, occurred_at)`);
    // The report's scans of months of agent actions read this index alone (index-only: no event's JSON is touched).
    await q.query(`CREATE INDEX audit_events_oversight_idx ON audit_events (org_id, occurred_at) INCLUDE (subject_id, action, outcome, connector, level)
                   WHERE decision IS NOT NULL AND actor_type = 'agent_task'`);

    await q.query(`
      CREATE TABLE anomaly_reports (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        period_from timestamptz NOT NULL,
        period_to timestamptz NOT NULL,
        time_zone varchar(64) NOT NULL,
        trigger varchar(16) NOT NULL CHECK (trigger IN ('schedule', 'manual')),
        requested_by uuid,
        findings integer NOT NULL,
        high integer NOT NULL,
        events_scanned bigint NOT NULL,
        duration_ms integer NOT NULL,
        report jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT anomaly_reports_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT anomaly_reports_period_check CHECK (period_to > period_from)
      )`);
    await q.query(`CREATE INDEX anomaly_reports_list_idx ON anomaly_reports (org_id, id)`);
    await q.query(`
      CREATE TABLE report_schedules (
        org_id uuid PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
        time_zone varchar(64) NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        next_run_at timestamptz NOT NULL,
        last_run_at timestamptz,
        last_report_id uuid,
        updated_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX report_schedules_due_idx ON report_schedules (next_run_at) WHERE enabled`);
    for (const table of ['anomaly_reports', 'report_schedules']) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    }
    // Reports are kept as generated: no UPDATE or DELETE for the runtime role.
    await q.query(`GRANT SELECT, INSERT ON anomaly_reports TO steward_app`);
    await q.query(`GRANT SELECT, INSERT, UPDATE ON report_schedules TO steward_app`);

    await q.query(`GRANT SELECT ON report_schedules TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON report_schedules FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`
      CREATE FUNCTION steward_reports_due(p_limit int) RETURNS TABLE (org_id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id FROM report_schedules WHERE enabled AND next_run_at <= now()
         ORDER BY next_run_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`ALTER FUNCTION steward_reports_due(int) OWNER TO steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_reports_due(int) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_reports_due(int) TO steward_app`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_reports_due(int)`);
    await q.query(`DROP TABLE report_schedules`);
    await q.query(`DROP TABLE anomaly_reports`);
    // Undoing the later audit-derived-columns migration drops the columns this index covers, and the index with them.
    await q.query(`DROP INDEX IF EXISTS audit_events_oversight_idx`);
    await q.query(`DROP INDEX audit_events_org_subject_idx`);
    await q.query(`ALTER TABLE audit_events DROP COLUMN subject_id`);
  }
}
