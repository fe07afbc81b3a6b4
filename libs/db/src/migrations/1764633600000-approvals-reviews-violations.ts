import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The human side of the gate.
 *
 * - `approvals`: a Watched action waiting for people, written by the gate's write-ahead (the same
 *   statement as the claim), bound to the digest of the arguments, the tool definition's hash, the
 *   credential id, the requesting user, the policy version and an expiry; routed to a group (or
 *   the approver role) with a quorum. Kind `outcome_unknown`: a claim a crash left `executing`,
 *   for a person to settle (done / not done). `approval_votes`: one row per distinct approver.
 * - `task_actions`: new states `outcome_unknown`, `settled_done`, `settled_not_done`; a review
 *   state for Batched actions (accepted / reverted).
 * - `violations`: each Forbidden attempt, for security to confirm (strike) or dismiss.
 * - `notifications`: an outbox of webhook and e-mail notices (the worker delivers webhooks
 *   through the egress guard; e-mail has no SMTP sender yet: rows are the record).
 * - `orgs`: approval expiry, notification webhook, automatic strikes (off by default).
 *
 * `steward_gate_claim` gains two arguments: the approval to open (Watched) and the violation to
 * open (Forbidden), inserted in the same statement as the claim and its audit event.
 */
export class ApprovalsReviewsViolations1764633600000 implements MigrationInterface {
  name = 'ApprovalsReviewsViolations1764633600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orgs ADD COLUMN approval_ttl_seconds integer NOT NULL DEFAULT 86400,
                   ADD COLUMN notify_webhook_url varchar(2000), ADD COLUMN automatic_strikes boolean NOT NULL DEFAULT false`);

    await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_state_check`);
    await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_state_check
                   CHECK (state IN ('executing', 'succeeded', 'failed', 'refused', 'awaiting_approval', 'outcome_unknown', 'settled_done', 'settled_not_done'))`);
    await q.query(`ALTER TABLE task_actions ADD COLUMN review_state varchar(16) CHECK (review_state IN ('accepted', 'reverted')),
                   ADD COLUMN reviewed_by uuid, ADD COLUMN reviewed_at timestamptz`);
    await q.query(`GRANT UPDATE (review_state, reviewed_by, reviewed_at, level) ON task_actions TO steward_app`);
    await q.query(`CREATE INDEX task_actions_task_idx ON task_actions (org_id, task_id, step)`);

    await q.query(`
      CREATE TABLE approvals (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        kind varchar(16) NOT NULL CHECK (kind IN ('action', 'outcome_unknown')),
        action_id uuid NOT NULL,
        task_id uuid,
        step integer,
        requested_by uuid NOT NULL,
        connector varchar(100) NOT NULL,
        tool varchar(128) NOT NULL,
        action_type varchar(32) NOT NULL,
        args_digest char(64) NOT NULL,
        tool_hash varchar(80),
        credential_id uuid,
        policy_id uuid,
        policy_version integer,
        reason varchar(1000) NOT NULL,
        tainted boolean NOT NULL DEFAULT false,
        labels text[] NOT NULL DEFAULT '{}',
        approver_group uuid,
        quorum integer NOT NULL DEFAULT 1 CHECK (quorum BETWEEN 1 AND 5),
        state varchar(16) NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'used', 'void', 'settled')),
        expires_at timestamptz NOT NULL,
        decided_at timestamptz,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT approvals_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT approvals_action_key UNIQUE (org_id, action_id, kind)
      )`);
    await q.query(`CREATE INDEX approvals_open_idx ON approvals (org_id, state, id)`);
    await q.query(`CREATE INDEX approvals_expiry_idx ON approvals (expires_at) WHERE state IN ('pending', 'approved') AND kind = 'action'`);
    await q.query(`CREATE INDEX approvals_task_idx ON approvals (org_id, task_id)`);
    await q.query(`
      CREATE TABLE approval_votes (
        org_id uuid NOT NULL,
        approval_id uuid NOT NULL,
        user_id uuid NOT NULL,
        vote varchar(8) NOT NULL CHECK (vote IN ('approve', 'reject', 'done', 'not_done')),
        reason varchar(1000),
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT approval_votes_pkey PRIMARY KEY (org_id, approval_id, user_id),
        CONSTRAINT approval_votes_approval_fkey FOREIGN KEY (org_id, approval_id) REFERENCES approvals(org_id, id) ON DELETE CASCADE
      )`);

    await q.query(`
      CREATE TABLE violations (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        action_id uuid NOT NULL,
        task_id uuid,
        user_id uuid NOT NULL,
        connector varchar(100) NOT NULL,
        tool varchar(128) NOT NULL,
        action_type varchar(32) NOT NULL,
        args_digest char(64) NOT NULL,
        tainted boolean NOT NULL,
        labels text[] NOT NULL DEFAULT '{}',
        rule_ids text[] NOT NULL DEFAULT '{}',
        reason varchar(1000) NOT NULL,
        state varchar(16) NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'confirmed', 'dismissed')),
        automatic boolean NOT NULL DEFAULT false,
        note varchar(1000),
        decided_by uuid,
        decided_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT violations_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT violations_action_key UNIQUE (org_id, action_id)
      )`);
    await q.query(`CREATE INDEX violations_user_idx ON violations (org_id, user_id, state)`);
    await q.query(`CREATE INDEX violations_list_idx ON violations (org_id, id)`);

    await q.query(`
      CREATE TABLE notifications (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        channel varchar(16) NOT NULL CHECK (channel IN ('webhook', 'email')),
        kind varchar(64) NOT NULL,
        subject_id uuid,
        payload jsonb NOT NULL DEFAULT '{}',
        state varchar(16) NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        last_error varchar(500),
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        CONSTRAINT notifications_pkey PRIMARY KEY (org_id, id)
      )`);
    await q.query(`CREATE INDEX notifications_pending_idx ON notifications (next_attempt_at) WHERE state = 'pending'`);

    for (const table of ['approvals', 'approval_votes', 'violations', 'notifications']) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    }
    await q.query(`GRANT SELECT, INSERT ON approvals, approval_votes, violations, notifications TO steward_app`);
    await q.query(`GRANT UPDATE (state, decided_at, used_at) ON approvals TO steward_app`);
    await q.query(`GRANT UPDATE (state, note, decided_by, decided_at) ON violations TO steward_app`);
    await q.query(`GRANT UPDATE (state, attempts, last_error, next_attempt_at, sent_at, payload) ON notifications TO steward_app`);

    // Timers swept from Postgres before any org is known: ids only.
    await q.query(`GRANT SELECT ON approvals, notifications TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON approvals FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`CREATE POLICY narrow_lookup ON notifications FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`
      CREATE FUNCTION steward_approvals_expired(p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id, id FROM approvals WHERE state IN ('pending', 'approved') AND kind = 'action' AND expires_at <= now()
         ORDER BY expires_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`
      CREATE FUNCTION steward_notifications_pending(p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id, id FROM notifications WHERE state = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    for (const fn of ['steward_approvals_expired(int)', 'steward_notifications_pending(int)']) {
      await q.query(`ALTER FUNCTION ${fn} OWNER TO steward_lookup`);
      await q.query(`REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`);
      await q.query(`GRANT EXECUTE ON FUNCTION ${fn} TO steward_app`);
    }
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);

    // The write-ahead, now also opening the approval (Watched) or the violation (Forbidden) of the
    // claim it inserts — same statement, same commit. Automatic strikes (an org's choice, off by
    // default) confirm the violation at once, and a second confirmed one suspends the member.
    await q.query(`DROP FUNCTION steward_gate_claim`);
    await q.query(`
      CREATE FUNCTION steward_gate_claim(
        p_org uuid, p_user uuid, p_id uuid, p_task uuid, p_step integer, p_gateway varchar,
        p_connector varchar, p_tool varchar, p_type varchar, p_level varchar, p_rule_ids text[], p_reason varchar,
        p_policy uuid, p_policy_version integer, p_args_digest varchar, p_tainted boolean, p_labels text[], p_reversible boolean,
        p_state varchar, p_refusal varchar, p_event_id uuid, p_event_at timestamptz, p_event text, p_groups text[],
        p_approval jsonb, p_violation boolean
      ) RETURNS text LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
      DECLARE
        v_paused boolean; v_status text; v_policy uuid; v_groups text[]; v_id uuid; v_state text;
        v_ttl integer; v_webhook text; v_auto boolean; v_approval uuid;
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
        IF p_state = 'awaiting_approval' AND p_approval IS NOT NULL THEN
          SELECT approval_ttl_seconds, notify_webhook_url INTO v_ttl, v_webhook FROM orgs WHERE id = p_org;
          v_approval := (p_approval->>'id')::uuid;
          INSERT INTO approvals (org_id, id, kind, action_id, task_id, step, requested_by, connector, tool, action_type, args_digest, tool_hash,
                                 credential_id, policy_id, policy_version, reason, tainted, labels, approver_group, quorum, expires_at)
          VALUES (p_org, v_approval, 'action', p_id, p_task, p_step, p_user, p_connector, p_tool, p_type, p_args_digest, p_approval->>'toolHash',
                  (p_approval->>'credentialId')::uuid, p_policy, p_policy_version, p_reason, p_tainted, p_labels,
                  (p_approval->>'approverGroup')::uuid, coalesce((p_approval->>'quorum')::int, 1), now() + make_interval(secs => v_ttl));
          INSERT INTO notifications (org_id, id, channel, kind, subject_id, payload)
          SELECT p_org, gen_random_uuid(), c.channel, 'approval.requested', v_approval,
                 jsonb_build_object('approvalId', v_approval, 'taskId', p_task, 'tool', p_tool, 'actionType', p_type, 'tainted', p_tainted,
                                    'approverGroup', p_approval->>'approverGroup', 'quorum', coalesce((p_approval->>'quorum')::int, 1))
            FROM (VALUES ('email'), ('webhook')) AS c(channel)
           WHERE c.channel = 'email' OR v_webhook IS NOT NULL;
        END IF;
        IF p_refusal = 'forbidden' AND p_violation THEN
          SELECT automatic_strikes INTO v_auto FROM orgs WHERE id = p_org;
          INSERT INTO violations (org_id, id, action_id, task_id, user_id, connector, tool, action_type, args_digest, tainted, labels, rule_ids, reason, state, automatic, decided_at)
          VALUES (p_org, gen_random_uuid(), p_id, p_task, p_user, p_connector, p_tool, p_type, p_args_digest, p_tainted, p_labels, p_rule_ids, p_reason,
                  CASE WHEN v_auto THEN 'confirmed' ELSE 'open' END, coalesce(v_auto, false), CASE WHEN v_auto THEN now() END);
          IF v_auto AND (SELECT count(*) FROM violations v WHERE v.org_id = p_org AND v.user_id = p_user AND v.state = 'confirmed'
                                                              AND v.decided_at > now() - interval '365 days') >= 2 THEN
            UPDATE memberships SET status = 'suspended', suspended_at = now(), suspended_reason = 'automatic strikes: second confirmed violation'
             WHERE org_id = p_org AND user_id = p_user AND status = 'active';
          END IF;
        END IF;
        RETURN 'claimed';
      END $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_gate_claim FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_gate_claim TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_approvals_expired(int)`);
    await q.query(`DROP FUNCTION IF EXISTS steward_notifications_pending(int)`);
    await q.query(`DROP TABLE notifications`);
    await q.query(`DROP TABLE violations`);
    await q.query(`DROP TABLE approval_votes`);
    await q.query(`DROP TABLE approvals`);
    await q.query(`DROP INDEX task_actions_task_idx`);
    await q.query(`ALTER TABLE task_actions DROP COLUMN review_state, DROP COLUMN reviewed_by, DROP COLUMN reviewed_at`);
    await q.query(`ALTER TABLE orgs DROP COLUMN approval_ttl_seconds, DROP COLUMN notify_webhook_url, DROP COLUMN automatic_strikes`);
    await q.query(`DROP FUNCTION steward_gate_claim`);
    await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_state_check`);
    await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_state_check CHECK (state IN ('executing', 'succeeded', 'failed', 'refused', 'awaiting_approval'))`);
    // The write-ahead as ActionGate1764460800000 made it.
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
}
