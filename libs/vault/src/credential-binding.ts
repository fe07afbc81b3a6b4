import { type DataSource, inOrg, queryReturning } from '@steward/db';
import { CREDENTIAL_BINDING, credentialAad, openSecret, sealSecret } from './envelope';
import type { KeyProvider } from './keys';

interface Unbound {
  id: string;
  connector_id: string;
  user_id: string | null;
  sealed: Buffer;
  wrapped_key: string;
}

/**
 * Seals again, under binding 2 (the owner named in the AAD: `credentialAad`), every connector
 * credential sealed before it (`aad_version` 1): opened with the AAD it was sealed under, sealed
 * with a new data key under the current KEK, and written compare-and-set on the old wrapped key,
 * one org at a time in batches. A row that does not open is left as it is and counted as failed.
 * Revoked rows hold nothing sealed: they are only marked. Run by the worker's key job.
 */
export async function rebindCredentials(ds: DataSource, keys: KeyProvider, batchSize = 200): Promise<{ rebound: number; failed: number }> {
  let rebound = 0;
  let failed = 0;
  const orgs: { org_id: string }[] = await ds.query('SELECT org_id FROM steward_list_orgs()');
  for (const { org_id: orgId } of orgs) {
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const done = await inOrg(ds, { orgId }, async (em) => {
        await em.query(`UPDATE credentials SET aad_version = $2 WHERE org_id = $1 AND aad_version = 1 AND sealed IS NULL`, [orgId, CREDENTIAL_BINDING]);
        const rows: Unbound[] = await em.query(
          `SELECT id, connector_id, user_id, sealed, wrapped_key FROM credentials
            WHERE org_id = $1 AND aad_version = 1 AND sealed IS NOT NULL AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED`,
          [orgId, after, batchSize],
        );
        for (const r of rows) {
          try {
            const plain = await openSecret(keys, { sealed: r.sealed, wrappedKey: r.wrapped_key }, credentialAad(orgId, r.connector_id, r.id, r.user_id, 1));
            const s = await sealSecret(keys, plain, credentialAad(orgId, r.connector_id, r.id, r.user_id, CREDENTIAL_BINDING));
            plain.fill(0);
            const updated = await queryReturning(em, `UPDATE credentials SET sealed = $3, wrapped_key = $4, aad_version = $6 WHERE org_id = $1 AND id = $2 AND wrapped_key = $5 AND aad_version = 1 RETURNING id`, [
              orgId,
              r.id,
              s.sealed,
              s.wrappedKey,
              r.wrapped_key,
              CREDENTIAL_BINDING,
            ]);
            rebound += updated.length;
          } catch {
            failed++;
          }
        }
        if (rows.length) after = rows[rows.length - 1]!.id;
        return rows.length < batchSize;
      });
      if (done) break;
    }
  }
  return { rebound, failed };
}

/** How many connector credentials are still sealed without their owner named (binding 1), over every org. */
export async function credentialsUnbound(ds: DataSource): Promise<number> {
  let n = 0;
  const orgs: { org_id: string }[] = await ds.query('SELECT org_id FROM steward_list_orgs()');
  for (const { org_id: orgId } of orgs) {
    const [r]: { n: number }[] = await inOrg(ds, { orgId }, (em) => em.query(`SELECT count(*)::int AS n FROM credentials WHERE org_id = $1 AND aad_version = 1 AND sealed IS NOT NULL`, [orgId]));
    n += r?.n ?? 0;
  }
  return n;
}
