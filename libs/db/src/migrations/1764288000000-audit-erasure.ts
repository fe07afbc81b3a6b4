import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Erasure of one person's audit fields by crypto-shredding, the way retention shreds a month:
 * sensitive fields about a person (the acting user, or the person the gate names) are sealed
 * under a data key of their own per org and month (`subject`), with a `generation` so that
 * events recorded after an erasure get a fresh key. An erasure destroys every key of the subject
 * and leaves a row in audit_erasures (the chain still verifies: it covers the ciphertext).
 */
export class AuditErasure1764288000000 implements MigrationInterface {
  name = 'AuditErasure1764288000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_keys ADD COLUMN subject text NOT NULL DEFAULT '', ADD COLUMN generation integer NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE audit_keys DROP CONSTRAINT audit_keys_pkey`);
    await q.query(`ALTER TABLE audit_keys ADD CONSTRAINT audit_keys_pkey PRIMARY KEY (org_id, month, subject, generation)`);
    await q.query(`CREATE INDEX audit_keys_subject_idx ON audit_keys (org_id, subject) WHERE subject <> ''`);
    await q.query(`
      CREATE TABLE audit_erasures (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        subject text NOT NULL CHECK (subject <> ''),
        requested_by uuid,
        keys_destroyed integer NOT NULL,
        erased_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT audit_erasures_pkey PRIMARY KEY (org_id, id)
      )`);
    await q.query(`CREATE INDEX audit_erasures_subject_idx ON audit_erasures (org_id, subject)`);
    await q.query(`ALTER TABLE audit_erasures ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE audit_erasures FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY tenant_isolation ON audit_erasures USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    await q.query(`GRANT SELECT, INSERT ON audit_erasures TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_erasures`);
    await q.query(`DROP INDEX audit_keys_subject_idx`);
    await q.query(`DELETE FROM audit_keys WHERE subject <> '' OR generation <> 0`);
    await q.query(`ALTER TABLE audit_keys DROP CONSTRAINT audit_keys_pkey`);
    await q.query(`ALTER TABLE audit_keys ADD CONSTRAINT audit_keys_pkey PRIMARY KEY (org_id, month)`);
    await q.query(`ALTER TABLE audit_keys DROP COLUMN subject, DROP COLUMN generation`);
  }
}
