import type { DataSource } from 'typeorm';
import { type SecretBox, ssoClientSecretAad } from '@steward/common';
import { inOrg } from '@steward/db';
import { credentialAad, kekVersionOf, oauthStateAad, incidentSecretAad } from './envelope';
import { type KeyProvider, rewrap } from './keys';

/**
 * Rotation of the key-encryption key (KEK). The operator adds a new version to
 * STEWARD_MASTER_KEY ("v1:...,v2:..."; the last one wraps new keys); the worker's
 * `rewrap-data-keys` job then re-wraps every data key still under an older version, in batches
 * of its own transaction per org (resumable: whatever is already re-wrapped is skipped, so a
 * job that dies resumes where the data says); `kekVersionsInUse` tells when no row names the old
 * version any more, and the operator removes it from the configuration. The sealed data itself
 * is never decrypted or rewritten: only the small wrapped data keys change.
 */
export interface WrappedKeySource {
  /** A name for reports ("credentials"). */
  name: string;
  table: string;
  /** Columns (name, SQL type) that identify a row within its org (with org_id); read as text. */
  keyColumns: [string, string][];
  /** Column holding the wrapped data key ("v1.<base64url>"), nullable (destroyed keys are skipped). */
  wrappedColumn: string;
  /** Extra columns the AAD needs. */
  aadColumns?: string[];
  aad(orgId: string, row: Record<string, unknown>): string;
  /**
   * How a stored value moves under the current KEK version. Default: the column holds a wrapped
   * data key, re-wrapped by the key provider. Values sealed under the KEK itself (SecretBox) open
   * and seal again instead (`kekSealedSources`).
   */
  rewrap?(value: string, aad: string): Promise<string>;
}

/** The vault's own wrapped keys: connector credentials and pending OAuth states. */
export const VAULT_WRAPPED_KEY_SOURCES: WrappedKeySource[] = [
  {
    name: 'credentials',
    table: 'credentials',
    keyColumns: [['id', 'uuid']],
    wrappedColumn: 'wrapped_key',
    aadColumns: ['connector_id', 'user_id', 'aad_version'],
    aad: (orgId, r) => credentialAad(orgId, String(r.connector_id), String(r.id), r.user_id === null ? null : String(r.user_id), Number(r.aad_version)),
  },
  {
    name: 'oauth_states',
    table: 'oauth_states',
    keyColumns: [['id', 'uuid']],
    wrappedColumn: 'wrapped_key',
    aad: (orgId, r) => oauthStateAad(orgId, String(r.id)),
  },
  {
    name: 'incident_secrets',
    table: 'incident_secrets',
    keyColumns: [['name', 'varchar']],
    wrappedColumn: 'wrapped_key',
    aad: (orgId, r) => incidentSecretAad(orgId, String(r.name)),
  },
];

/**
 * Org secrets sealed directly under the KEK (SecretBox, from STEWARD_MASTER_KEY) rather than under
 * a wrapped data key: the org's OpenID Connect client secret. Each is opened with whichever
 * configured version sealed it and sealed again under the current one (compare-and-set, like
 * every source). Needs the configured KEKs themselves, so the worker passes its SecretBox.
 */
export function kekSealedSources(box: SecretBox): WrappedKeySource[] {
  return [
    {
      name: 'sso_client_secrets',
      table: 'sso_configs',
      keyColumns: [['org_id', 'uuid']],
      wrappedColumn: 'client_secret_sealed',
      aad: (orgId) => ssoClientSecretAad(orgId),
      rewrap: async (value, aad) => (value.startsWith(`${box.currentVersion}.`) ? value : box.seal(box.open(value, aad), aad)),
    },
  ];
}

export interface RewrapOptions {
  batchSize?: number;
  /** Called after each committed batch (progress, metrics). */
  onBatch?: (p: { source: string; orgId: string; rewrapped: number }) => void;
  signal?: AbortSignal;
}

export interface RewrapReport {
  target: string;
  /** Rows re-wrapped, per source. */
  rewrapped: Record<string, number>;
  /** Rows that could not be unwrapped (wrong AAD, unknown version), per source: left as they were. */
  failed: Record<string, number>;
  orgs: number;
}

const ident = (s: string) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(s)) throw new Error(`bad identifier ${s}`);
  return `"${s}"`;
};

