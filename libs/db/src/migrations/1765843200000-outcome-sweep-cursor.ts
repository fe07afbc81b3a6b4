import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The outcome sweeper pages through the claims without an outcome instead of taking only the oldest
 * page: `steward_claims_without_outcome` gains a cursor (the last claim's `created_at` and id), so
 * that claims the sweeper cannot handle (each logged and retried on the next sweep) never keep newer
 * ones from a person. Same rule as GatewayOutcomeUnknown1765756800000 otherwise; called with two
 * arguments it answers as before. The task_actions index that repeated the unique claim index
 * `task_actions_claim_step` column for column is dropped (every claim wrote both).
 */
export class OutcomeSweepCursor1765843200000 implements MigrationInterface {
  name = 'OutcomeSweepCursor1765843200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS task_actions_task_idx`);
    await q.query(`DROP FUNCTION IF EXISTS steward_claims_without_outcome(int, int)`);
    await create(
      q,
      `p_after int, p_limit int, p_from timestamptz DEFAULT '-infinity', p_from_id uuid DEFAULT '00000000-0000-0000-0000-000000000000'`,
      'org_id uuid, id uuid, task_id uuid, created_at timestamptz',
      't.org_id, t.id, t.task_id, t.created_at',
      'AND (t.created_at, t.id) > (p_from, p_from_id)',
      't.created_at, t.id',
      'int, int, timestamptz, uuid',
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_claims_without_outcome(int, int, timestamptz, uuid)`);
    await create(q, 'p_after int, p_limit int', 'org_id uuid, id uuid, task_id uuid', 't.org_id, t.id, t.task_id', '', 't.created_at', 'int, int');
    await q.query(`CREATE INDEX task_actions_task_idx ON task_actions (org_id, task_id, step)`);
  }
}

/** The lookup as the sweeper calls it (owned by steward_lookup, which reads every org's claims and returns ids only). */
async function create(q: QueryRunner, params: string, returns: string, columns: string, after: string, order: string, signature: string): Promise<void> {
  await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
  await q.query(`
    CREATE FUNCTION steward_claims_without_outcome(${params}) RETURNS TABLE (${returns})
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT ${columns} FROM task_actions t
       WHERE t.state = 'executing' AND t.action_type <> 'model.invoke'
         AND (t.task_id IS NULL
              OR EXISTS (SELECT 1 FROM tasks k WHERE k.org_id = t.org_id AND k.id = t.task_id AND k.state IN ('completed', 'in_review', 'failed', 'cancelled')))
         AND coalesce((SELECT max(a.used_at) FROM approvals a WHERE a.org_id = t.org_id AND a.action_id = t.id AND a.kind = 'action'), t.created_at)
             < now() - make_interval(secs => greatest(p_after, 1))
         ${after}
       ORDER BY ${order} LIMIT least(greatest(p_limit, 1), 1000)
    $$`);
  await q.query(`ALTER FUNCTION steward_claims_without_outcome(${signature}) OWNER TO steward_lookup`);
  await q.query(`REVOKE ALL ON FUNCTION steward_claims_without_outcome(${signature}) FROM PUBLIC`);
  await q.query(`GRANT EXECUTE ON FUNCTION steward_claims_without_outcome(${signature}) TO steward_app`);
  await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
}
