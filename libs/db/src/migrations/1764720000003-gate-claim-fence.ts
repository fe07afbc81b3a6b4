import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The gate's claim checks the task's lease in the same statement: `steward_task_fence` is called
 * by the gate's write-ahead statement right before `steward_gate_claim`
 * (`SELECT CASE WHEN steward_task_fence(...) THEN steward_gate_claim(...) ELSE 'fenced' END`), so
 * both run in one transaction. It reads the task row FOR SHARE: a takeover (the sweeper's epoch
 * bump) waits for a claim in flight, or the claim sees the newer epoch and answers 'fenced'. A
 * worker that lost its lease between its last fenced write and the claim therefore claims
 * nothing: no task step runs on two workers at once. Claims without a fence (the MCP gateway,
 * benchmarks) do not call it. `steward_gate_claim` itself is unchanged.
 */
export class GateClaimFence1764720000003 implements MigrationInterface {
  name = 'GateClaimFence1764720000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION steward_task_fence(p_org uuid, p_user uuid, p_task uuid, p_epoch integer, p_holder varchar) RETURNS boolean
      LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
      BEGIN
        PERFORM set_config('app.org_id', p_org::text, true), set_config('app.user_id', p_user::text, true);
        PERFORM 1 FROM tasks t WHERE t.org_id = p_org AND t.id = p_task AND t.epoch = p_epoch AND t.lease_holder = p_holder AND t.state = 'running' FOR SHARE;
        RETURN FOUND;
      END $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_task_fence FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_task_fence TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION steward_task_fence(uuid, uuid, uuid, integer, varchar)`);
  }
}
