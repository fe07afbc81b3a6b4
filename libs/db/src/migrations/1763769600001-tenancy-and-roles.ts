import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The second wall behind org scoping in every query:
 * - `steward_app`, the runtime role (neither owner nor superuser), gets only the
 *   privileges it needs; audit_events is insert/select only and refuses UPDATE/DELETE;
 * - Row Level Security is enabled and FORCED on every tenant table (and on orgs and
 *   users), keyed on the transaction-local setting `app.org_id`; with no org set,
 *   every tenant table is empty;
 * - lookups made before the org is known go through narrow SECURITY DEFINER functions
 *   owned by `steward_lookup`, a NOLOGIN role that may only read the few tables they
 *   need (its own SELECT policies); nobody logs in as it and the runtime role is not a
 *   member of it. The migration owner itself stays subject to the forced policies.
 */

const TENANT_TABLES = [
  'memberships',
  'roles',
  'role_assignments',
  'groups',
  'group_members',
  'invitations',
  'api_keys',
  'sessions',
  'audit_events',
];

const RUNTIME_ROLE = 'steward_app';
const LOOKUP_ROLE = 'steward_lookup';
const LOOKUP_TABLES = ['users', 'memberships', 'orgs', 'sessions', 'api_keys', 'invitations'];

export class TenancyAndRoles1763769600001 implements MigrationInterface {
  name = 'TenancyAndRoles1763769600001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${RUNTIME_ROLE}') THEN
          CREATE ROLE ${RUNTIME_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
        END IF;
      END $$`);
    await q.query(`
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${LOOKUP_ROLE}') THEN
          CREATE ROLE ${LOOKUP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
        END IF;
      END $$`);
    await q.query(`
      DO $$ BEGIN
        IF NOT pg_has_role(current_user, '${LOOKUP_ROLE}', 'MEMBER') THEN
          EXECUTE format('GRANT ${LOOKUP_ROLE} TO %I', current_user);
        END IF;
      END $$`);
    await q.query(`GRANT USAGE ON SCHEMA public TO ${RUNTIME_ROLE}, ${LOOKUP_ROLE}`);

    await q.query(`
      CREATE FUNCTION steward_current_org() RETURNS uuid LANGUAGE sql STABLE AS
      $$ SELECT NULLIF(current_setting('app.org_id', true), '')::uuid $$`);
    await q.query(`
      CREATE FUNCTION steward_current_user() RETURNS uuid LANGUAGE sql STABLE AS
      $$ SELECT NULLIF(current_setting('app.user_id', true), '')::uuid $$`);

    for (const table of TENANT_TABLES) {
      await q.query(`ALTER TABLE "${table}" ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" FORCE ROW LEVEL SECURITY`);
      await q.query(
        `CREATE POLICY tenant_isolation ON "${table}" USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`,
      );
      const privileges = table === 'audit_events' ? 'SELECT, INSERT' : 'SELECT, INSERT, UPDATE, DELETE';
      await q.query(`GRANT ${privileges} ON "${table}" TO ${RUNTIME_ROLE}`);
    }

    // orgs: a transaction sees (and may create) only the org it is set to.
    await q.query(`ALTER TABLE orgs ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE orgs FORCE ROW LEVEL SECURITY`);
    await q.query(
      `CREATE POLICY tenant_isolation ON orgs USING (id = steward_current_org()) WITH CHECK (id = steward_current_org())`,
    );
    await q.query(`GRANT SELECT, INSERT, UPDATE ON orgs TO ${RUNTIME_ROLE}`);

    // users are global: visible to themselves and to the orgs they belong to.
    await q.query(`ALTER TABLE users ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE users FORCE ROW LEVEL SECURITY`);
    await q.query(`
      CREATE POLICY users_visible ON users FOR SELECT USING (
        id = steward_current_user()
        OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.org_id = steward_current_org())
      )`);
    await q.query(`CREATE POLICY users_insert ON users FOR INSERT WITH CHECK (id = steward_current_user())`);
    await q.query(
      `CREATE POLICY users_update_self ON users FOR UPDATE USING (id = steward_current_user()) WITH CHECK (id = steward_current_user())`,
    );
    await q.query(`GRANT SELECT, INSERT, UPDATE ON users TO ${RUNTIME_ROLE}`);

    for (const table of LOOKUP_TABLES) {
      await q.query(`GRANT SELECT ON "${table}" TO ${LOOKUP_ROLE}`);
      await q.query(`CREATE POLICY narrow_lookup ON "${table}" FOR SELECT TO ${LOOKUP_ROLE} USING (true)`);
    }
    await q.query(`GRANT SELECT, INSERT, UPDATE ON setup_state TO ${LOOKUP_ROLE}`);

    // The audit trail is append-only, for everyone including the owner.
    await q.query(`
      CREATE FUNCTION steward_refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await q.query(`
      CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION steward_refuse_audit_change()`);
    await q.query(`
      CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION steward_refuse_audit_change()`);

    // Narrow lookups for the moments before the org is known. Each returns the
    // least it can, only for a valid credential, and is reviewed on its own.
    const definer = `LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp`;
    await q.query(`
      CREATE FUNCTION steward_auth_user_by_email(p_email text)
      RETURNS TABLE (user_id uuid, password_hash text, totp_secret_sealed text, totp_enabled boolean, totp_last_step bigint)
      ${definer} AS $$
        SELECT id, password_hash, totp_secret_sealed, totp_enabled_at IS NOT NULL, totp_last_step
        FROM users WHERE email = lower(p_email)
      $$`);
    await q.query(`
      CREATE FUNCTION steward_auth_user_orgs(p_user_id uuid)
      RETURNS TABLE (org_id uuid, slug text, status text)
      ${definer} AS $$
        SELECT o.id, o.slug::text, m.status::text FROM memberships m JOIN orgs o ON o.id = m.org_id
        WHERE m.user_id = p_user_id ORDER BY o.slug
      $$`);
    await q.query(`
      CREATE FUNCTION steward_auth_session(p_token_hash bytea)
      RETURNS TABLE (session_id uuid, org_id uuid, user_id uuid, expires_at timestamptz, mfa_at timestamptz)
      ${definer} AS $$
        SELECT id, org_id, user_id, expires_at, mfa_at FROM sessions
        WHERE token_hash = p_token_hash AND revoked_at IS NULL AND expires_at > now()
      $$`);
    await q.query(`
      CREATE FUNCTION steward_auth_api_key(p_key_hash bytea)
      RETURNS TABLE (key_id uuid, org_id uuid, user_id uuid, scopes text[], expires_at timestamptz)
      ${definer} AS $$
        SELECT id, org_id, user_id, scopes, expires_at FROM api_keys
        WHERE key_hash = p_key_hash AND revoked_at IS NULL AND expires_at > now()
      $$`);
    await q.query(`
      CREATE FUNCTION steward_invitation_by_token(p_token_hash bytea)
      RETURNS TABLE (invitation_id uuid, org_id uuid, email text, expires_at timestamptz)
      ${definer} AS $$
        SELECT id, org_id, email::text, expires_at FROM invitations
        WHERE token_hash = p_token_hash AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
      $$`);
    await q.query(`
      CREATE FUNCTION steward_setup_status()
      RETURNS TABLE (completed boolean, token_expires_at timestamptz)
      ${definer} AS $$
        SELECT s.completed_at IS NOT NULL OR EXISTS (SELECT 1 FROM orgs), s.token_expires_at
        FROM (SELECT 1) one LEFT JOIN setup_state s ON s.id = 1
      $$`);
    await q.query(`
      CREATE FUNCTION steward_setup_issue_token(p_token_hash bytea, p_expires_at timestamptz)
      RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM orgs) OR EXISTS (SELECT 1 FROM setup_state WHERE completed_at IS NOT NULL) THEN
          RETURN false;
        END IF;
        INSERT INTO setup_state (id, token_hash, token_expires_at) VALUES (1, p_token_hash, p_expires_at)
        ON CONFLICT (id) DO UPDATE SET token_hash = EXCLUDED.token_hash, token_expires_at = EXCLUDED.token_expires_at;
        RETURN true;
      END $$`);
    await q.query(`
      CREATE FUNCTION steward_setup_claim(p_token_hash bytea)
      RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      BEGIN
        UPDATE setup_state SET completed_at = now(), token_hash = NULL
        WHERE id = 1 AND completed_at IS NULL AND token_hash = p_token_hash AND token_expires_at > now()
          AND NOT EXISTS (SELECT 1 FROM orgs);
        RETURN FOUND;
      END $$`);
    const fns = [
      'steward_current_org()',
      'steward_current_user()',
      'steward_auth_user_by_email(text)',
      'steward_auth_user_orgs(uuid)',
      'steward_auth_session(bytea)',
      'steward_auth_api_key(bytea)',
      'steward_invitation_by_token(bytea)',
      'steward_setup_status()',
      'steward_setup_issue_token(bytea, timestamptz)',
      'steward_setup_claim(bytea)',
    ];
    // Changing a function's owner needs the new owner to hold CREATE on the schema, for that moment only.
    await q.query(`GRANT CREATE ON SCHEMA public TO ${LOOKUP_ROLE}`);
    for (const fn of fns) {
      if (fn !== 'steward_current_org()' && fn !== 'steward_current_user()') {
        await q.query(`ALTER FUNCTION ${fn} OWNER TO ${LOOKUP_ROLE}`);
      }
      await q.query(`REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`);
      await q.query(`GRANT EXECUTE ON FUNCTION ${fn} TO ${RUNTIME_ROLE}`);
    }
    await q.query(`REVOKE CREATE ON SCHEMA public FROM ${LOOKUP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const fn of [
      'steward_setup_claim(bytea)',
      'steward_setup_issue_token(bytea, timestamptz)',
      'steward_setup_status()',
      'steward_invitation_by_token(bytea)',
      'steward_auth_api_key(bytea)',
      'steward_auth_session(bytea)',
      'steward_auth_user_orgs(uuid)',
      'steward_auth_user_by_email(text)',
    ]) {
      await q.query(`DROP FUNCTION IF EXISTS ${fn}`);
    }
    for (const table of LOOKUP_TABLES) {
      await q.query(`DROP POLICY IF EXISTS narrow_lookup ON "${table}"`);
      await q.query(`REVOKE ALL ON "${table}" FROM ${LOOKUP_ROLE}`);
    }
    await q.query(`REVOKE ALL ON setup_state FROM ${LOOKUP_ROLE}`);
    await q.query(`DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events`);
    await q.query(`DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events`);
    await q.query(`DROP FUNCTION IF EXISTS steward_refuse_audit_change()`);
    await q.query(`DROP POLICY IF EXISTS users_update_self ON users`);
    await q.query(`DROP POLICY IF EXISTS users_insert ON users`);
    await q.query(`DROP POLICY IF EXISTS users_visible ON users`);
    await q.query(`ALTER TABLE users NO FORCE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE users DISABLE ROW LEVEL SECURITY`);
    await q.query(`DROP POLICY IF EXISTS tenant_isolation ON orgs`);
    await q.query(`ALTER TABLE orgs NO FORCE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE orgs DISABLE ROW LEVEL SECURITY`);
    for (const table of TENANT_TABLES) {
      await q.query(`DROP POLICY IF EXISTS tenant_isolation ON "${table}"`);
      await q.query(`ALTER TABLE "${table}" NO FORCE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" DISABLE ROW LEVEL SECURITY`);
      await q.query(`REVOKE ALL ON "${table}" FROM ${RUNTIME_ROLE}`);
    }
    await q.query(`REVOKE ALL ON orgs, users FROM ${RUNTIME_ROLE}`);
    await q.query(`DROP FUNCTION IF EXISTS steward_current_user()`);
    await q.query(`DROP FUNCTION IF EXISTS steward_current_org()`);
  }
}
