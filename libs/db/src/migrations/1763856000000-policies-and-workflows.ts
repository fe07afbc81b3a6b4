import type { MigrationInterface, QueryRunner } from "typeorm";

/** Policy versions and workflows (Trust Level policy engine), with forced RLS like every tenant table. */
export class PoliciesAndWorkflows1763856000000 implements MigrationInterface {
  name = "PoliciesAndWorkflows1763856000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "policies" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "version" integer NOT NULL, "status" character varying(16) NOT NULL, "document" jsonb NOT NULL, "note" character varying(1000) NOT NULL DEFAULT '', "author_id" uuid NOT NULL, "based_on" uuid, "activated_at" TIMESTAMP WITH TIME ZONE, "activated_by" uuid, "archived_at" TIMESTAMP WITH TIME ZONE, "review_due_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_603e09f183df0108d8695c57e28" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "policies_author_id_idx" ON "policies"  ("author_id") `);
    await q.query(`CREATE UNIQUE INDEX "policies_one_active_per_org" ON "policies"  ("org_id") WHERE "status" = 'active'`);
    await q.query(`CREATE UNIQUE INDEX "policies_org_version_key" ON "policies"  ("org_id", "version") `);
    await q.query(`CREATE TABLE "workflows" ("id" uuid NOT NULL, "org_id" uuid NOT NULL, "key" character varying(80) NOT NULL, "name" character varying(200) NOT NULL, "description" character varying(2000) NOT NULL DEFAULT '', "action_types" text array NOT NULL DEFAULT '{}', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_5b5757cc1cd86268019fef52e0c" PRIMARY KEY ("id"))`);
    await q.query(`CREATE UNIQUE INDEX "workflows_org_key_key" ON "workflows"  ("org_id", "key") `);
    await q.query(`ALTER TABLE "policies" ADD CONSTRAINT "FK_d910047a90e99772a5877765fa7" FOREIGN KEY ("org_id") REFERENCES "orgs"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "policies" ADD CONSTRAINT "FK_fcb2268cf746a0749bc17598673" FOREIGN KEY ("author_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "workflows" ADD CONSTRAINT "FK_7862fc026750988e9206f2e9e6e" FOREIGN KEY ("org_id") REFERENCES "orgs"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    for (const table of ["policies", "workflows"]) {
      await q.query(`ALTER TABLE "${table}" ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" FORCE ROW LEVEL SECURITY`);
      await q.query(
        `CREATE POLICY tenant_isolation ON "${table}" USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`,
      );
      await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON "${table}" TO steward_app`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ["policies", "workflows"]) {
      await q.query(`DROP POLICY IF EXISTS tenant_isolation ON "${table}"`);
    }
    await q.query(`ALTER TABLE "workflows" DROP CONSTRAINT "FK_7862fc026750988e9206f2e9e6e"`);
    await q.query(`ALTER TABLE "policies" DROP CONSTRAINT "FK_fcb2268cf746a0749bc17598673"`);
    await q.query(`ALTER TABLE "policies" DROP CONSTRAINT "FK_d910047a90e99772a5877765fa7"`);
    await q.query(`DROP INDEX "public"."workflows_org_key_key"`);
    await q.query(`DROP TABLE "workflows"`);
    await q.query(`DROP INDEX "public"."policies_org_version_key"`);
    await q.query(`DROP INDEX "public"."policies_one_active_per_org"`);
    await q.query(`DROP INDEX "public"."policies_author_id_idx"`);
    await q.query(`DROP TABLE "policies"`);
  }
}
