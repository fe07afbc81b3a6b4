import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Audit retention and legal holds: each org keeps its trail content for a number of whole
 * months; legal holds (whole org, or one user, over a time range) keep what they cover
 * readable past that: held events' sealed fields are re-sealed under the org's hold key
 * (audit_keys month 9999-01-01, never reached by retention) before a month key is destroyed.
 */
export class RetentionAndHolds1764028800000 implements MigrationInterface {
  name = "RetentionAndHolds1764028800000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "legal_holds" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "user_id" uuid, "from_at" TIMESTAMP WITH TIME ZONE NOT NULL, "until_at" TIMESTAMP WITH TIME ZONE, "reason" character varying(500) NOT NULL, "created_by" uuid NOT NULL, "released_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_bbe3e0c98678909493a90442dfb" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "legal_holds_org_idx" ON "legal_holds"  ("org_id", "released_at") `);
    await q.query(`ALTER TABLE "orgs" ADD "audit_retention_months" integer NOT NULL DEFAULT '6'`);
    await q.query(`ALTER TABLE "legal_holds" ADD CONSTRAINT "FK_c416eed25186372b5f1d04a9606" FOREIGN KEY ("org_id") REFERENCES "orgs"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`
      CREATE TABLE audit_held_payloads (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        event_id uuid NOT NULL,
        hold_id uuid NOT NULL,
        sealed text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT audit_held_payloads_pkey PRIMARY KEY (org_id, event_id, hold_id)
      )`);
    await q.query(`ALTER TABLE audit_heads ADD COLUMN purged_before timestamptz`);
    for (const table of ["legal_holds", "audit_held_payloads"]) {
      await q.query(`ALTER TABLE "${table}" ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON "${table}" USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    }
    await q.query(`GRANT SELECT, INSERT, UPDATE ON legal_holds TO steward_app`);
    await q.query(`GRANT SELECT, INSERT ON audit_held_payloads TO steward_app`);
    await q.query(`GRANT UPDATE (audit_retention_months) ON orgs TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_held_payloads`);
    await q.query(`ALTER TABLE audit_heads DROP COLUMN purged_before`);
    await q.query(`DROP POLICY IF EXISTS tenant_isolation ON legal_holds`);
    await q.query(`ALTER TABLE "legal_holds" DROP CONSTRAINT "FK_c416eed25186372b5f1d04a9606"`);
    await q.query(`ALTER TABLE "orgs" DROP COLUMN "audit_retention_months"`);
    await q.query(`DROP INDEX "public"."legal_holds_org_idx"`);
    await q.query(`DROP TABLE "legal_holds"`);
  }
}
