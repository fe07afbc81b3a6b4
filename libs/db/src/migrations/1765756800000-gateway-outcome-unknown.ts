import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Claims left `executing` that nobody will ever resolve: a task's are found when the task resumes,
 * but an MCP gateway call has no task to resume (its API process died, or could not record the
 * outcome), and a task that ended meanwhile (cancelled while requeued after its worker died)
 * resumes no more. The sweeper finds those still executing long after their call must have ended,
 * marks them `outcome_unknown` and asks a person to settle them.
 *
 * `steward_claims_without_outcome(p_after, p_limit)`: ids only, for the sweeper (no org known yet).
 * A claim's call began when it was claimed, or — a Watched one — when its approval was redeemed.
 * A model call is not an action anybody settles: left out.
 */
export class GatewayOutcomeUnknown1765756800000 implements MigrationInterface {
  name = 'GatewayOutcomeUnknown1765756800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`GRANT SELECT ON task_actions TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON task_actions FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`
      CREATE FUNCTION steward_claims_without_outcome(p_after int, p_limit int) RETURNS TABLE (org_id uuid, id uuid, task_id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT t.org_id, t.id, t.task_id FROM task_actions t
         WHERE t.state = 'executing' AND t.action_type <> 'model.invoke'
           AND (t.task_id IS NULL
                OR EXISTS (SELECT 1 FROM tasks k WHERE k.org_id = t.org_id AND k.id = t.task_id AND k.state IN ('completed', 'in_review', 'failed', 'cancelled')))
           AND coalesce((SELECT max(a.used_at) FROM approvals a WHERE a.org_id = t.org_id AND a.action_id = t.id AND a.kind = 'action'), t.created_at)
               < now() - make_interval(secs => greatest(p_after, 1))
         ORDER BY t.created_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`ALTER FUNCTION steward_claims_without_outcome(int, int) OWNER TO steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_claims_without_outcome(int, int) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_claims_without_outcome(int, int) TO steward_app`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_claims_without_outcome(int, int)`);
    await q.query(`DROP POLICY IF EXISTS narrow_lookup ON task_actions`);
    await q.query(`REVOKE SELECT ON task_actions FROM steward_lookup`);
  }
}
