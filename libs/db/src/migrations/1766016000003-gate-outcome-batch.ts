import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The gate's outcomes in one statement: the outcome writer sends what finished while the previous
 * batch was being written — each action's state, result digest and size, duration, undo and
 * finishing calls, with its outcome audit event — as one call, one round trip and one durable
 * commit, whatever orgs it spans (each row written under its own org: row-level security applies
 * as for any write). Before, a batch was a transaction of 2 + 3 statements per org, each a round
 * trip of its own.
 */
export class GateOutcomeBatch1766016000003 implements MigrationInterface {
  name = 'GateOutcomeBatch1766016000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION steward_gate_outcome_batch(p_outcomes jsonb) RETURNS integer
      LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
      DECLARE
        o record; v_org uuid; v_n integer := 0;
      BEGIN
        IF jsonb_typeof(p_outcomes) IS DISTINCT FROM 'array' OR jsonb_array_length(p_outcomes) > 5000 THEN
          RAISE EXCEPTION 'outcomes must be an array of at most 5000' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR o IN
          SELECT * FROM jsonb_to_recordset(p_outcomes) AS t(
            org uuid, id uuid, state varchar, digest varchar, bytes integer, ms integer, undo jsonb, fin jsonb, err varchar, at timestamptz, event_id uuid, event text)
          ORDER BY org
        LOOP
          IF v_org IS DISTINCT FROM o.org THEN
            PERFORM set_config('app.org_id', o.org::text, true), set_config('app.user_id', '', true);
            v_org := o.org;
          END IF;
          UPDATE task_actions SET state = o.state, result_digest = o.digest, result_bytes = o.bytes, duration_ms = o.ms, undo = o.undo, finalize = o.fin, error_code = o.err, finished_at = o.at
           WHERE org_id = o.org AND id = o.id AND state = 'executing';
          INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES (o.event_id, o.org, o.at, o.event);
          v_n := v_n + 1;
        END LOOP;
        RETURN v_n;
      END $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_gate_outcome_batch(jsonb) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_gate_outcome_batch(jsonb) TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_gate_outcome_batch(jsonb)`);
  }
}
