import { recordEvent, type AuditKeyring } from '@steward/audit';
import { guardedFetch, type Logger, newId } from '@steward/common';
import { type DataSource, inOrg, outsideOrg } from '@steward/db';
import type { KeyProvider } from '@steward/vault';
import { resumeWaitingTask } from './task-store';

/**
 * Timers of the approval flow, swept from Postgres (Redis holds nothing to lose):
 * - expired approvals are marked `expired` and their task resumes, so the model is told the
 *   action was refused (the gate refuses the claim when the task comes back);
 * - notifications are delivered: webhooks through the egress guard (the org's allowlist applies);
 *   e-mail has no SMTP sender in this build — the row is marked sent with its recipients
 *   resolved (the approvers' addresses), so the outbox is the record a mail relay would read.
 *   A failed delivery is retried with exponential backoff (2 s … 5 min), ten times at most.
 */
export async function sweepExpiredApprovals(ds: DataSource, keys: KeyProvider, keyring: AuditKeyring, log: Logger, limit = 200): Promise<number> {
  const due: { org_id: string; id: string }[] = await outsideOrg(ds, (em) => em.query('SELECT org_id, id FROM steward_approvals_expired($1)', [limit]));
  let n = 0;
  for (const a of due) {
    const done = await inOrg(ds, { orgId: a.org_id }, async (em) => {
      const [row]: { task_id: string | null; action_type: string; action_id: string }[] = await em.query(
        `WITH u AS (UPDATE approvals SET state = 'expired', decided_at = now() WHERE org_id = $1 AND id = $2 AND state IN ('pending', 'approved') AND expires_at <= now()
          RETURNING task_id, action_type, action_id) SELECT * FROM u`,
        [a.org_id, a.id],
      );
      if (!row) return false;
      await recordEvent(em, keyring, {
        id: newId(),
        orgId: a.org_id,
        occurredAt: new Date(),
        actor: { type: 'system', id: null },
        action: 'approval.expire',
        target: { type: 'Approval', id: a.id },
        outcome: 'success',
        task: row.task_id,
        approval: a.id,
        client: 'system',
        payload: { actionId: row.action_id, actionType: row.action_type },
      });
      if (row.task_id) await resumeWaitingTask(em, keys, a.org_id, row.task_id, 'approval_expired');
      return true;
    });
    if (done) n++;
  }
  if (n) log.info({ expired: n }, 'approvals expired');
  return n;
}

export async function deliverNotifications(ds: DataSource, log: Logger, options: { timeoutMs?: number } = {}, limit = 100): Promise<number> {
  const due: { org_id: string; id: string }[] = await outsideOrg(ds, (em) => em.query('SELECT org_id, id FROM steward_notifications_pending($1)', [limit]));
  let sent = 0;
  for (const d of due) {
    const job = await inOrg(ds, { orgId: d.org_id }, async (em) => {
      const [n]: { channel: string; kind: string; payload: Record<string, unknown>; attempts: number }[] = await em.query(
        `SELECT channel, kind, payload, attempts FROM notifications WHERE org_id = $1 AND id = $2 AND state = 'pending' AND next_attempt_at <= now() FOR UPDATE SKIP LOCKED`,
        [d.org_id, d.id],
      );
      if (!n) return null;
      const [org]: { notify_webhook_url: string | null }[] = await em.query(`SELECT notify_webhook_url FROM orgs WHERE id = $1`, [d.org_id]);
      const hosts: { host: string }[] = await em.query('SELECT host FROM egress_allow_hosts WHERE org_id = $1', [d.org_id]);
      // E-mail: the approvers the routing names (the group's members, else the approver role).
      const group = typeof n.payload.approverGroup === 'string' ? n.payload.approverGroup : null;
      const to: { email: string }[] =
        n.channel !== 'email' ? []
        : group ? await em.query(`SELECT u.email FROM group_members gm JOIN users u ON u.id = gm.user_id WHERE gm.org_id = $1 AND gm.group_id = $2 ORDER BY u.email LIMIT 100`, [d.org_id, group])
        : await em.query(`SELECT u.email FROM role_assignments r JOIN users u ON u.id = r.user_id WHERE r.org_id = $1 AND r.role = 'approver' ORDER BY u.email LIMIT 100`, [d.org_id]);
      return { ...n, url: org?.notify_webhook_url ?? null, allowHosts: hosts.map((h) => h.host), to: to.map((t) => t.email) };
    });
    if (!job) continue;
    let error: string | null = null;
    let payload = job.payload;
    if (job.channel === 'webhook') {
      if (!job.url) error = 'no webhook URL configured';
      else {
        try {
          const res = await guardedFetch({ allowHosts: job.allowHosts, timeoutMs: options.timeoutMs ?? 10_000, maxRedirects: 0 })(job.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ kind: job.kind, ...job.payload }),
          });
          if (res.status >= 300) error = `webhook answered ${res.status}`;
        } catch (err) {
          error = (err as Error).message.slice(0, 200);
        }
      }
    } else {
      payload = { ...payload, to: job.to, sender: 'outbox-only (no SMTP configured)' };
    }
    await inOrg(ds, { orgId: d.org_id }, (em) =>
      em.query(
        `UPDATE notifications SET attempts = attempts + 1, state = CASE WHEN $3::text IS NULL THEN 'sent' WHEN attempts + 1 >= 10 THEN 'failed' ELSE 'pending' END,
                next_attempt_at = now() + make_interval(secs => least(power(2, attempts + 1), 300)),
                last_error = $3, sent_at = CASE WHEN $3::text IS NULL THEN now() END, payload = $4 WHERE org_id = $1 AND id = $2`,
        [d.org_id, d.id, error, JSON.stringify(payload)],
      ),
    );
    if (job.channel === 'email' && !error) log.info({ orgId: d.org_id, notification: d.id, kind: job.kind, recipients: job.to.length }, 'e-mail notification recorded in the outbox (no SMTP sender)');
    if (!error) sent++;
    else log.warn({ orgId: d.org_id, notification: d.id, error }, 'notification not delivered (retried)');
  }
  return sent;
}
