import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Account recovery: a person who lost their password (or their authenticator) gets a one-time
 * link from an owner or admin of their org, who may recover only accounts that are that org's
 * alone (the operator recovers any account from the command line: created_by NULL). Stored as an HMAC of the token, like invitations; looked up by it before the org is known
 * through one narrow function (the pending, unexpired recovery of a token, nothing else).
 */
export class AccountRecoveries1766880000000 implements MigrationInterface {
  name = 'AccountRecoveries1766880000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE account_recoveries (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        token_hash bytea NOT NULL,
        second_factor boolean NOT NULL DEFAULT false,
        -- Who issued it: an owner or admin of the org; NULL for the operator (npm run account:recover).
        created_by uuid REFERENCES users(id),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        revoked_at timestamptz,
        CONSTRAINT account_recoveries_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT account_recoveries_token_hash_key UNIQUE (token_hash)
      )`);
    await q.query(`CREATE INDEX account_recoveries_org_user ON account_recoveries (org_id, user_id, created_at DESC)`);
    await q.query(`CREATE INDEX account_recoveries_user ON account_recoveries (user_id)`);
    await q.query(`CREATE INDEX account_recoveries_created_by ON account_recoveries (created_by)`);
    await q.query(`ALTER TABLE account_recoveries ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE account_recoveries FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON account_recoveries USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT, UPDATE ON account_recoveries TO steward_app`);
    await q.query(`GRANT SELECT ON account_recoveries TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON account_recoveries FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`
      CREATE FUNCTION steward_recovery_by_token(p_token_hash bytea)
      RETURNS TABLE (recovery_id uuid, org_id uuid, user_id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT id, org_id, user_id FROM account_recoveries
        WHERE token_hash = p_token_hash AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
      $$`);
    // Changing a function's owner needs the new owner to hold CREATE on the schema, for that moment only.
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    await q.query(`ALTER FUNCTION steward_recovery_by_token(bytea) OWNER TO steward_lookup`);
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
    await q.query(`REVOKE ALL ON FUNCTION steward_recovery_by_token(bytea) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_recovery_by_token(bytea) TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_recovery_by_token(bytea)`);
    await q.query(`DROP TABLE IF EXISTS account_recoveries`);
  }
}
