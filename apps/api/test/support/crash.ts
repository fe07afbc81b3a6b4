import type { Client } from 'pg';
import { type AgentDeps, transcriptAad } from '@steward/jobs';
import { type KeyProvider, openSecret, sealSecret } from '@steward/vault';

/**
 * A worker that "dies" right after the claim of a `tool` call made at turn 1: at turn 2 the call's
 * outcome and the turn's results are taken back (the claim is `executing` again, the transcript
 * loses its last message) and the task gets a new epoch, as the lease sweeper gives it after a
 * crash. The worker then loses its lease; the next worker finds the claim without an outcome.
 */
export function crashAfterClaim(su: Client, keys: KeyProvider, orgId: string, tool: string): NonNullable<AgentDeps['beforeTurn']> {
  return async (lease, turn) => {
    if (turn !== 2) return;
    const [row] = (await su.query(`SELECT transcript_sealed, transcript_key FROM tasks WHERE id = $1`, [lease.taskId])).rows;
    const tr = JSON.parse((await openSecret(keys, { sealed: row.transcript_sealed, wrappedKey: row.transcript_key }, transcriptAad(orgId, lease.taskId))).toString('utf8')) as { messages: unknown[] };
    tr.messages.pop();
    const sealed = await sealSecret(keys, JSON.stringify(tr), transcriptAad(orgId, lease.taskId));
    await su.query(`UPDATE task_actions SET state = 'executing', result_digest = NULL, undo = NULL, finished_at = NULL WHERE task_id = $1 AND tool = $2`, [lease.taskId, tool]);
    await su.query(`UPDATE tasks SET transcript_sealed = $2, transcript_key = $3, epoch = epoch + 1, state = 'queued', lease_holder = NULL, lease_until = NULL WHERE id = $1`, [lease.taskId, sealed.sealed, sealed.wrappedKey]);
  };
}
