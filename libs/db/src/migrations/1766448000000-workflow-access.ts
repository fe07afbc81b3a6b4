import type { MigrationInterface, QueryRunner } from 'typeorm';
import { GateClaimBatch1764806400001 } from './1764806400001-gate-claim-batch';

/**
 * Who may run tasks under a workflow. A workflow's policy rules decide before group rules, so a
 * workflow that any member could pick would hand its levels to everyone: `allowed_groups` names the
 * groups whose members may run tasks under it (NULL: every member; an empty list: nobody, which is
 * what a workflow whose only group was deleted becomes). `steward_workflow_permitted` is the one
 * test, used by the API when a task or schedule is made, by the worker before each model call and
 * by the gate's write-ahead for every action of a task under a workflow: a claim whose decision
 * assumed the workflow was open to the member when it no longer is answers `changed`, and the gate
 * decides again (and refuses).
 */
export class WorkflowAccess1766448000000 implements MigrationInterface {
  name = 'WorkflowAccess1766448000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE workflows ADD COLUMN allowed_groups uuid[]`);
    await q.query(`ALTER TABLE workflows ADD CONSTRAINT workflows_allowed_groups_check CHECK ("allowed_groups" IS NULL OR cardinality("allowed_groups") <= 50)`);
    await q.query(`
      CREATE FUNCTION steward_workflow_permitted(p_org uuid, p_user uuid, p_workflow varchar) RETURNS boolean
      LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        SELECT p_workflow IS NULL OR EXISTS (
          SELECT 1 FROM workflows w
           WHERE w.org_id = p_org AND w.key = p_workflow
             AND (w.allowed_groups IS NULL
                  OR EXISTS (SELECT 1 FROM group_members gm WHERE gm.org_id = p_org AND gm.user_id = p_user AND gm.group_id = ANY (w.allowed_groups))))
      $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_workflow_permitted(uuid, uuid, varchar) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_workflow_permitted(uuid, uuid, varchar) TO steward_app`);
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_gate_claim_batch(p_claims jsonb) RETURNS text[]
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
            groups text[], approval jsonb, violation boolean, extra jsonb, cred_id uuid, cred_wrapped text, fence_epoch integer, fence_holder varchar,
            workflow varchar)
        LOOP
          -- A worker's claim: only while its task still runs under this lease (steward_task_fence).
          IF c.fence_epoch IS NOT NULL AND NOT steward_task_fence(c.org, c."user", c.task, c.fence_epoch, c.fence_holder) THEN
            v_out := v_out || 'fenced'::text;
            CONTINUE;
          END IF;
          IF c.cred_id IS NOT NULL OR (c.workflow IS NOT NULL AND c.refusal IS NULL) THEN
            PERFORM set_config('app.org_id', c.org::text, true), set_config('app.user_id', c."user"::text, true);
          END IF;
          -- A decision made on a workflow the member may no longer run tasks under (its groups
          -- changed, or it was deleted): the gate decides again, and refuses.
          IF c.workflow IS NOT NULL AND c.refusal IS NULL AND NOT steward_workflow_permitted(c.org, c."user", c.workflow) THEN
            v_out := v_out || 'changed'::text;
            CONTINUE;
          END IF;
          -- A credential read ahead of the claim (the action will decrypt it once the claim commits)
          -- must still be the live one: revoked or rotated meanwhile, the gate decides again.
          IF c.cred_id IS NOT NULL THEN
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
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_gate_claim_batch(jsonb)`);
    await new GateClaimBatch1764806400001().up(q);
    await q.query(`DROP FUNCTION IF EXISTS steward_workflow_permitted(uuid, uuid, varchar)`);
    await q.query(`ALTER TABLE workflows DROP CONSTRAINT IF EXISTS workflows_allowed_groups_check`);
    await q.query(`ALTER TABLE workflows DROP COLUMN IF EXISTS allowed_groups`);
  }
}
