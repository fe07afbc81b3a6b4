import type { EntityManager } from 'typeorm';

/** The hosts an org's admins allowed (PUT /v1/egress/allow-hosts): what orgEgressOptions takes as the org's allowlist. */
export async function orgAllowHosts(em: Pick<EntityManager, 'query'>, orgId: string): Promise<string[]> {
  const rows: { host: string }[] = await em.query('SELECT host FROM egress_allow_hosts WHERE org_id = $1 ORDER BY host', [orgId]);
  return rows.map((r) => r.host);
}
