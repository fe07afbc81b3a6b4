import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The tamper-evident audit trail (libs/audit owns the SQL that uses it):
 * - audit_events: append-only, partitioned by month; each row stores the event's
 *   canonical JSON (what the chain hashes) and the transaction id that wrote it, and
 *   derives its searchable columns from that JSON (generated, so they cannot disagree);
 * - audit_chain: (org, seq) → event and hash = sha256(prev_hash || canonical), append-only;
 * - audit_heads: each org's chain head and the sequencer lease with its fencing token;
 * - audit_checkpoints: signed (seq, hash, time) pushed off the box;
 * - audit_keys: per org and month data keys (wrapped), destroyed when retention passes.
 * Events written before this migration are carried over with their fields as canonical JSON.
 */

const TABLES = ['audit_chain', 'audit_heads', 'audit_checkpoints', 'audit_keys'];

const field = (path: string) => `((canonical::jsonb)${path})`;

export class AuditTrail1763942400000 implements MigrationInterface {
  name = 'AuditTrail1763942400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events RENAME TO audit_events_v1`);
    await q.query(`ALTER TABLE audit_events_v1 RENAME CONSTRAINT "PK_910f64d901a5c3e9878f0d4a407" TO audit_events_v1_pkey`);
    await q.query(`ALTER INDEX audit_events_org_occurred_idx RENAME TO audit_events_v1_org_occurred_idx`);
    await q.query(`
      CREATE TABLE audit_events (
        id uuid NOT NULL,
        org_id uuid NOT NULL,
        occurred_at timestamptz NOT NULL,
        txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
        canonical text NOT NULL,
        actor_type text GENERATED ALWAYS AS (${field("->'actor'->>'type'")}) STORED,
        actor_id uuid GENERATED ALWAYS AS ((${field("->'actor'->>'id'")})::uuid) STORED,
        action text GENERATED ALWAYS AS (${field("->>'action'")}) STORED,
        target_type text GENERATED ALWAYS AS (${field("->'target'->>'type'")}) STORED,
        target_id uuid GENERATED ALWAYS AS ((${field("->'target'->>'id'")})::uuid) STORED,
        outcome text GENERATED ALWAYS AS (${field("->>'outcome'")}) STORED,
        level text GENERATED ALWAYS AS (${field("->>'level'")}) STORED,
        decision text GENERATED ALWAYS AS (${field("->>'decision'")}) STORED,
        connector text GENERATED ALWAYS AS (${field("->>'connector'")}) STORED,
        task_id uuid GENERATED ALWAYS AS ((${field("->>'task'")})::uuid) STORED,
        approval_id uuid GENERATED ALWAYS AS ((${field("->>'approval'")})::uuid) STORED,
        key_month text GENERATED ALWAYS AS (${field("->'sealed'->>'month'")}) STORED,
        CONSTRAINT audit_events_pkey PRIMARY KEY (org_id, occurred_at, id)
      ) PARTITION BY RANGE (occurred_at)`);
    // No DEFAULT partition: it would forbid detaching months concurrently. The worker keeps
    // months created ahead; an event for a month without a partition fails (fail closed).
    await q.query(`
      CREATE FUNCTION steward_audit_ensure_partitions(p_from date, p_months int) RETURNS int
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
      DECLARE
        m date := date_trunc('month', p_from)::date;
        made int := 0;
        name text;
      BEGIN
        FOR i IN 0..p_months - 1 LOOP
          name := format('audit_events_%s', to_char(m, 'YYYY_MM'));
          IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', name, m, (m + interval '1 month')::date);
            made := made + 1;
          END IF;
          m := (m + interval '1 month')::date;
        END LOOP;
        RETURN made;
      END $$`);
    await q.query(`SELECT steward_audit_ensure_partitions((now() - interval '7 months')::date, 11)`);
    await q.query(`CREATE INDEX audit_events_org_txid_idx ON audit_events (org_id, txid, id)`);
    await q.query(`CREATE INDEX audit_events_id_idx ON audit_events (id)`);
    await q.query(`CREATE INDEX audit_events_org_action_idx ON audit_events (org_id, action, occurred_at)`);
    await q.query(`CREATE INDEX audit_events_org_actor_idx ON audit_events (org_id, actor_id, occurred_at)`);
    await q.query(`CREATE INDEX audit_events_blind_idx ON audit_events USING gin (((canonical::jsonb)->'blind'))`);

    await q.query(`
      INSERT INTO audit_events (id, org_id, occurred_at, canonical)
      SELECT id, org_id, occurred_at, jsonb_strip_nulls(jsonb_build_object(
        'v', 1, 'id', id, 'org', org_id, 'at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'actor', jsonb_build_object('type', actor_type, 'id', actor_id), 'action', action,
        'target', CASE WHEN target_type IS NULL THEN NULL ELSE jsonb_build_object('type', target_type, 'id', target_id) END,
        'outcome', outcome, 'client', client, 'ip', source_ip, 'req', request_id, 'payload', payload))::text
      FROM audit_events_v1`);
    await q.query(`DROP TABLE audit_events_v1`);

