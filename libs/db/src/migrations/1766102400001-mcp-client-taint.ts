import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The taint of an MCP client outlives its session: a client that read untrusted content still has
 * it in its model's context when it reconnects (after the idle timeout, or when an API process
 * restarted), so a new session of the same member, credential (the API key, or the OAuth client
 * across its token refreshes) and client name starts tainted, with the labels the last one had,
 * until `until` (GATEWAY_TAINT_HOURS after the last tainting read).
 */
export class McpClientTaint1766102400001 implements MigrationInterface {
  name = 'McpClientTaint1766102400001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mcp_client_taint (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        user_id uuid NOT NULL,
        holder varchar(200) NOT NULL,
        client_name varchar(200) NOT NULL,
        labels text[] NOT NULL DEFAULT '{}',
        until timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT mcp_client_taint_pkey PRIMARY KEY (org_id, user_id, holder, client_name)
      )`);
    await q.query(`ALTER TABLE mcp_client_taint ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE mcp_client_taint FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON mcp_client_taint USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON mcp_client_taint TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE mcp_client_taint`);
  }
}
