import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The gate's outcomes in one statement: a batch of outcomes of any orgs (each action's state,
 * result digest and size, duration, undo and finishing step, and its outcome audit event) written
 * by one call and one commit. Per org it sets the org (row-level security reads it), updates the
 * claims still `executing` and appends the events — what the writer did before as a transaction
 * of 2 + 3 × orgs round trips. Like the claim batch, SECURITY INVOKER: row-level security applies.
 *
 * And the outcome's UPDATE becomes a heap-only (HOT) update: the partial index of open claims
 * (`task_actions_open_idx`, on state = 'executing') had no reader left — a crashed worker's open
 * claims are found by their task — yet it made every outcome a non-HOT update that wrote new
 * entries into all of the table's indexes; without it no indexed column changes, and a fill
 * factor of 85 leaves room on the page for the new row version.
 */
export class GateOutcomeBatch1765756800000 implements MigrationInterface {
  name = 'GateOutcomeBatch1765756800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION steward_gate_outcome_batch(p_outcomes jsonb) RETURNS integer
      LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
      DECLARE
        g record; v_n integer := 0; v_rows integer;
      BEGIN
        IF jsonb_typeof(p_outcomes) IS DISTINCT FROM 'array' OR jsonb_array_length(p_outcomes) > 5000 THEN
          RAISE EXCEPTION 'outcomes must be an array of at most 5000' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR g IN
          SELECT v.org,
                 array_agg(v.id) AS ids, array_agg(v.state) AS states, array_agg(v.digest) AS digests, array_agg(v.bytes) AS bytes,
                 array_agg(v.ms) AS ms, array_agg(v.undo) AS undos, array_agg(v.fin) AS fins, array_agg(v.err) AS errs, array_agg(v.at) AS ats,
                 array_agg(v.event_id) AS event_ids, array_agg(v.event_at) AS event_ats, array_agg(v.event) AS events
            FROM jsonb_to_recordset(p_outcomes) AS v(org uuid, id uuid, state varchar, digest varchar, bytes integer, ms integer,
                                                      undo jsonb, fin jsonb, err varchar, at timestamptz, event_id uuid, event_at timestamptz, event text)
           GROUP BY v.org
        LOOP
          PERFORM set_config('app.org_id', g.org::text, true), set_config('app.user_id', '', true);
          -- The claims are found by primary key (id = ANY): with the table's statistics lagging behind
          -- a busy gate the planner otherwise took a scan of the org's rows for the cheap path.
          UPDATE task_actions t
             SET state = v.state, result_digest = v.digest, result_bytes = v.bytes, duration_ms = v.ms, undo = v.undo, finalize = v.fin, error_code = v.err, finished_at = v.at
            FROM unnest(g.ids, g.states, g.digests, g.bytes, g.ms, g.undos, g.fins, g.errs, g.ats) AS v(id, state, digest, bytes, ms, undo, fin, err, at)
           WHERE t.org_id = g.org AND t.id = ANY (g.ids) AND t.id = v.id AND t.state = 'executing';
          GET DIAGNOSTICS v_rows = ROW_COUNT;
          v_n := v_n + v_rows;
          INSERT INTO audit_events (id, org_id, occurred_at, canonical)
          SELECT e.id, g.org, e.at, e.c FROM unnest(g.event_ids, g.event_ats, g.events) AS e(id, at, c);
        END LOOP;
        RETURN v_n;
      END $$`);
    await q.query(`DROP INDEX IF EXISTS task_actions_open_idx`);
    await q.query(`ALTER TABLE task_actions SET (fillfactor = 85)`);
    await q.query(`REVOKE ALL ON FUNCTION steward_gate_outcome_batch(jsonb) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_gate_outcome_batch(jsonb) TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_gate_outcome_batch(jsonb)`);
    await q.query(`ALTER TABLE task_actions RESET (fillfactor)`);
    await q.query(`CREATE INDEX IF NOT EXISTS task_actions_open_idx ON task_actions (org_id, created_at) WHERE state = 'executing'`);
  }
}
