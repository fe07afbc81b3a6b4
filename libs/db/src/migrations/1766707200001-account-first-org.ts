import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The org an account belongs to first (its oldest membership), read across orgs: an account with no
 * password was made by an org's single sign-on or SCIM, which made that first membership with it.
 * Its second factor is that org's sign-in to add; another org whose members it joined later (whose
 * identity provider can also open sessions as it) does not get to set one, and with it lock the
 * account out of step-up in its own org.
 */
export class AccountFirstOrg1766707200001 implements MigrationInterface {
  name = 'AccountFirstOrg1766707200001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION steward_account_first_org(p_user uuid) RETURNS uuid
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT m.org_id FROM memberships m WHERE m.user_id = p_user ORDER BY m.created_at, m.org_id LIMIT 1
      $$`);
    // Changing a function's owner needs the new owner to hold CREATE on the schema, for that moment only.
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`ALTER FUNCTION steward_account_first_org(uuid) OWNER TO steward_lookup`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_account_first_org(uuid) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_account_first_org(uuid) TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_account_first_org(uuid)`);
  }
}
