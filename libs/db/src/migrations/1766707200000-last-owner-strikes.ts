import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Automatic strikes (an org setting) suspended a person at their second confirmed violation even
 * when they were the org's last active owner: nobody was then left to lift the sanction (only an
 * owner does), and the org was locked out of its own settings. The write-ahead
 * (`steward_gate_claim`) now leaves the last active owner's access as it is; the violation and its
 * sanction are still recorded. Only the automatic-strikes suspension changes.
 */
const SUSPEND = `suspended_reason = 'automatic strikes: second confirmed violation'
             WHERE org_id = p_org AND user_id = p_user AND status = 'active'`;
const GUARD = `
               AND NOT (EXISTS (SELECT 1 FROM role_assignments ra WHERE ra.org_id = p_org AND ra.user_id = p_user AND ra.role = 'owner')
                        AND (SELECT count(*) FROM role_assignments ra JOIN memberships m ON m.org_id = ra.org_id AND m.user_id = ra.user_id
                              WHERE ra.org_id = p_org AND ra.role = 'owner' AND m.status = 'active') <= 1)`;

/**
 * The owners' lock (the API's lockOwners: one change that could leave an org without an active owner
 * at a time), taken before the person's membership row as the API takes them, so the two never wait
 * on each other in opposite orders.
 */
const MEMBERSHIP_LOCK = 'IF v_auto THEN PERFORM 1 FROM memberships WHERE org_id = p_org AND user_id = p_user FOR UPDATE; END IF;';
const OWNERS_LOCK = "IF v_auto THEN PERFORM pg_advisory_xact_lock(hashtextextended('steward:owners:' || p_org::text, 0)); END IF;\n          ";

export class LastOwnerStrikes1766707200000 implements MigrationInterface {
  name = 'LastOwnerStrikes1766707200000';

  async up(q: QueryRunner): Promise<void> {
    let def = await definition(q);
    if (def.includes(GUARD)) return;
    if (!def.includes(SUSPEND) || !def.includes(MEMBERSHIP_LOCK)) throw new Error('steward_gate_claim: the automatic-strikes suspension to guard was not found');
    def = def.replace(SUSPEND, SUSPEND + GUARD).replace(MEMBERSHIP_LOCK, OWNERS_LOCK + MEMBERSHIP_LOCK);
    await q.query(def);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query((await definition(q)).replace(GUARD, '').replace(OWNERS_LOCK, ''));
  }
}

async function definition(q: QueryRunner): Promise<string> {
  const [{ def }]: { def: string }[] = await q.query(`SELECT pg_get_functiondef('steward_gate_claim'::regproc) AS def`);
  return def;
}
