import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The gate's write-ahead for several actions in one statement and one commit: the gate's claim
 * writer sends the claims that arrive while the previous batch is being written as the next batch
 * (group commit in the application: no waiting when the gate is idle). Each claim goes through
 * `steward_gate_claim` exactly as alone (its own org set, its own checks and result); a claim's
 * extra audit events (a credential decrypt the action will make) are written only when it claimed,
 * and a credential read ahead of the claim must still be live (else the answer is `changed`); a
 * worker's claim is made only while its task still runs under the worker's lease (else `fenced`).
 */
export class GateClaimBatch1764806400001 implements MigrationInterface {
  name = 'GateClaimBatch1764806400001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION steward_gate_claim_batch(p_claims jsonb) RETURNS text[]
      LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
      DECLARE
        c record; e jsonb; v_r text; v_out text[] := '{}'; v_used timestamptz;
      BEGIN
        IF jsonb_typeof(p_claims) IS DISTINCT FROM 'array' OR jsonb_array_length(p_claims) > 1000 THEN
          RAISE EXCEPTION 'claims must be an array of at most 1000' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR c IN
          SELECT * FROM jsonb_to_recordset(p_claims) AS t(
            org uuid, "user" uuid, id uuid, task uuid, step integer, gateway varchar, connector varchar, tool varchar, type varchar,
            level varchar, rule_ids text[], reason varchar, policy uuid, policy_version integer, args_digest varchar, tainted boolean,
            labels text[], reversible boolean, state varchar, refusal varchar, event_id uuid, event_at timestamptz, event text,
            groups text[], approval jsonb, violation boolean, extra jsonb, cred_id uuid, cred_wrapped text, fence_epoch integer, fence_holder varchar)
        LOOP
          -- A worker's claim: only while its task still runs under this lease (steward_task_fence).
          IF c.fence_epoch IS NOT NULL AND NOT steward_task_fence(c.org, c."user", c.task, c.fence_epoch, c.fence_holder) THEN
            v_out := v_out || 'fenced'::text;
            CONTINUE;
          END IF;
          -- A credential read ahead of the claim (the action will decrypt it once the claim commits)
          -- must still be the live one: revoked or rotated meanwhile, the gate decides again.
          IF c.cred_id IS NOT NULL THEN
            PERFORM set_config('app.org_id', c.org::text, true), set_config('app.user_id', c."user"::text, true);
            SELECT last_used_at INTO v_used FROM credentials
             WHERE org_id = c.org AND id = c.cred_id AND wrapped_key = c.cred_wrapped AND status = 'active';
            IF NOT FOUND THEN
              v_out := v_out || 'changed'::text;
              CONTINUE;
            END IF;
          END IF;
          v_r := steward_gate_claim(c.org, c."user", c.id, c.task, c.step, c.gateway, c.connector, c.tool, c.type, c.level, c.rule_ids, c.reason,
                                    c.policy, c.policy_version, c.args_digest, c.tainted, c.labels, c.reversible, c.state, c.refusal,
                                    c.event_id, c.event_at, c.event, c.groups, c.approval, c.violation);
          IF v_r = 'claimed' AND c.extra IS NOT NULL THEN
            FOR e IN SELECT * FROM jsonb_array_elements(c.extra) LOOP
              INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES ((e->>'id')::uuid, c.org, (e->>'at')::timestamptz, e->>'canonical');
            END LOOP;
          END IF;
          IF v_r = 'claimed' AND c.cred_id IS NOT NULL AND (v_used IS NULL OR v_used < now() - interval '1 minute') THEN
            UPDATE credentials SET last_used_at = now() WHERE org_id = c.org AND id = c.cred_id;
          END IF;
          v_out := v_out || v_r;
        END LOOP;
        RETURN v_out;
      END $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_gate_claim_batch(jsonb) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_gate_claim_batch(jsonb) TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_gate_claim_batch(jsonb)`);
  }
}
