import type { AuditKeyring } from '@steward/audit';
import type { Logger } from '@steward/common';
import { type DataSource, inOrg, outsideOrg } from '@steward/db';
import { openOutcomeUnknown } from '@steward/gate';

export { openOutcomeUnknown };

/**
 * Claims still `executing` `afterSeconds` after their call began (longer than any call may run)
 * that nothing else will resolve: MCP gateway calls (no task resumes them: the API process died,
 * or could not record the outcome) and actions of tasks that ended meanwhile. Each goes to a person
 * as "outcome unknown" (a running or waiting task's own are found when it resumes). One that
 * cannot be handled is logged and left for the next sweep; the sweep goes on past it, a page of
 * `pageSize` at a time, oldest first, up to `maxPages` pages. Returns how many went to a person.
 */
export async function sweepOutcomesUnknown(ds: DataSource, keyring: AuditKeyring, log: Logger, afterSeconds: number, pageSize = 200, maxPages = 10): Promise<number> {
  let n = 0;
  // The last claim looked at (its created_at as PostgreSQL's text, exact to the microsecond).
  let cursor: [string, string] | null = null;
  for (let page = 0; page < maxPages; page++) {
    const stale: { org_id: string; id: string; task_id: string | null; created_at: string }[] = await outsideOrg(ds, (em) =>
      em.query(
        `SELECT org_id, id, task_id, created_at::text AS created_at FROM steward_claims_without_outcome($1, $2${cursor ? ', $3::timestamptz, $4::uuid' : ''})`,
        [Math.ceil(afterSeconds), pageSize, ...(cursor ?? [])],
      ),
    );
    for (const c of stale) {
      try {
        if (await inOrg(ds, { orgId: c.org_id }, (em) => openOutcomeUnknown(em, keyring, { orgId: c.org_id, actionId: c.id, taskId: c.task_id, client: c.task_id ? 'worker' : 'mcp' }))) n++;
      } catch (err) {
        log.error({ err: (err as Error).message, orgId: c.org_id, actionId: c.id }, 'could not send an action without outcome to a person (retried on the next sweep)');
      }
    }
    if (stale.length < pageSize) break;
    const last = stale[stale.length - 1]!;
    cursor = [last.created_at, last.id];
  }
  if (n) log.warn({ actions: n }, 'actions without an outcome: sent to a person as outcome unknown');
  return n;
}

/**
 * How long after its start a gateway call's claim without an outcome is taken for lost: three
 * attempts, each the pinned-tool check and the call itself (the upstream timeout, or the
 * elicitation wait where a person may be asked), plus a minute — and never less than an hour. The
 * worker computes it from its own settings: give it the API's GATEWAY_* settings (the Helm chart
 * gives both config.gatewayUpstreamTimeoutSeconds and config.gatewayElicitationWaitSeconds).
 */
export function outcomeUnknownAfterSeconds(config: { GATEWAY_UPSTREAM_TIMEOUT_SECONDS: number; GATEWAY_ELICITATION_WAIT_SECONDS: number }): number {
  const attempt = config.GATEWAY_UPSTREAM_TIMEOUT_SECONDS + Math.max(config.GATEWAY_UPSTREAM_TIMEOUT_SECONDS, config.GATEWAY_ELICITATION_WAIT_SECONDS);
  return Math.max(3600, 3 * attempt + 60);
}