/** Re-wraps, batch by batch, every data key of every org not yet under the provider's current KEK. */
export async function rewrapAll(ds: DataSource, keys: KeyProvider, sources: readonly WrappedKeySource[], opts: RewrapOptions = {}): Promise<RewrapReport> {
  const target = keys.currentVersion();
  const batchSize = opts.batchSize ?? 500;
  const report: RewrapReport = { target, rewrapped: {}, failed: {}, orgs: 0 };
  const orgs: { org_id: string }[] = await ds.query('SELECT org_id FROM steward_list_orgs()');
  for (const { org_id: orgId } of orgs) {
    report.orgs++;
    for (const src of sources) {
      report.rewrapped[src.name] ??= 0;
      report.failed[src.name] ??= 0;
      const keyNames = src.keyColumns.map(([c]) => c);
      const keyCols = keyNames.map(ident);
      const cols = [...keyNames.map((c) => `${ident(c)}::text AS ${ident(c)}`), ...(src.aadColumns ?? []).map((c) => `${ident(c)}::text AS ${ident(c)}`), ident(src.wrappedColumn)].join(', ');
      // Keyset pagination: each batch reads after the last key seen; rows that fail stay behind it.
      let after: unknown[] | null = null;
      for (;;) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
        const done = await inOrg(ds, { orgId }, async (em) => {
          const params: unknown[] = [orgId, `${target}.%`, batchSize];
          let cursor = '';
          if (after) {
            cursor = ` AND (${keyCols.join(', ')}) > (${src.keyColumns.map(([, type], i) => `$${4 + i}::${type}`).join(', ')})`;
            params.push(...after);
          }
          const rows: Record<string, unknown>[] = await em.query(
            `SELECT ${cols} FROM ${ident(src.table)} WHERE org_id = $1 AND ${ident(src.wrappedColumn)} IS NOT NULL AND ${ident(src.wrappedColumn)} NOT LIKE $2${cursor}
             ORDER BY ${keyCols.join(', ')} LIMIT $3 FOR UPDATE SKIP LOCKED`,
            params,
          );
          if (!rows.length) return true;
          after = keyNames.map((c) => rows[rows.length - 1][c]);
          const updates: { row: Record<string, unknown>; wrapped: string }[] = [];
          for (const row of rows) {
            try {
              const value = String(row[src.wrappedColumn]);
              const aad = src.aad(orgId, row);
              updates.push({ row, wrapped: src.rewrap ? await src.rewrap(value, aad) : await rewrap(keys, value, aad) });
            } catch {
              report.failed[src.name]++;
            }
          }
          if (updates.length) {
            // One statement per batch; compare-and-set on the old value.
            const n = src.keyColumns.length + 2;
            const values = updates.map((_, i) => `(${Array.from({ length: n }, (__, j) => `$${2 + i * n + j}`).join(', ')})`).join(', ');
            const p: unknown[] = [orgId];
            for (const u of updates) p.push(...keyNames.map((c) => u.row[c]), String(u.row[src.wrappedColumn]), u.wrapped);
            await em.query(
              `UPDATE ${ident(src.table)} t SET ${ident(src.wrappedColumn)} = v.new_wrapped
               FROM (VALUES ${values}) AS v(${[...keyCols, 'old_wrapped', 'new_wrapped'].join(', ')})
               WHERE t.org_id = $1 AND ${src.keyColumns.map(([c, type]) => `t.${ident(c)} = v.${ident(c)}::${type}`).join(' AND ')} AND t.${ident(src.wrappedColumn)} = v.old_wrapped`,
              p,
            );
          }
          report.rewrapped[src.name] += updates.length;
          opts.onBatch?.({ source: src.name, orgId, rewrapped: updates.length });
          return rows.length < batchSize;
        });
        if (done) break;
      }
    }
  }
  return report;
}

/** How many wrapped keys each KEK version still wraps, per source, over every org. */
export async function kekVersionsInUse(ds: DataSource, sources: readonly WrappedKeySource[]): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  const orgs: { org_id: string }[] = await ds.query('SELECT org_id FROM steward_list_orgs()');
  for (const { org_id: orgId } of orgs) {
    await inOrg(ds, { orgId }, async (em) => {
      for (const src of sources) {
        const rows: { v: string; n: number }[] = await em.query(
          `SELECT split_part(${ident(src.wrappedColumn)}, '.', 1) AS v, count(*)::int AS n FROM ${ident(src.table)} WHERE org_id = $1 AND ${ident(src.wrappedColumn)} IS NOT NULL GROUP BY 1`,
          [orgId],
        );
        for (const r of rows) {
          out[r.v] ??= {};
          out[r.v][src.name] = (out[r.v][src.name] ?? 0) + r.n;
        }
      }
    });
  }
  return out;
}

export { kekVersionOf };
