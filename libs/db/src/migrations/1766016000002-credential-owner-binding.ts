import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A connector credential's seal names its owner (libs/vault `credentialAad`, binding 2): the user
 * it belongs to, or the org. `aad_version` says which binding sealed a row: 1 for every credential
 * sealed before (no owner named: opened as before until the worker's key job seals it again under
 * 2), 2 for every credential sealed from now on (the default of a new row).
 */
export class CredentialOwnerBinding1766016000002 implements MigrationInterface {
  name = 'CredentialOwnerBinding1766016000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE credentials ADD COLUMN aad_version smallint NOT NULL DEFAULT 1 CHECK (aad_version IN (1, 2))`);
    await q.query(`ALTER TABLE credentials ALTER COLUMN aad_version SET DEFAULT 2`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE credentials DROP COLUMN aad_version`);
  }
}
