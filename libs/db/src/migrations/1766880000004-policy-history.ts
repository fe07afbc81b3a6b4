import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A policy's revision history cannot be rewritten by the runtime role: only a draft's document
 * changes, versions only go draft → active → archived, and only drafts are deleted. (The API never
 * does otherwise; this is the wall behind it, against SQL injection anywhere in the app or an
 * insider with the runtime role's credentials: an active version edited in place would change what
 * agents may do with no trace in the audit trail.) The table's owner (migrations) and superusers
 * are not held: they own the schema anyway.
 */
export class PolicyHistory1766880000004 implements MigrationInterface {
  name = 'PolicyHistory1766880000004';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION steward_policy_history_guard() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
           OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
          RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        IF TG_OP = 'DELETE' THEN
          IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'policy version % is %: only drafts are deleted', OLD.version, OLD.status USING ERRCODE = 'insufficient_privilege';
          END IF;
          RETURN OLD;
        END IF;
        IF OLD.status <> 'draft' AND (NEW.document IS DISTINCT FROM OLD.document OR NEW.version <> OLD.version OR NEW.org_id <> OLD.org_id) THEN
          RAISE EXCEPTION 'policy version % is %: its document is history and does not change', OLD.version, OLD.status USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NOT (NEW.status = OLD.status OR (OLD.status = 'draft' AND NEW.status = 'active') OR (OLD.status = 'active' AND NEW.status = 'archived')) THEN
          RAISE EXCEPTION 'policy version % cannot go from % to %', OLD.version, OLD.status, NEW.status USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`CREATE TRIGGER policies_history_guard BEFORE UPDATE OR DELETE ON policies FOR EACH ROW EXECUTE FUNCTION steward_policy_history_guard()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS policies_history_guard ON policies`);
    await q.query(`DROP FUNCTION IF EXISTS steward_policy_history_guard()`);
  }
}
