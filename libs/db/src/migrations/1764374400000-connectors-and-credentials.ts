import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Connectors installed per org (built-in, catalog or any remote MCP server), their discovered
 * tools with the admin's action mapping and pinned definitions, the credential vault (one
 * random data key per credential, wrapped by the key-encryption key; AAD binds org, connector
 * and credential), OAuth authorisation states (single use, expiring, bound to user and org) and
 * the per-org egress allowlist (hosts an admin allowed on private addresses).
 */
export class ConnectorsAndCredentials1764374400000 implements MigrationInterface {
  name = 'ConnectorsAndCredentials1764374400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE connectors (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        catalog_id varchar(64),
        kind text NOT NULL CHECK (kind IN ('builtin', 'remote')),
        name varchar(200) NOT NULL,
        url text,
        auth jsonb NOT NULL,
        credential_scope text NOT NULL CHECK (credential_scope IN ('org', 'user')),
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unreachable', 'needs_credential')),
        last_error text,
        discovered_at timestamptz,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT connectors_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT connectors_name_key UNIQUE (org_id, name)
      )`);
    await q.query(`
      CREATE TABLE connector_tools (
        org_id uuid NOT NULL,
        connector_id uuid NOT NULL,
        name varchar(200) NOT NULL,
        definition jsonb NOT NULL,
        definition_hash text NOT NULL,
        action varchar(64) NOT NULL DEFAULT 'unknown',
        extract jsonb,
        status text NOT NULL CHECK (status IN ('pending', 'approved', 'held', 'removed')),
        approved_hash text,
        approved_definition jsonb,
        approved_by uuid,
        approved_at timestamptz,
        flags jsonb NOT NULL DEFAULT '[]',
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT connector_tools_pkey PRIMARY KEY (org_id, connector_id, name),
        CONSTRAINT connector_tools_connector_fk FOREIGN KEY (org_id, connector_id) REFERENCES connectors(org_id, id) ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE credentials (
        org_id uuid NOT NULL,
        id uuid NOT NULL,
        connector_id uuid NOT NULL,
        user_id uuid,
        kind text NOT NULL CHECK (kind IN ('secret', 'oauth2', 'oauth_client')),
        status text NOT NULL CHECK (status IN ('active', 'needs_reauth', 'revoked')),
        sealed bytea,
        wrapped_key text,
        expires_at timestamptz,
        last_error text,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        rotated_at timestamptz,
        refreshed_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz,
        revoked_by uuid,
        CONSTRAINT credentials_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT credentials_connector_fk FOREIGN KEY (org_id, connector_id) REFERENCES connectors(org_id, id) ON DELETE CASCADE,
        CONSTRAINT credentials_material CHECK ((status = 'revoked') = (sealed IS NULL AND wrapped_key IS NULL))
      )`);
    // One live credential per connector, kind and owner (the org, or one user).
    await q.query(`CREATE UNIQUE INDEX credentials_live_key ON credentials (org_id, connector_id, kind, (coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid))) WHERE status <> 'revoked'`);
    await q.query(`CREATE INDEX credentials_user_idx ON credentials (org_id, user_id)`);
    await q.query(`
      CREATE TABLE oauth_states (
        org_id uuid NOT NULL,
        id uuid NOT NULL,
        state_hash bytea NOT NULL,
        connector_id uuid NOT NULL,
        user_id uuid NOT NULL,
        scope text NOT NULL CHECK (scope IN ('org', 'user')),
        redirect_uri text NOT NULL,
        verifier_sealed bytea NOT NULL,
        wrapped_key text NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT oauth_states_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT oauth_states_hash_key UNIQUE (org_id, state_hash),
        CONSTRAINT oauth_states_connector_fk FOREIGN KEY (org_id, connector_id) REFERENCES connectors(org_id, id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX oauth_states_connector_idx ON oauth_states (org_id, connector_id)`);
    await q.query(`
      CREATE TABLE egress_allow_hosts (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        host varchar(253) NOT NULL,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT egress_allow_hosts_pkey PRIMARY KEY (org_id, host)
      )`);
    for (const table of ['connectors', 'connector_tools', 'credentials', 'oauth_states', 'egress_allow_hosts']) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
      await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO steward_app`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['egress_allow_hosts', 'oauth_states', 'credentials', 'connector_tools', 'connectors']) await q.query(`DROP TABLE ${table}`);
  }
}
