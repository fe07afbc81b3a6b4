import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The action gate's write-ahead record. One row per action an agent takes: its decision (level,
 * rule ids, reason, policy version), its claim — unique per task step, or per gateway action id,
 * so an action can be claimed once — and, after the call, its outcome. The decision and the claim
 * are committed (with the audit event) before the connector is called; a row left `executing`
 * after a crash is an outcome nobody knows, for a human to settle, never re-run.
 * `orgs.agents_paused_at` is the org's kill switch.
 */
export class ActionGate1764460800000 implements MigrationInterface {
  name = 'ActionGate1764460800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orgs ADD COLUMN agents_paused_at timestamptz, ADD COLUMN agents_paused_by uuid`);
    await q.query(`GRANT UPDATE (agents_paused_at, agents_paused_by) ON orgs TO steward_app`);
    await q.query(`
      CREATE TABLE task_actions (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        task_id uuid,
        step integer,
        gateway_key varchar(200),
        user_id uuid NOT NULL,
        connector varchar(100) NOT NULL,
        tool varchar(128) NOT NULL,
        action_type varchar(32) NOT NULL,
        level varchar(16) NOT NULL CHECK (level IN ('autonomous', 'batched', 'watched', 'forbidden')),
        rule_ids text[] NOT NULL,
        reason varchar(1000) NOT NULL,
        policy_id uuid,
        policy_version integer,
        args_digest char(64) NOT NULL,
        tainted boolean NOT NULL,
        labels text[] NOT NULL DEFAULT '{}',
        reversible boolean NOT NULL DEFAULT false,
        state varchar(24) NOT NULL CHECK (state IN ('executing', 'succeeded', 'failed', 'refused', 'awaiting_approval')),
        refusal varchar(32),
        result_digest char(64),
        result_bytes integer,
        duration_ms integer,
        error_code varchar(64),
        undo jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        CONSTRAINT task_actions_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT task_actions_claim_step UNIQUE (org_id, task_id, step),
        CONSTRAINT task_actions_claim_gateway UNIQUE (org_id, gateway_key),
        CONSTRAINT task_actions_claim_present CHECK ((task_id IS NOT NULL AND step IS NOT NULL) OR gateway_key IS NOT NULL)
      )`);
    await q.query(`CREATE INDEX task_actions_user_idx ON task_actions (org_id, user_id, created_at)`);
    await q.query(`CREATE INDEX task_actions_open_idx ON task_actions (org_id, created_at) WHERE state = 'executing'`);
    await q.query(`ALTER TABLE task_actions ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE task_actions FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON task_actions USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT ON task_actions TO steward_app`);
    await q.query(`GRANT UPDATE (state, refusal, result_digest, result_bytes, duration_ms, error_code, undo, finished_at) ON task_actions TO steward_app`);
    // The gate's write-ahead as ONE statement (one round trip, one durable commit): it sets the org
    // for row-level security, reads the kill switch, the membership, the active policy and the
    // user's groups, and — when they are what the caller decided on — inserts the claim and its
    // audit event. Runs with the caller's rights (no definer): RLS applies as everywhere.
    await q.query(`
      CREATE FUNCTION steward_gate_claim(
        p_org uuid, p_user uuid, p_id uuid, p_task uuid, p_step integer, p_gateway varchar,
        p_connector varchar, p_tool varchar, p_type varchar, p_level varchar, p_rule_ids text[], p_reason varchar,
        p_policy uuid, p_policy_version integer, p_args_digest varchar, p_tainted boolean, p_labels text[], p_reversible boolean,
        p_state varchar, p_refusal varchar, p_event_id uuid, p_event_at timestamptz, p_event text, p_groups text[]
      ) RETURNS text LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
      DECLARE
        v_paused boolean; v_status text; v_policy uuid; v_groups text[]; v_id uuid; v_state text;
      BEGIN
        PERFORM set_config('app.org_id', p_org::text, true), set_config('app.user_id', p_user::text, true);
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
      END $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_gate_claim FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_gate_claim TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION steward_gate_claim`);
    await q.query(`DROP TABLE task_actions`);
    await q.query(`ALTER TABLE orgs DROP COLUMN agents_paused_at, DROP COLUMN agents_paused_by`);
  }
}
