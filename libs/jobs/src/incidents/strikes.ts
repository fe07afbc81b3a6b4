import { recordEvent } from '@steward/audit';
import { newId } from '@steward/common';
import { inOrg, outsideOrg } from '@steward/db';
import { sanctionFor } from '@steward/policy';
import type { IncidentSweepDeps } from './incidents';

/**
 * Violations the gate confirmed itself (the org's "automatic strikes" setting) get the ladder step
 * they lead to, like those security confirms through the API: a `sanctions` row (so an owner can
 * lift the suspension or record a review's outcome) and a `sanction.open` audit event.
 */
export async function sanctionAutomaticStrikes(deps: IncidentSweepDeps, now: Date, limit = 200): Promise<number> {
  const due: { org_id: string; id: string }[] = await outsideOrg(deps.ds, (em) => em.query('SELECT org_id, id FROM steward_strikes_without_sanction($1)', [limit]));
  let n = 0;
  for (const v of due) {
    const done = await inOrg(deps.ds, { orgId: v.org_id }, async (em) => {
      const [row]: { user_id: string; decided_at: Date }[] = await em.query(`SELECT user_id, decided_at FROM violations WHERE org_id = $1 AND id = $2 AND state = 'confirmed'`, [v.org_id, v.id]);
      if (!row) return false;
      // The strikes as they stood when this one was confirmed (itself included).
      // (Compared in SQL: a JS Date would drop the microseconds of decided_at.)
      const confirmed: { decided_at: Date }[] = await em.query(
        `SELECT w.decided_at FROM violations w JOIN violations v ON v.org_id = w.org_id AND v.id = $2
          WHERE w.org_id = $1 AND w.user_id = v.user_id AND w.state = 'confirmed' AND w.decided_at IS NOT NULL AND (w.decided_at, w.id) <= (v.decided_at, v.id)`,
        [v.org_id, v.id],
      );
      const kind = sanctionFor(confirmed.map((c) => ({ confirmedAt: new Date(c.decided_at) })), new Date(row.decided_at));
      if (kind === 'none') return false;
      const id = newId();
      const inserted: unknown[] = await em.query(
        `INSERT INTO sanctions (org_id, id, user_id, violation_id, kind, strikes) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, violation_id) DO NOTHING RETURNING id`,
        [v.org_id, id, row.user_id, v.id, kind, confirmed.length],
      );
      if (!inserted.length) return false;
      await recordEvent(em, deps.keyring, {
        id: newId(),
        orgId: v.org_id,
        occurredAt: now,
        actor: { type: 'system', id: null },
        action: 'sanction.open',
        target: { type: 'Sanction', id },
        outcome: 'success',
        client: 'system',
        payload: { userId: row.user_id, violationId: v.id, kind, strikes: confirmed.length, automatic: true },
      });
      return true;
    });
    if (done) n++;
  }
  if (n) deps.log.info({ sanctions: n }, 'sanctions recorded for automatic strikes');
  return n;
}
