import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The kill switch freezes pending approvals: while an org's agents are paused its approvals do not
 * expire (the expiry sweep leaves them), and the org's resume moves their expiry on by the time the
 * pause lasted (OrgsService). Before, an approval could expire during a pause and its task resume only
 * to be refused.
 */
export class ApprovalsFrozenWhilePaused1766102400002 implements MigrationInterface {
  name = 'ApprovalsFrozenWhilePaused1766102400002';

  async up(q: QueryRunner): Promise<void> {
    await create(q, `AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.id = a.org_id AND o.agents_paused_at IS NOT NULL)`);
    await q.query(`GRANT UPDATE (expires_at) ON approvals TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`REVOKE UPDATE (expires_at) ON approvals FROM steward_app`);
    await create(q, '');
  }
}

/** The lookup the expiry sweep calls (owned by steward_lookup, which reads every org's approvals and returns ids only). */
async function create(q: QueryRunner, notPaused: string): Promise<void> {
  await q.query(`DROP FUNCTION IF EXISTS steward_approvals_expired(int)`);
  await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
  await q.query(`
    CREATE FUNCTION steward_approvals_expired(p_limit int) RETURNS TABLE (org_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT a.org_id, a.id FROM approvals a WHERE a.state IN ('pending', 'approved') AND a.kind = 'action' AND a.expires_at <= now() ${notPaused}
       ORDER BY a.expires_at LIMIT least(greatest(p_limit, 1), 1000)
    $$`);
  await q.query(`ALTER FUNCTION steward_approvals_expired(int) OWNER TO steward_lookup`);
  await q.query(`REVOKE ALL ON FUNCTION steward_approvals_expired(int) FROM PUBLIC`);
  await q.query(`GRANT EXECUTE ON FUNCTION steward_approvals_expired(int) TO steward_app`);
  await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
}
