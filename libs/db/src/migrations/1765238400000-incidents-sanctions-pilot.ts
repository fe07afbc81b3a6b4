import type { MigrationInterface, QueryRunner } from 'typeorm';

const FUNCTIONS = [
  'steward_incidents_due(timestamptz, int)',
  'steward_incident_notifications_pending(timestamptz, int)',
  'steward_violations_without_incident(int)',
  'steward_strikes_without_sanction(int)',
];
const TABLES = ['incident_settings', 'incident_secrets', 'incidents', 'incident_comments', 'incident_notifications', 'sanctions', 'task_ratings', 'pilot_baselines'];

/**
 * Oversight (issue 8): incidents with 24-hour acknowledgement and escalation, sanctions, pilot metrics.
 * - `incident_settings`: per org, who owns new incidents, the escalation chain (user ids, in order),
 *   the named executive (the CTO of the seed policy), the acknowledgement window and the step between
 *   escalations, the channels (webhook, e-mail over SMTP, Slack incoming webhook).
 * - `incident_secrets`: the webhook signing secret, the SMTP password and the Slack webhook URL,
 *   each sealed under its own data key (libs/vault envelope); never returned by the API.
 * - `incidents`, `incident_comments`; `incident_notifications` is the outbox of escalation notices the
 *   worker delivers (swept from Postgres with the sweeper's clock, not the database's).
 * - `sanctions`: the ladder step a confirmed violation led to (warning, suspension, disciplinary
 *   review), lifted or given an outcome by an owner.
 * - `task_ratings` (1–5 per task, by the task's user) and `pilot_baselines` (manual minutes per workflow).
 */
