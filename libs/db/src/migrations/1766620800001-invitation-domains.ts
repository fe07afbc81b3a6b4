import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Whether a mail domain is verified by another org than the given one, read before any org is set
 * (an invitation's acceptance): a new account at a domain another org proved its own is that org's
 * to make (its single sign-on or SCIM), not whoever holds an invitation's token.
 */
export class InvitationDomains1766620800001 implements MigrationInterface {
  name = 'InvitationDomains1766620800001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION steward_domain_held_elsewhere(p_domain text, p_org uuid) RETURNS boolean
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT EXISTS (SELECT 1 FROM verified_domains v WHERE v.domain = lower(p_domain) AND v.org_id <> p_org)
      $$`);
    // Changing a function's owner needs the new owner to hold CREATE on the schema, for that moment only.
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`ALTER FUNCTION steward_domain_held_elsewhere(text, uuid) OWNER TO steward_lookup`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_domain_held_elsewhere(text, uuid) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_domain_held_elsewhere(text, uuid) TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_domain_held_elsewhere(text, uuid)`);
  }
}
