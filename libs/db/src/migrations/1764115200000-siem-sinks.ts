import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * SIEM push sinks: per org, an HTTP endpoint (Splunk HEC) that receives sealed audit
 * entries in batches. The HEC token is stored sealed under a data key wrapped by the KEK
 * (AAD bound to the org and the sink); batches that fail past the retries land in a
 * dead-letter table so one poison batch never blocks the org.
 */
export class SiemSinks1764115200000 implements MigrationInterface {
  name = "SiemSinks1764115200000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_siem_sinks (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        url text NOT NULL,
        token_sealed bytea NOT NULL,
        token_wrapped_key text NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        batch_size integer NOT NULL DEFAULT 500 CHECK (batch_size BETWEEN 1 AND 10000),
        last_seq bigint NOT NULL DEFAULT 0,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT audit_siem_sinks_pkey PRIMARY KEY (org_id, id)
      )`);
    await q.query(`
      CREATE TABLE audit_siem_dead_letters (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id bigserial,
        sink_id uuid NOT NULL,
        from_seq bigint NOT NULL,
        to_seq bigint NOT NULL,
        attempts integer NOT NULL,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT audit_siem_dead_letters_pkey PRIMARY KEY (org_id, id),
        CONSTRAINT audit_siem_dead_letters_sink_fk FOREIGN KEY (org_id, sink_id) REFERENCES audit_siem_sinks(org_id, id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX audit_siem_dead_letters_sink_idx ON audit_siem_dead_letters (org_id, sink_id, created_at)`);
    for (const table of ["audit_siem_sinks", "audit_siem_dead_letters"]) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    }
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON audit_siem_sinks TO steward_app`);
    await q.query(`GRANT SELECT, INSERT ON audit_siem_dead_letters TO steward_app`);
    await q.query(`GRANT USAGE ON SEQUENCE audit_siem_dead_letters_id_seq TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_siem_dead_letters`);
    await q.query(`DROP TABLE audit_siem_sinks`);
  }
}
