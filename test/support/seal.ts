import { sealOrg } from '@steward/audit';
import { type DataSource, inOrg } from '@steward/db';

/**
 * Seals every event of an org recorded so far; returns how many it sealed. The sequencer seals an
 * event only once every transaction older than it has ended — anywhere on the PostgreSQL cluster
 * (the snapshot's xmin is cluster-wide), so another suite's open transaction can hold sealing
 * back for a moment when suites run side by side. This keeps sealing until nothing of the org is
 * left unsealed (and fails after 30 s).
 */
export async function sealAll(ds: DataSource, orgId: string, opts: { batchSize?: number } = {}): Promise<number> {
  let total = 0;
  const deadline = Date.now() + 30_000;
  for (;;) {
    total += (await sealOrg(ds, orgId, { holder: 'test', ...opts })).sealed;
    const [{ n }]: { n: number }[] = await inOrg(ds, { orgId }, (em) =>
      em.query(`SELECT count(*)::int AS n FROM audit_events e WHERE e.org_id = $1 AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.org_id = e.org_id AND c.event_id = e.id)`, [orgId]),
    );
    if (n === 0) return total;
    if (Date.now() > deadline) throw new Error(`${n} events of org ${orgId} still unsealed after 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
