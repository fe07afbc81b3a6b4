/** How a pass of notices goes out (approval and incident notices alike). */
import type { EgressOptions } from '@steward/common';

/** The org's egress rules for its notices' webhooks and mail (absent: public addresses only). */
export async function orgEgress(deps: { egress?: (orgId: string) => Promise<EgressOptions> }, orgId: string): Promise<EgressOptions> {
  return (await deps.egress?.(orgId)) ?? {};
}

/**
 * Runs `deliver` for each notice, the orgs side by side (at most `orgsAtOnce`), each org's notices
 * one after another: an org whose servers answer slowly (on purpose, even) holds up its own notices
 * only, not every other org's.
 */
export async function eachOrgAtOnce<T extends { org_id: string }>(notices: T[], deliver: (n: T) => Promise<void>, orgsAtOnce = 8): Promise<void> {
  const byOrg = new Map<string, T[]>();
  for (const n of notices) byOrg.set(n.org_id, [...(byOrg.get(n.org_id) ?? []), n]);
  const queues = [...byOrg.values()];
  let next = 0;
  // A notice that fails unexpectedly stops nothing else: every lane runs to its end (the pass is
  // over only when all are), then the first failure is reported.
  let failed: { err: unknown } | null = null;
  await Promise.all(
    Array.from({ length: Math.min(orgsAtOnce, queues.length) }, async () => {
      while (next < queues.length) {
        const queue = queues[next++]!;
        for (const n of queue) {
          try {
            await deliver(n);
          } catch (err) {
            failed ??= { err };
          }
        }
      }
    }),
  );
  if (failed) throw (failed as { err: unknown }).err;
}
