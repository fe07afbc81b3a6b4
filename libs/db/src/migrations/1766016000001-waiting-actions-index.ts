import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The MCP gateway looks, on every write call, for an approved action of the same member, tool and
 * arguments still waiting under its claim (an approval granted after the call answered "pending"
 * is redeemed when the call comes again). That read went through all of the member's actions
 * (task_actions_user_idx); this partial index holds only the actions waiting for approval.
 */
export class WaitingActionsIndex1766016000001 implements MigrationInterface {
  name = 'WaitingActionsIndex1766016000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX task_actions_waiting_idx ON task_actions (org_id, user_id, connector, tool) WHERE state = 'awaiting_approval'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS task_actions_waiting_idx`);
  }
}
