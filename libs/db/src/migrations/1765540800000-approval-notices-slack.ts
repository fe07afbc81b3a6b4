import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Approval notices through Slack. The write-ahead (`steward_gate_claim`, same signature) now also
 * queues a `slack` notice for an approval request when the org has a Slack incoming webhook
 * configured (the incident channel's `slack_webhook_url`, sealed in `incident_secrets`), and
 * every approval notice carries the requesting user's id and the decision's reason (never the
 * arguments). The notifications outbox accepts the `slack` channel.
 */
export class ApprovalNoticesSlack1765540800000 implements MigrationInterface {
  name = 'ApprovalNoticesSlack1765540800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN ('webhook', 'email', 'slack'))`);
    await q.query(gateClaim('slack'));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(gateClaim('previous'));
    await q.query(`DELETE FROM notifications WHERE channel = 'slack'`);
    await q.query(`ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check`);
    await q.query(`ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN ('webhook', 'email'))`);
  }
}

/**
 * The write-ahead as ApprovalsReviewsViolations1764633600000 made it (`previous`) or with the
 * Slack notice (`slack`): only the approval's notices differ between the two.
 */
function gateClaim(version: 'previous' | 'slack'): string {
  const notices =
    version === 'previous'
      ? `
          INSERT INTO notifications (org_id, id, channel, kind, subject_id, payload)
          SELECT p_org, gen_random_uuid(), c.channel, 'approval.requested', v_approval,
                 jsonb_build_object('approvalId', v_approval, 'taskId', p_task, 'tool', p_tool, 'actionType', p_type, 'tainted', p_tainted,
                                    'approverGroup', p_approval->>'approverGroup', 'quorum', coalesce((p_approval->>'quorum')::int, 1))
            FROM (VALUES ('email'), ('webhook')) AS c(channel)
           WHERE c.channel = 'email' OR v_webhook IS NOT NULL;`
      : `
          v_slack := EXISTS (SELECT 1 FROM incident_secrets s WHERE s.org_id = p_org AND s.name = 'slack_webhook_url');
          INSERT INTO notifications (org_id, id, channel, kind, subject_id, payload)
          SELECT p_org, gen_random_uuid(), c.channel, 'approval.requested', v_approval,
                 jsonb_build_object('approvalId', v_approval, 'taskId', p_task, 'tool', p_tool, 'actionType', p_type, 'tainted', p_tainted,
                                    'approverGroup', p_approval->>'approverGroup', 'quorum', coalesce((p_approval->>'quorum')::int, 1),
                                    'requestedBy', p_user, 'reason', p_reason)
            FROM (VALUES ('email'), ('webhook'), ('slack')) AS c(channel)
           WHERE c.channel = 'email' OR (c.channel = 'webhook' AND v_webhook IS NOT NULL) OR (c.channel = 'slack' AND v_slack);`;
  return `
      CREATE OR REPLACE FUNCTION steward_gate_claim(
        p_org uuid, p_user uuid, p_id uuid, p_task uuid, p_step integer, p_gateway varchar,
        p_connector varchar, p_tool varchar, p_type varchar, p_level varchar, p_rule_ids text[], p_reason varchar,
        p_policy uuid, p_policy_version integer, p_args_digest varchar, p_tainted boolean, p_labels text[], p_reversible boolean,
        p_state varchar, p_refusal varchar, p_event_id uuid, p_event_at timestamptz, p_event text, p_groups text[],
        p_approval jsonb, p_violation boolean
      ) RETURNS text LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
      DECLARE
        v_paused boolean; v_status text; v_policy uuid; v_groups text[]; v_id uuid; v_state text;
        v_ttl integer; v_webhook text; v_auto boolean; v_approval uuid;${version === 'slack' ? ' v_slack boolean;' : ''}
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
                  (p_approval->>'approverGroup')::uuid, coalesce((p_approval->>'quorum')::int, 1), now() + make_interval(secs => v_ttl));${notices}
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
      END $$`;
}
