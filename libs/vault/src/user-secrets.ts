import type { DataSource } from 'typeorm';
import { type SecretBox, totpAad } from '@steward/common';

/**
 * KEK rotation for what is sealed directly under the key-encryption key rather than under a
 * wrapped data key: users' TOTP secrets. Each is opened with whichever configured version sealed
 * it and sealed again under the current one (a few dozen bytes per user), compare-and-set on the
 * old value, through the narrow functions of migration 1764806400000 (users belong to no org).
 */
export interface ResealReport {
  target: string;
  resealed: number;
  /** Secrets that would not open (unknown version, wrong AAD): left as they were. */
  failed: number;
}

export async function resealUserSecrets(ds: DataSource, box: SecretBox, opts: { batchSize?: number; signal?: AbortSignal } = {}): Promise<ResealReport> {
  const target = box.currentVersion;
  const report: ResealReport = { target, resealed: 0, failed: 0 };
  let after: string | null = null;
  for (;;) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    const rows: { user_id: string; sealed: string }[] = await ds.query('SELECT user_id, sealed FROM steward_user_secrets_to_reseal($1, $2, $3)', [target, after, opts.batchSize ?? 500]);
    if (!rows.length) return report;
    for (const row of rows) {
      let next: string;
      try {
        next = box.seal(box.open(row.sealed, totpAad(row.user_id)), totpAad(row.user_id));
      } catch {
        report.failed++;
        continue;
      }
      const [r]: { ok: boolean }[] = await ds.query('SELECT steward_reseal_user_secret($1, $2, $3) AS ok', [row.user_id, row.sealed, next]);
      if (r?.ok) report.resealed++;
    }
    after = rows[rows.length - 1].user_id;
  }
}

/** How many user secrets each KEK version still seals. */
export async function userSecretVersions(ds: DataSource): Promise<Record<string, number>> {
  const rows: { version: string; n: number }[] = await ds.query('SELECT version, n FROM steward_user_secret_versions()');
  return Object.fromEntries(rows.map((r) => [r.version, r.n]));
}
