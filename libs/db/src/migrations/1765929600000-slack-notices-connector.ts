import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Slack notices through the org's Slack connector: the incident settings name a channel and the
 * member whose connected Slack account posts there (`slack_channel`, `slack_post_as`, both or
 * neither). Approval requests and outcome-unknown notices are then queued for Slack when either
 * this or the older incoming webhook (`slack_webhook_url`) is set: the write-ahead
 * (`steward_gate_claim`) learns the second condition; the function is otherwise kept as it is.
 */
const WEBHOOK_ONLY = "v_slack := EXISTS (SELECT 1 FROM incident_secrets s WHERE s.org_id = p_org AND s.name = 'slack_webhook_url');";
const EITHER =
  "v_slack := EXISTS (SELECT 1 FROM incident_secrets s WHERE s.org_id = p_org AND s.name = 'slack_webhook_url')\n" +
  '                  OR EXISTS (SELECT 1 FROM incident_settings st WHERE st.org_id = p_org AND st.slack_channel IS NOT NULL);';

export class SlackNoticesConnector1765929600000 implements MigrationInterface {
  name = 'SlackNoticesConnector1765929600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE incident_settings ADD COLUMN slack_channel varchar(80), ADD COLUMN slack_post_as uuid`);
    await q.query(`ALTER TABLE incident_settings ADD CONSTRAINT incident_settings_slack_pair CHECK ((slack_channel IS NULL) = (slack_post_as IS NULL))`);
    const def = await definition(q);
    if (def.includes(EITHER)) return;
    if (!def.includes(WEBHOOK_ONLY)) throw new Error('steward_gate_claim: the Slack notice condition to extend was not found');
    await q.query(def.replace(WEBHOOK_ONLY, EITHER));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query((await definition(q)).replace(EITHER, WEBHOOK_ONLY));
    await q.query(`ALTER TABLE incident_settings DROP CONSTRAINT incident_settings_slack_pair, DROP COLUMN slack_channel, DROP COLUMN slack_post_as`);
  }
}

async function definition(q: QueryRunner): Promise<string> {
  const [{ def }]: { def: string }[] = await q.query(`SELECT pg_get_functiondef('steward_gate_claim'::regproc) AS def`);
  return def;
}
