import type { MigrationInterface, QueryRunner } from 'typeorm';

const NOT_PAUSED = `AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.id = a.org_id AND o.agents_paused_at IS NOT NULL)`;
/**
 * An approved action whose task waits for a place (parked behind the org's running tasks, or
 * released and not started yet) does not expire meanwhile: the wait is the org's limit, not the
 * approver's. When the task starts, the approval's expiry moves on by the time it waited (the lease,
 * task-store.ts), so it has the time to be redeemed it had when approved. Before, a task parked for
 * more than an hour came back to "nobody approved this in time".
 */
const TASK_WAITING = `AND NOT (a.state = 'approved' AND a.task_id IS NOT NULL AND EXISTS (SELECT 1 FROM tasks t WHERE t.org_id = a.org_id AND t.id = a.task_id AND t.state = 'queued' AND t.parked_since IS NOT NULL))`;

export class ApprovedKeptForWaitingTask1766880000006 implements MigrationInterface {
  name = 'ApprovedKeptForWaitingTask1766880000006';

  async up(q: QueryRunner): Promise<void> {
    await create(q, `${NOT_PAUSED} ${TASK_WAITING}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await create(q, NOT_PAUSED);
  }
}

/** The lookup the expiry sweep calls (owned by steward_lookup, which reads every org's approvals and tasks and returns ids only). */
async function create(q: QueryRunner, conditions: string): Promise<void> {
  await q.query(`DROP FUNCTION IF EXISTS steward_approvals_expired(int)`);
  await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
  await q.query(`
    CREATE FUNCTION steward_approvals_expired(p_limit int) RETURNS TABLE (org_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT a.org_id, a.id FROM approvals a WHERE a.state IN ('pending', 'approved') AND a.kind = 'action' AND a.expires_at <= now() ${conditions}
       ORDER BY a.expires_at LIMIT least(greatest(p_limit, 1), 1000)
    $$`);
  await q.query(`ALTER FUNCTION steward_approvals_expired(int) OWNER TO steward_lookup`);
  await q.query(`REVOKE ALL ON FUNCTION steward_approvals_expired(int) FROM PUBLIC`);
  await q.query(`GRANT EXECUTE ON FUNCTION steward_approvals_expired(int) TO steward_app`);
  await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
}
