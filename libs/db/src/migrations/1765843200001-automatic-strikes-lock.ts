import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Automatic strikes (an org setting, off by default) counted two Forbidden attempts of one person
 * claimed at the same moment in two transactions as one each, so neither suspended. The
 * write-ahead (`steward_gate_claim`) now locks the person's membership before it counts their
 * confirmed violations, as the API's triage does: the count then sees a strike committed a moment
 * ago. Only the automatic-strikes branch changes; the function is otherwise kept as it is.
 */
const COUNT = 'IF v_auto AND (SELECT count(*) FROM violations v';
const LOCK = 'IF v_auto THEN PERFORM 1 FROM memberships WHERE org_id = p_org AND user_id = p_user FOR UPDATE; END IF;\n          ';

export class AutomaticStrikesLock1765843200001 implements MigrationInterface {
  name = 'AutomaticStrikesLock1765843200001';

  async up(q: QueryRunner): Promise<void> {
    const def = await definition(q);
    if (def.includes(LOCK)) return;
    if (!def.includes(COUNT)) throw new Error('steward_gate_claim: the automatic-strikes count to guard was not found');
    await q.query(def.replace(COUNT, LOCK + COUNT));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query((await definition(q)).replace(LOCK, ''));
  }
}

async function definition(q: QueryRunner): Promise<string> {
  const [{ def }]: { def: string }[] = await q.query(`SELECT pg_get_functiondef('steward_gate_claim'::regproc) AS def`);
  return def;
}
