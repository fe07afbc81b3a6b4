import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * KEK rotation for the secrets sealed directly under the key-encryption key: users' TOTP
 * secrets (a user belongs to no one org, so the per-org re-wrap job cannot reach them).
 * Three narrow SECURITY DEFINER functions owned by `steward_lookup`, which may update that one
 * column and nothing else:
 * - `steward_user_secrets_to_reseal(current_version, after, limit)`: the sealed values (never
 *   clear text: the KEK is not in the database) still under an older version, by user id;
 * - `steward_reseal_user_secret(user, old, new)`: compare-and-set, so a secret the user replaced
 *   meanwhile is never overwritten;
 * - `steward_user_secret_versions()`: how many secrets each KEK version still seals.
 */
export class UserSecretRotation1764806400000 implements MigrationInterface {
  name = 'UserSecretRotation1764806400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`GRANT UPDATE (totp_secret_sealed) ON users TO steward_lookup`);
    // The users table's other policies name these (PostgreSQL evaluates every policy that applies).
    await q.query(`GRANT EXECUTE ON FUNCTION steward_current_user(), steward_current_org() TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_reseal ON users FOR UPDATE TO steward_lookup USING (totp_secret_sealed IS NOT NULL) WITH CHECK (totp_secret_sealed IS NOT NULL)`);
    await q.query(`
      CREATE FUNCTION steward_user_secrets_to_reseal(p_current text, p_after uuid, p_limit int) RETURNS TABLE (user_id uuid, sealed text)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT id, totp_secret_sealed FROM users
         WHERE totp_secret_sealed IS NOT NULL AND split_part(totp_secret_sealed, '.', 1) <> p_current
           AND (p_after IS NULL OR id > p_after)
         ORDER BY id LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`
      CREATE FUNCTION steward_reseal_user_secret(p_user uuid, p_old text, p_new text) RETURNS boolean
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
      BEGIN
        IF p_new IS NULL OR p_new !~ '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*$' THEN
          RAISE EXCEPTION 'not a sealed value' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE users SET totp_secret_sealed = p_new WHERE id = p_user AND totp_secret_sealed = p_old;
        RETURN FOUND;
      END $$`);
    await q.query(`
      CREATE FUNCTION steward_user_secret_versions() RETURNS TABLE (version text, n int)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT split_part(totp_secret_sealed, '.', 1), count(*)::int FROM users WHERE totp_secret_sealed IS NOT NULL GROUP BY 1 ORDER BY 1
      $$`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    for (const fn of ['steward_user_secrets_to_reseal(text, uuid, int)', 'steward_reseal_user_secret(uuid, text, text)', 'steward_user_secret_versions()']) {
      await q.query(`ALTER FUNCTION ${fn} OWNER TO steward_lookup`);
      await q.query(`REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`);
      await q.query(`GRANT EXECUTE ON FUNCTION ${fn} TO steward_app`);
    }
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_user_secret_versions()`);
    await q.query(`DROP FUNCTION IF EXISTS steward_reseal_user_secret(uuid, text, text)`);
    await q.query(`DROP FUNCTION IF EXISTS steward_user_secrets_to_reseal(text, uuid, int)`);
    await q.query(`DROP POLICY IF EXISTS narrow_reseal ON users`);
    await q.query(`REVOKE UPDATE (totp_secret_sealed) ON users FROM steward_lookup`);
    await q.query(`REVOKE EXECUTE ON FUNCTION steward_current_user(), steward_current_org() FROM steward_lookup`);
  }
}
