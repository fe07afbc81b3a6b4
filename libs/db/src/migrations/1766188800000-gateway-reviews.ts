import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Reviews of the MCP gateway's Batched writes: no task holds them, so the console and the CLI list
 * them per org (and per member), newest first, from this partial index; it covers only the few
 * rows a reviewer settles, not the gateway's every call.
 */
export class GatewayReviews1766188800000 implements MigrationInterface {
  name = 'GatewayReviews1766188800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX task_actions_gateway_review_idx ON task_actions (org_id, created_at DESC, id DESC)
        WHERE task_id IS NULL AND level = 'batched' AND state = 'succeeded' AND reversible`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX task_actions_gateway_review_idx`);
  }
}