export class IncidentsSanctionsPilot1765238400000 implements MigrationInterface {
  name = 'IncidentsSanctionsPilot1765238400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE incident_settings (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        owner_user_id uuid,
        escalation_chain uuid[] NOT NULL DEFAULT '{}',
        executive_user_id uuid,
        executive_title varchar(100) NOT NULL DEFAULT 'CTO',
        ack_minutes integer NOT NULL DEFAULT 720 CHECK (ack_minutes BETWEEN 5 AND 10080),
        step_minutes integer NOT NULL DEFAULT 240 CHECK (step_minutes BETWEEN 5 AND 10080),
        channels text[] NOT NULL DEFAULT '{email}',
        webhook_url varchar(2000),
        smtp_host varchar(253),
        smtp_port integer,
        smtp_secure boolean NOT NULL DEFAULT false,
        smtp_user varchar(200),
        smtp_from varchar(320),
        updated_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT incident_settings_pkey PRIMARY KEY (org_id)
      )`);
    await q.query(`
      CREATE TABLE incident_secrets (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        name varchar(32) NOT NULL CHECK (name IN ('webhook_signing_secret', 'smtp_password', 'slack_webhook_url')),
        sealed bytea NOT NULL,
        wrapped_key text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT incident_secrets_pkey PRIMARY KEY (org_id, name)
      )`);
    await q.query(`
      CREATE TABLE incidents (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        title varchar(200) NOT NULL,
        description varchar(4000) NOT NULL DEFAULT '',
        severity varchar(16) NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
        source varchar(16) NOT NULL CHECK (source IN ('manual', 'violation', 'finding')),
        source_ref varchar(200),
        violation_id uuid,
        task_id uuid,
        subject_user_id uuid,
        action_type varchar(32),
        evidence jsonb NOT NULL DEFAULT '{}',
        state varchar(16) NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved', 'closed')),
        owner_id uuid,
        opened_by uuid,
        ack_due_at timestamptz NOT NULL,
        acknowledged_at timestamptz,
        acknowledged_by uuid,
        resolved_at timestamptz,
        resolution varchar(2000),
        closed_at timestamptz,
        escalation_level integer NOT NULL DEFAULT 0,
        next_escalation_at timestamptz,
        last_escalated_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT incidents_pkey PRIMARY KEY (org_id, id)
      )`);
    await q.query(`CREATE UNIQUE INDEX incidents_source_key ON incidents (org_id, source, source_ref) WHERE source_ref IS NOT NULL`);
    await q.query(`CREATE INDEX incidents_list_idx ON incidents (org_id, state, id)`);
    await q.query(`CREATE INDEX incidents_action_idx ON incidents (org_id, action_type)`);
    await q.query(`CREATE INDEX incidents_due_idx ON incidents (next_escalation_at) WHERE state = 'open'`);
    await q.query(`
      CREATE TABLE incident_comments (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        incident_id uuid NOT NULL,
        author_id uuid,
        body varchar(4000) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT incident_comments_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT incident_comments_incident_fkey FOREIGN KEY (org_id, incident_id) REFERENCES incidents(org_id, id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX incident_comments_incident_idx ON incident_comments (org_id, incident_id, id)`);
    await q.query(`
      CREATE TABLE incident_notifications (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        incident_id uuid NOT NULL,
        level integer NOT NULL,
        channel varchar(16) NOT NULL CHECK (channel IN ('webhook', 'email', 'slack')),
        recipient_user_id uuid,
        payload jsonb NOT NULL DEFAULT '{}',
        state varchar(16) NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        last_error varchar(500),
        next_attempt_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        CONSTRAINT incident_notifications_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT incident_notifications_incident_fkey FOREIGN KEY (org_id, incident_id) REFERENCES incidents(org_id, id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX incident_notifications_incident_idx ON incident_notifications (org_id, incident_id, id)`);
    await q.query(`CREATE INDEX incident_notifications_pending_idx ON incident_notifications (next_attempt_at) WHERE state = 'pending'`);
    await q.query(`
      CREATE TABLE sanctions (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        user_id uuid NOT NULL,
        violation_id uuid NOT NULL,
        kind varchar(24) NOT NULL CHECK (kind IN ('warning', 'suspension', 'disciplinary_review')),
        strikes integer NOT NULL,
        state varchar(16) NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'lifted', 'resolved')),
        outcome varchar(32) CHECK (outcome IN ('no_action', 'retraining', 'final_warning', 'access_revoked', 'dismissal_referred')),
        note varchar(2000),
        decided_by uuid,
        decided_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT sanctions_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT sanctions_violation_key UNIQUE (org_id, violation_id)
      )`);
    await q.query(`CREATE INDEX sanctions_user_idx ON sanctions (org_id, user_id, id)`);
    await q.query(`
      CREATE TABLE task_ratings (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        task_id uuid NOT NULL,
        user_id uuid NOT NULL,
        rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
        comment varchar(1000),
        client varchar(16) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT task_ratings_pkey PRIMARY KEY (org_id, task_id),
        CONSTRAINT task_ratings_task_fkey FOREIGN KEY (org_id, task_id) REFERENCES tasks(org_id, id) ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE pilot_baselines (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        workflow_key varchar(80) NOT NULL,
        manual_minutes integer NOT NULL CHECK (manual_minutes BETWEEN 1 AND 100000),
        updated_by uuid,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pilot_baselines_pkey PRIMARY KEY (org_id, workflow_key)
      )`);
    await q.query(`CREATE INDEX tasks_workflow_idx ON tasks (org_id, workflow) WHERE workflow IS NOT NULL`);

    for (const table of TABLES) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    }
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON incident_settings, incident_secrets, pilot_baselines, task_ratings TO steward_app`);
    await q.query(`GRANT SELECT, INSERT ON incidents, incident_comments, incident_notifications, sanctions TO steward_app`);
    await q.query(`GRANT UPDATE (state, owner_id, acknowledged_at, acknowledged_by, resolved_at, resolution, closed_at, escalation_level, next_escalation_at, last_escalated_at, updated_at) ON incidents TO steward_app`);
    await q.query(`GRANT UPDATE (state, attempts, last_error, next_attempt_at, sent_at) ON incident_notifications TO steward_app`);
    await q.query(`GRANT UPDATE (state, outcome, note, decided_by, decided_at) ON sanctions TO steward_app`);

    // The sweeper finds due escalations, pending notices and violations without an incident before any
    // org is known: ids only, with the sweeper's clock.
    await q.query(`GRANT SELECT ON incidents, incident_notifications, violations, sanctions TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON incidents FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`CREATE POLICY narrow_lookup ON incident_notifications FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`CREATE POLICY narrow_lookup ON violations FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`CREATE POLICY narrow_lookup ON sanctions FOR SELECT TO steward_lookup USING (true)`);
    const [{ since }] = await q.query(`SELECT now()::text AS since`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`
      CREATE FUNCTION steward_incidents_due(p_now timestamptz, p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id, id FROM incidents WHERE state = 'open' AND next_escalation_at <= p_now
         ORDER BY next_escalation_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`
      CREATE FUNCTION steward_incident_notifications_pending(p_now timestamptz, p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id, id FROM incident_notifications WHERE state = 'pending' AND next_attempt_at <= p_now
         ORDER BY next_attempt_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    // Forbidden attempts recorded from now on open an incident each (older ones stay in triage only).
    await q.query(`
      CREATE FUNCTION steward_violations_without_incident(p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT v.org_id, v.id FROM violations v
         WHERE v.created_at >= '${since}'::timestamptz
           AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.org_id = v.org_id AND i.source = 'violation' AND i.source_ref = v.id::text)
         ORDER BY v.created_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    // Violations the gate confirmed itself (the org's automatic strikes) get their ladder step too.
    await q.query(`
      CREATE FUNCTION steward_strikes_without_sanction(p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT v.org_id, v.id FROM violations v
         WHERE v.state = 'confirmed' AND v.automatic AND v.created_at >= '${since}'::timestamptz
           AND NOT EXISTS (SELECT 1 FROM sanctions s WHERE s.org_id = v.org_id AND s.violation_id = v.id)
         ORDER BY v.decided_at, v.id LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    for (const fn of FUNCTIONS) {
      await q.query(`ALTER FUNCTION ${fn} OWNER TO steward_lookup`);
      await q.query(`REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`);
      await q.query(`GRANT EXECUTE ON FUNCTION ${fn} TO steward_app`);
    }
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const fn of FUNCTIONS) await q.query(`DROP FUNCTION IF EXISTS ${fn}`);
    await q.query(`DROP POLICY IF EXISTS narrow_lookup ON violations`);
    await q.query(`REVOKE SELECT ON violations FROM steward_lookup`);
    await q.query(`DROP INDEX IF EXISTS tasks_workflow_idx`);
    for (const table of [...TABLES].reverse()) await q.query(`DROP TABLE ${table}`);
  }
}
