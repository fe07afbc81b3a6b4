import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The gate's claim checks the task's lease in the same transaction: a worker that lost its lease
 * (another holds a newer epoch) between its last fenced write and the claim cannot claim, so no
 * task step ever runs on two workers at once. The task row is read FOR SHARE, so a takeover (the
 * sweeper's epoch bump) waits for a claim in flight, or the claim sees the newer epoch and answers
 * 'fenced'. Claims without a fence (the MCP gateway, benchmarks) are unchanged.
 */
const ARGS = `p_org uuid, p_user uuid, p_id uuid, p_task uuid, p_step integer, p_gateway varchar,
        p_connector varchar, p_tool varchar, p_type varchar, p_level varchar, p_rule_ids text[], p_reason varchar,
        p_policy uuid, p_policy_version integer, p_args_digest varchar, p_tainted boolean, p_labels text[], p_reversible boolean,
        p_state varchar, p_refusal varchar, p_event_id uuid, p_event_at timestamptz, p_event text, p_groups text[]`;
const OLD_TYPES = `uuid, uuid, uuid, uuid, integer, varchar, varchar, varchar, varchar, varchar, text[], varchar, uuid, integer, varchar, boolean, text[], boolean, varchar, varchar, uuid, timestamptz, text, text[]`;

const body = (fence: boolean) => `
      DECLARE
        v_paused boolean; v_status text; v_policy uuid; v_groups text[]; v_id uuid; v_state text;
      BEGIN
        PERFORM set_config('app.org_id', p_org::text, true), set_config('app.user_id', p_user::text, true);
        ${
          fence
            ? `IF p_epoch IS NOT NULL THEN
          PERFORM 1 FROM tasks t WHERE t.org_id = p_org AND t.id = p_task AND t.epoch = p_epoch AND t.lease_holder = p_holder AND t.state = 'running' FOR SHARE;
          IF NOT FOUND THEN RETURN 'fenced'; END IF;
        END IF;`
            : ''
        }
        IF p_refusal IS NULL THEN
          SELECT o.agents_paused_at IS NOT NULL, m.status,
                 (SELECT p.id FROM policies p WHERE p.org_id = o.id AND p.status = 'active'),
                 ARRAY(SELECT gm.group_id::text FROM group_members gm WHERE gm.org_id = o.id AND gm.user_id = p_user ORDER BY gm.group_id::text COLLATE "C")
            INTO v_paused, v_status, v_policy, v_groups
            FROM orgs o LEFT JOIN memberships m ON m.org_id = o.id AND m.user_id = p_user WHERE o.id = p_org;
          IF v_paused IS NULL OR v_paused THEN RETURN 'paused'; END IF;
          IF v_status IS DISTINCT FROM 'active' THEN RETURN 'suspended'; END IF;
          IF v_policy IS DISTINCT FROM p_policy OR v_groups IS DISTINCT FROM p_groups THEN RETURN 'changed'; END IF;
        END IF;
        INSERT INTO task_actions (org_id, id, task_id, step, gateway_key, user_id, connector, tool, action_type, level, rule_ids, reason,
                                  policy_id, policy_version, args_digest, tainted, labels, reversible, state, refusal, finished_at)
        VALUES (p_org, p_id, p_task, p_step, p_gateway, p_user, p_connector, p_tool, p_type, p_level, p_rule_ids, p_reason,
                p_policy, p_policy_version, p_args_digest, p_tainted, p_labels, p_reversible, p_state, p_refusal,
                CASE WHEN p_state = 'refused' THEN now() END)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
          SELECT t.id, t.state INTO v_id, v_state FROM task_actions t
           WHERE t.org_id = p_org AND ((p_task IS NOT NULL AND t.task_id = p_task AND t.step = p_step) OR (p_gateway IS NOT NULL AND t.gateway_key = p_gateway));
          RETURN 'duplicate:' || v_id || ':' || v_state;
        END IF;
        INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES (p_event_id, p_org, p_event_at, p_event);
        RETURN 'claimed';
      END`;

export class GateClaimFence1764720000003 implements MigrationInterface {
  name = 'GateClaimFence1764720000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION steward_gate_claim(${OLD_TYPES})`);
    await q.query(`CREATE FUNCTION steward_gate_claim(${ARGS}, p_epoch integer, p_holder varchar) RETURNS text LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$${body(true)} $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_gate_claim FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_gate_claim TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION steward_gate_claim(${OLD_TYPES}, integer, varchar)`);
    await q.query(`CREATE FUNCTION steward_gate_claim(${ARGS}) RETURNS text LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$${body(false)} $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_gate_claim FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_gate_claim TO steward_app`);
  }
}