    await q.query(`
      CREATE TABLE audit_chain (
        org_id uuid NOT NULL,
        seq bigint NOT NULL,
        event_id uuid NOT NULL,
        occurred_at timestamptz NOT NULL,
        hash bytea NOT NULL,
        sealed_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT audit_chain_pkey PRIMARY KEY (org_id, seq),
        CONSTRAINT audit_chain_event_key UNIQUE (event_id)
      )`);
    await q.query(`
      CREATE TABLE audit_heads (
        org_id uuid PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
        seq bigint NOT NULL DEFAULT 0,
        hash bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
        lease_holder text,
        lease_token bigint NOT NULL DEFAULT 0,
        lease_until timestamptz,
        -- Everything at or before (last_txid, last_event) in (txid, id) order is sealed.
        last_txid bigint NOT NULL DEFAULT 0,
        last_event uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE audit_checkpoints (
        org_id uuid NOT NULL,
        seq bigint NOT NULL,
        hash bytea NOT NULL,
        signed_at timestamptz NOT NULL,
        key_id text NOT NULL,
        signature text NOT NULL,
        statement text NOT NULL,
        pushed_at timestamptz,
        push_error text,
        CONSTRAINT audit_checkpoints_pkey PRIMARY KEY (org_id, seq)
      )`);
    await q.query(`
      CREATE TABLE audit_keys (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        month date NOT NULL,
        wrapped text,
        created_at timestamptz NOT NULL DEFAULT now(),
        destroyed_at timestamptz,
        CONSTRAINT audit_keys_pkey PRIMARY KEY (org_id, month)
      )`);

    await q.query(`
      CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION steward_refuse_audit_change()`);
    await q.query(`
      CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION steward_refuse_audit_change()`);
    await q.query(`
      CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
      FOR EACH ROW EXECUTE FUNCTION steward_refuse_audit_change()`);

    for (const table of ['audit_events', ...TABLES]) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    }
    await q.query(`GRANT SELECT, INSERT ON audit_events, audit_chain TO steward_app`);
    await q.query(`GRANT SELECT, INSERT, UPDATE ON audit_heads, audit_keys TO steward_app`);
    await q.query(`GRANT SELECT, INSERT, UPDATE (pushed_at, push_error) ON audit_checkpoints TO steward_app`);

    // The maintenance jobs iterate over orgs before any org is set.
    await q.query(`
      CREATE FUNCTION steward_list_orgs() RETURNS TABLE (org_id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$ SELECT id FROM orgs ORDER BY id $$`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`ALTER FUNCTION steward_list_orgs() OWNER TO steward_lookup`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_list_orgs() FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_list_orgs() TO steward_app`);
    // Readiness: how far behind is sealing, across orgs (seconds since the oldest unsealed event).
    await q.query(`GRANT SELECT ON audit_events, audit_heads TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON audit_events FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`CREATE POLICY narrow_lookup ON audit_heads FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`
      CREATE FUNCTION steward_audit_sealing_lag() RETURNS double precision
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT coalesce(max(lag), 0) FROM (
          SELECT extract(epoch FROM now() - min(e.occurred_at))::float AS lag
            FROM orgs o LEFT JOIN audit_heads h ON h.org_id = o.id
            JOIN LATERAL (SELECT occurred_at FROM audit_events e
                           WHERE e.org_id = o.id AND (h.org_id IS NULL OR (e.txid, e.id) > (h.last_txid, h.last_event))
                           ORDER BY e.txid, e.id LIMIT 1) e ON true
           GROUP BY o.id) per_org
      $$`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`ALTER FUNCTION steward_audit_sealing_lag() OWNER TO steward_lookup`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_audit_sealing_lag() FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_audit_sealing_lag() TO steward_app`);
    // Partitions are made ahead by the maintenance job, as the table's owner (this migration's role).
    await q.query(`REVOKE ALL ON FUNCTION steward_audit_ensure_partitions(date, int) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_audit_ensure_partitions(date, int) TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_audit_sealing_lag()`);
    await q.query(`DROP FUNCTION IF EXISTS steward_list_orgs()`);
    await q.query(`DROP POLICY IF EXISTS narrow_lookup ON audit_heads`);
    await q.query(`REVOKE ALL ON audit_heads FROM steward_lookup`);
    for (const table of TABLES) await q.query(`DROP TABLE IF EXISTS ${table}`);
    await q.query(`
      CREATE TABLE audit_events_v1 ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL, "actor_type" character varying(16) NOT NULL, "actor_id" uuid, "action" character varying(80) NOT NULL, "target_type" character varying(40), "target_id" uuid, "outcome" character varying(16) NOT NULL, "client" character varying(16) NOT NULL, "source_ip" character varying(64), "request_id" character varying(64), "payload" jsonb NOT NULL DEFAULT '{}', CONSTRAINT "PK_910f64d901a5c3e9878f0d4a407" PRIMARY KEY ("id"))`);
    await q.query(`
      INSERT INTO audit_events_v1 SELECT id, org_id, occurred_at, coalesce(actor_type, 'system'), actor_id, action, target_type, target_id, coalesce(outcome, 'success'),
        coalesce((canonical::jsonb)->>'client', 'system'), (canonical::jsonb)->>'ip', (canonical::jsonb)->>'req', coalesce((canonical::jsonb)->'payload', '{}')
      FROM audit_events`);
    await q.query(`REVOKE ALL ON audit_events FROM steward_lookup`);
    await q.query(`DROP TABLE audit_events`);
    await q.query(`DROP FUNCTION IF EXISTS steward_audit_ensure_partitions(date, int)`);
    await q.query(`ALTER TABLE audit_events_v1 RENAME TO audit_events`);
    await q.query(`CREATE INDEX "audit_events_org_occurred_idx" ON "audit_events" ("org_id", "occurred_at")`);
    await q.query(`CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION steward_refuse_audit_change()`);
    await q.query(`CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION steward_refuse_audit_change()`);
    await q.query(`ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE audit_events FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON audit_events USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT ON audit_events TO steward_app`);
  }
}
