import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Enterprise identity: OpenID Connect sign-in per org and SCIM 2.0 provisioning.
 * - `sso_configs`: one OIDC provider per org (issuer, client id, the client secret sealed under
 *   the KEK with AAD bound to the org), the claim carrying groups and how its values map to
 *   Steward groups, the role given to people created just in time; `verified_at` is set by the
 *   first successful SSO sign-in (password sign-in can only be switched off after it).
 * - `sso_identities`: (issuer, subject) → user, per org, so a later sign-in follows the
 *   provider's stable subject rather than a changeable email.
 * - `scim_tokens`: bearer tokens of the org's provisioning client, stored as HMAC under the
 *   pepper like API keys.
 * - SCIM ids: memberships and groups get an `scim_external_id` (the IdP's externalId).
 * - `orgs.password_sign_in`: off = members sign in only through SSO.
 * Pre-org lookups (two narrow SECURITY DEFINER functions owned by steward_lookup):
 * `steward_sso_org(domain, slug)` (which org's SSO serves an email domain or a slug; only orgs
 * with SSO enabled) and `steward_auth_scim_token(hash)` (the org of a live SCIM token).
 */
export class SsoAndScim1764979200000 implements MigrationInterface {
  name = 'SsoAndScim1764979200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orgs ADD COLUMN password_sign_in boolean NOT NULL DEFAULT true`);
    await q.query(`
      CREATE TABLE sso_configs (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        issuer text NOT NULL CHECK (length(issuer) <= 2000),
        client_id text NOT NULL CHECK (length(client_id) <= 500),
        client_secret_sealed text,
        enabled boolean NOT NULL DEFAULT true,
        groups_claim text NOT NULL DEFAULT 'groups' CHECK (length(groups_claim) <= 100),
        group_map jsonb NOT NULL DEFAULT '{}',
        default_role text NOT NULL DEFAULT 'member',
        verified_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT sso_configs_pkey PRIMARY KEY (org_id)
      )`);
    await q.query(`
      CREATE TABLE sso_identities (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        issuer text NOT NULL,
        subject text NOT NULL CHECK (length(subject) <= 255),
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        last_login_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT sso_identities_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT sso_identities_subject_key UNIQUE (org_id, issuer, subject)
      )`);
    await q.query(`CREATE INDEX sso_identities_user_idx ON sso_identities (org_id, user_id)`);
    await q.query(`
      CREATE TABLE scim_tokens (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        name text NOT NULL CHECK (length(name) <= 100),
        hint text NOT NULL,
        token_hash bytea NOT NULL,
        created_by uuid REFERENCES users(id) ON DELETE SET NULL,
        last_used_at timestamptz,
        revoked_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT scim_tokens_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT scim_tokens_hash_key UNIQUE (token_hash)
      )`);
    await q.query(`ALTER TABLE memberships ADD COLUMN scim_external_id character varying(255)`);
    await q.query(`CREATE UNIQUE INDEX memberships_scim_external_idx ON memberships (org_id, scim_external_id) WHERE "scim_external_id" IS NOT NULL`);
    await q.query(`ALTER TABLE groups ADD COLUMN scim_external_id character varying(255)`);
    await q.query(`CREATE UNIQUE INDEX groups_scim_external_idx ON groups (org_id, scim_external_id) WHERE "scim_external_id" IS NOT NULL`);

    for (const table of ['sso_configs', 'sso_identities', 'scim_tokens']) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
      await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO steward_app`);
    }
    for (const table of ['sso_configs', 'scim_tokens']) {
      await q.query(`GRANT SELECT ON ${table} TO steward_lookup`);
      await q.query(`CREATE POLICY narrow_lookup ON ${table} FOR SELECT TO steward_lookup USING (true)`);
    }
    const definer = `LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp`;
    await q.query(`
      CREATE FUNCTION steward_sso_org(p_domain text, p_slug text) RETURNS TABLE (org_id uuid, slug text)
      ${definer} AS $$
        SELECT o.id, o.slug::text FROM orgs o JOIN sso_configs s ON s.org_id = o.id AND s.enabled
         WHERE (p_slug IS NOT NULL AND o.slug = p_slug) OR (p_domain IS NOT NULL AND lower(p_domain) = ANY (o.domains))
         ORDER BY o.slug LIMIT 5
      $$`);
    await q.query(`
      CREATE FUNCTION steward_auth_scim_token(p_hash bytea) RETURNS TABLE (token_id uuid, org_id uuid)
      ${definer} AS $$
        SELECT id, org_id FROM scim_tokens WHERE token_hash = p_hash AND revoked_at IS NULL
      $$`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    for (const fn of ['steward_sso_org(text, text)', 'steward_auth_scim_token(bytea)']) {
      await q.query(`ALTER FUNCTION ${fn} OWNER TO steward_lookup`);
      await q.query(`REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`);
      await q.query(`GRANT EXECUTE ON FUNCTION ${fn} TO steward_app`);
    }
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_auth_scim_token(bytea)`);
    await q.query(`DROP FUNCTION IF EXISTS steward_sso_org(text, text)`);
    await q.query(`DROP TABLE IF EXISTS scim_tokens`);
    await q.query(`DROP TABLE IF EXISTS sso_identities`);
    await q.query(`DROP TABLE IF EXISTS sso_configs`);
    await q.query(`DROP INDEX IF EXISTS groups_scim_external_idx`);
    await q.query(`ALTER TABLE groups DROP COLUMN IF EXISTS scim_external_id`);
    await q.query(`DROP INDEX IF EXISTS memberships_scim_external_idx`);
    await q.query(`ALTER TABLE memberships DROP COLUMN IF EXISTS scim_external_id`);
    await q.query(`ALTER TABLE orgs DROP COLUMN IF EXISTS password_sign_in`);
  }
}
