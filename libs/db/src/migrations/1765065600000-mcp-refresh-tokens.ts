import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Refresh tokens for MCP clients (OAuth 2.1 §4.3.1: public clients get rotating refresh tokens).
 * - `mcp_refresh_tokens`: one row per refresh token, HMAC-SHA-256 under the pepper, in a family
 *   (one family per consent). A refresh marks its token used and issues the next one in the same
 *   family; presenting a used (rotated) token again revokes the whole family, access tokens too.
 * - `mcp_access_tokens.family_id`: the family an access token was issued in (so a reuse or a
 *   revocation of the refresh token ends the access tokens it produced).
 * - `steward_auth_mcp_refresh(hash)`: the narrow lookup the token and revocation endpoints use
 *   before the org is known; it returns used and revoked tokens too (reuse must be detected).
 */
export class McpRefreshTokens1765065600000 implements MigrationInterface {
  name = 'McpRefreshTokens1765065600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE mcp_access_tokens ADD COLUMN family_id uuid`);
    await q.query(`CREATE INDEX mcp_access_tokens_family_idx ON mcp_access_tokens (org_id, family_id)`);
    await q.query(`
      CREATE TABLE mcp_refresh_tokens (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        family_id uuid NOT NULL,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        client_id text NOT NULL REFERENCES mcp_oauth_clients(id) ON DELETE CASCADE,
        token_hash bytea NOT NULL,
        resource text NOT NULL CHECK (length(resource) <= 2000),
        scope text NOT NULL CHECK (length(scope) <= 200),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        revoked_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT mcp_refresh_tokens_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT mcp_refresh_tokens_hash_key UNIQUE (token_hash)
      )`);
    await q.query(`CREATE INDEX mcp_refresh_tokens_family_idx ON mcp_refresh_tokens (org_id, family_id)`);
    await q.query(`CREATE INDEX mcp_refresh_tokens_user_idx ON mcp_refresh_tokens (org_id, user_id)`);
    await q.query(`CREATE INDEX mcp_refresh_tokens_client_idx ON mcp_refresh_tokens (client_id)`);
    await q.query(`ALTER TABLE mcp_refresh_tokens ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE mcp_refresh_tokens FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON mcp_refresh_tokens USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT, UPDATE ON mcp_refresh_tokens TO steward_app`);
    await q.query(`GRANT SELECT ON mcp_refresh_tokens TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON mcp_refresh_tokens FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`
      CREATE FUNCTION steward_auth_mcp_refresh(p_hash bytea)
      RETURNS TABLE (token_id uuid, org_id uuid, family_id uuid, user_id uuid, client_id text, resource text, scope text, expires_at timestamptz, used_at timestamptz, revoked_at timestamptz)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT id, org_id, family_id, user_id, client_id, resource, scope, expires_at, used_at, revoked_at FROM mcp_refresh_tokens
         WHERE token_hash = p_hash
      $$`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`ALTER FUNCTION steward_auth_mcp_refresh(bytea) OWNER TO steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_auth_mcp_refresh(bytea) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_auth_mcp_refresh(bytea) TO steward_app`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_auth_mcp_refresh(bytea)`);
    await q.query(`DROP TABLE IF EXISTS mcp_refresh_tokens`);
    await q.query(`DROP INDEX IF EXISTS mcp_access_tokens_family_idx`);
    await q.query(`ALTER TABLE mcp_access_tokens DROP COLUMN IF EXISTS family_id`);
  }
}
