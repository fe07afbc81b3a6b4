import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * MCP authorization (OAuth 2.1 authorization server side of the MCP authorization spec):
 * - `mcp_oauth_clients`: clients registered dynamically (RFC 7591) by anyone, before any org is
 *   known: public clients (PKCE, no secret), their exact redirect URIs and name. Holds no org
 *   data, so no RLS; the runtime role may only read and insert.
 * - `mcp_access_tokens`: access tokens a member granted a client, bound to (org, user, client,
 *   resource), stored as HMAC-SHA-256 under the pepper, expiring, revocable. Tenant table.
 * - `steward_auth_mcp_token(hash)`: the narrow lookup the MCP gateway uses before the org is known.
 */
export class McpAuthorization1764979200001 implements MigrationInterface {
  name = 'McpAuthorization1764979200001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mcp_oauth_clients (
        id text NOT NULL CHECK (length(id) <= 100),
        client_name text CHECK (length(client_name) <= 200),
        redirect_uris text[] NOT NULL CHECK (cardinality(redirect_uris) BETWEEN 1 AND 10),
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT mcp_oauth_clients_pkey PRIMARY KEY (id)
      )`);
    await q.query(`GRANT SELECT, INSERT ON mcp_oauth_clients TO steward_app`);
    await q.query(`
      CREATE TABLE mcp_access_tokens (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        client_id text NOT NULL REFERENCES mcp_oauth_clients(id) ON DELETE CASCADE,
        token_hash bytea NOT NULL,
        resource text NOT NULL CHECK (length(resource) <= 2000),
        scope text NOT NULL CHECK (length(scope) <= 200),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT mcp_access_tokens_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT mcp_access_tokens_hash_key UNIQUE (token_hash)
      )`);
    await q.query(`CREATE INDEX mcp_access_tokens_user_idx ON mcp_access_tokens (org_id, user_id)`);
    await q.query(`CREATE INDEX mcp_access_tokens_client_idx ON mcp_access_tokens (client_id)`);
    await q.query(`ALTER TABLE mcp_access_tokens ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE mcp_access_tokens FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON mcp_access_tokens USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT, UPDATE ON mcp_access_tokens TO steward_app`);
    await q.query(`GRANT SELECT ON mcp_access_tokens TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON mcp_access_tokens FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`
      CREATE FUNCTION steward_auth_mcp_token(p_hash bytea)
      RETURNS TABLE (token_id uuid, org_id uuid, user_id uuid, client_id text, resource text, scope text, expires_at timestamptz)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT id, org_id, user_id, client_id, resource, scope, expires_at FROM mcp_access_tokens
         WHERE token_hash = p_hash AND revoked_at IS NULL AND expires_at > now()
      $$`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`ALTER FUNCTION steward_auth_mcp_token(bytea) OWNER TO steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_auth_mcp_token(bytea) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_auth_mcp_token(bytea) TO steward_app`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_auth_mcp_token(bytea)`);
    await q.query(`DROP TABLE IF EXISTS mcp_access_tokens`);
    await q.query(`DROP TABLE IF EXISTS mcp_oauth_clients`);
  }
}
