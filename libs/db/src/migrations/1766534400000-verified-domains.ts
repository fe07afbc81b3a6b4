import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Mail domains an org proved it holds (a DNS TXT record), each held by one org at most.
 *
 * An org's `domains` are what it says of itself: enough to tell its own mail from outsiders' in
 * its own policy, not enough to act on anyone else. Routing a sign-in by email domain to an org's
 * SSO, and creating accounts through SSO or SCIM, now take a verified domain: before, any org
 * could list another company's domain and have that company's people sent to its identity
 * provider, or create accounts in their names that their own company could then never add.
 *
 * Upgrading: no domain counts as verified until its org proves it (org settings, or
 * POST /v1/org/domains/verify). Until then sign-ins by email are not routed to the org's SSO (by
 * the org's slug they are), and SSO and SCIM add nobody new; members already in keep signing in.
 * Nothing listed before is taken as proven: any org could have listed any domain.
 */
export class VerifiedDomains1766534400000 implements MigrationInterface {
  name = 'VerifiedDomains1766534400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE verified_domains (
        domain text NOT NULL,
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        method varchar(16) NOT NULL DEFAULT 'dns',
        verified_by uuid,
        verified_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT verified_domains_pkey PRIMARY KEY (domain),
        CONSTRAINT verified_domains_domain CHECK (length(domain) BETWEEN 1 AND 253 AND domain = lower(domain)),
        CONSTRAINT verified_domains_method CHECK (method IN ('dns'))
      )`);
    await q.query(`CREATE INDEX verified_domains_org_idx ON verified_domains (org_id)`);
    await q.query(`ALTER TABLE verified_domains ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE verified_domains FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON verified_domains USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT, DELETE ON verified_domains TO steward_app`);
    // The pre-org SSO lookup (owned by steward_lookup) reads it, as it reads sso_configs.
    await q.query(`GRANT SELECT ON verified_domains TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON verified_domains FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_sso_org(p_domain text, p_slug text) RETURNS TABLE (org_id uuid, slug text)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT o.id, o.slug::text FROM orgs o JOIN sso_configs s ON s.org_id = o.id AND s.enabled
         WHERE (p_slug IS NOT NULL AND o.slug = p_slug)
            OR (p_domain IS NOT NULL AND EXISTS (SELECT 1 FROM verified_domains v WHERE v.domain = lower(p_domain) AND v.org_id = o.id))
         ORDER BY o.slug LIMIT 5
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_sso_org(p_domain text, p_slug text) RETURNS TABLE (org_id uuid, slug text)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT o.id, o.slug::text FROM orgs o JOIN sso_configs s ON s.org_id = o.id AND s.enabled
         WHERE (p_slug IS NOT NULL AND o.slug = p_slug) OR (p_domain IS NOT NULL AND lower(p_domain) = ANY (o.domains))
         ORDER BY o.slug LIMIT 5
      $$`);
    await q.query(`DROP TABLE verified_domains`);
  }
}
