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
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE task_actions`);
    await q.query(`ALTER TABLE orgs DROP COLUMN agents_paused_at, DROP COLUMN agents_paused_by`);
  }
}
