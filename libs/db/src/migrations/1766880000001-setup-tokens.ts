import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * First-run setup tokens, one per API process that started while no org existed: each prints its
 * own, and every one stays valid until it expires or setup is done. (One token overwritten at every
 * start left only the last replica's valid: with two API replicas, the token read from one pod's
 * log failed half the time, and any restart of a pod voided the token in use.) At most 20 live
 * ones are kept; expired ones are pruned at each issue.
 */
export class SetupTokens1766880000001 implements MigrationInterface {
  name = 'SetupTokens1766880000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE setup_tokens (
        token_hash bytea NOT NULL,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT setup_tokens_pkey PRIMARY KEY (token_hash)
      )`);
    await q.query(`GRANT SELECT, INSERT, DELETE ON setup_tokens TO steward_lookup`);
    // A token issued by the earlier function (still unexpired, setup not done) stays valid.
    await q.query(`INSERT INTO setup_tokens (token_hash, expires_at) SELECT token_hash, token_expires_at FROM setup_state WHERE id = 1 AND token_hash IS NOT NULL AND completed_at IS NULL AND token_expires_at > now()`);
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_setup_issue_token(p_token_hash bytea, p_expires_at timestamptz)
      RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM orgs) OR EXISTS (SELECT 1 FROM setup_state WHERE completed_at IS NOT NULL) THEN
          RETURN false;
        END IF;
        DELETE FROM setup_tokens WHERE expires_at <= now();
        INSERT INTO setup_tokens (token_hash, expires_at) VALUES (p_token_hash, p_expires_at);
        DELETE FROM setup_tokens WHERE token_hash IN (SELECT token_hash FROM setup_tokens ORDER BY created_at DESC, token_hash OFFSET 20);
        RETURN true;
      END $$`);
    // Claimed once: a second claim (the same token or another) waits on setup_state's row and then finds it completed.
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_setup_claim(p_token_hash bytea)
      RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM orgs) OR NOT EXISTS (SELECT 1 FROM setup_tokens WHERE token_hash = p_token_hash AND expires_at > now()) THEN
          RETURN false;
        END IF;
        INSERT INTO setup_state (id, completed_at) VALUES (1, now())
        ON CONFLICT (id) DO UPDATE SET completed_at = now(), token_hash = NULL WHERE setup_state.completed_at IS NULL;
        IF NOT FOUND THEN
          RETURN false;
        END IF;
        DELETE FROM setup_tokens;
        RETURN true;
      END $$`);
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_setup_status()
      RETURNS TABLE (completed boolean, token_expires_at timestamptz)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT COALESCE(s.completed_at IS NOT NULL, false) OR EXISTS (SELECT 1 FROM orgs), (SELECT max(expires_at) FROM setup_tokens)
        FROM (SELECT 1) one LEFT JOIN setup_state s ON s.id = 1
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_setup_issue_token(p_token_hash bytea, p_expires_at timestamptz)
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
      CREATE OR REPLACE FUNCTION steward_setup_claim(p_token_hash bytea)
      RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      BEGIN
        UPDATE setup_state SET completed_at = now(), token_hash = NULL
        WHERE id = 1 AND completed_at IS NULL AND token_hash = p_token_hash AND token_expires_at > now()
          AND NOT EXISTS (SELECT 1 FROM orgs);
        RETURN FOUND;
      END $$`);
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_setup_status()
      RETURNS TABLE (completed boolean, token_expires_at timestamptz)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT s.completed_at IS NOT NULL OR EXISTS (SELECT 1 FROM orgs), s.token_expires_at
        FROM (SELECT 1) one LEFT JOIN setup_state s ON s.id = 1
      $$`);
    await q.query(`DROP TABLE IF EXISTS setup_tokens`);
  }
}
