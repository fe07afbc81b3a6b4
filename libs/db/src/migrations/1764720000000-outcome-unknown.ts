import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Crash safety: an action whose claim exists but whose outcome is missing after a crash (its
 * worker died between the claim and the outcome) is marked `outcome_unknown` by the worker that
 * takes the task over, and the task waits for a human; it is never run again blindly.
 *
 * Adds `outcome_unknown` to the states `task_actions` allows, keeping whatever other states an
 * earlier migration added (and doing nothing where one already allows it).
 */
const statesOf = async (q: QueryRunner): Promise<string[]> => {
  const [row]: { def: string }[] = await q.query(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'task_actions'::regclass AND conname = 'task_actions_state_check'`);
  return [...(row?.def ?? '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!);
};

const setStates = async (q: QueryRunner, states: string[]) => {
  await q.query(`ALTER TABLE task_actions DROP CONSTRAINT task_actions_state_check`);
  await q.query(`ALTER TABLE task_actions ADD CONSTRAINT task_actions_state_check CHECK (state IN (${states.map((s) => `'${s}'`).join(', ')}))`);
};

export class OutcomeUnknown1764720000000 implements MigrationInterface {
  name = 'OutcomeUnknown1764720000000';

  async up(q: QueryRunner): Promise<void> {
    const states = await statesOf(q);
    if (!states.length || states.includes('outcome_unknown')) return;
    await setStates(q, [...states, 'outcome_unknown']);
  }

  async down(q: QueryRunner): Promise<void> {
    const states = await statesOf(q);
    // Another migration's states (settling an unknown outcome) depend on it: leave it then.
    if (!states.includes('outcome_unknown') || states.includes('settled_done')) return;
    await q.query(`UPDATE task_actions SET state = 'executing' WHERE state = 'outcome_unknown'`);
    await setStates(q, states.filter((s) => s !== 'outcome_unknown'));
  }
}
