import { recordEvent, type AuditKeyring } from '@steward/audit';
import { type EgressOptions, guardedFetch, type Logger, newId } from '@steward/common';
import { type DataSource, inOrg, outsideOrg } from '@steward/db';
import type { KeyProvider } from '@steward/vault';
import { loadIncidentSettings, openIncidentSecrets, secretOf, signIncidentWebhook } from '../incidents/incidents';
import { postSlack, sendMails, slackText, smtpConfigured } from '../notifications/senders';
import { eachOrgAtOnce, orgEgress } from '../notifications/delivery';
import { NoticeDeferred, postSlackThroughConnector, type SlackConnectorNoticeDeps, slackThroughConnector } from '../notifications/slack-connector';
import { lockTaskOfApproval, resumeWaitingTask } from './task-store';

/**
 * Timers of the approval flow, swept from Postgres (Redis holds nothing to lose):
 * - expired approvals are marked `expired` and their task resumes, so the model is told the
 *   action was refused (the gate refuses the claim when the task comes back);
 * - notifications are delivered (`deliverNotifications`, below): webhook, e-mail over the org's
 *   SMTP server, Slack.
 */
export async function sweepExpiredApprovals(ds: DataSource, keys: KeyProvider, keyring: AuditKeyring, log: Logger, limit = 200): Promise<number> {
  const due: { org_id: string; id: string }[] = await outsideOrg(ds, (em) => em.query('SELECT org_id, id FROM steward_approvals_expired($1)', [limit]));
  let n = 0;
  for (const a of due) {
    const done = await inOrg(ds, { orgId: a.org_id }, async (em) => {
      await lockTaskOfApproval(em, a.org_id, a.id);
      const [row]: { task_id: string | null; action_type: string; action_id: string }[] = await em.query(
        `WITH u AS (UPDATE approvals a SET state = 'expired', decided_at = now() WHERE a.org_id = $1 AND a.id = $2 AND a.state IN ('pending', 'approved') AND a.expires_at <= now()
            -- (An approved action whose task waits for a place is kept: see ApprovedKeptForWaitingTask1766880000006.)
            AND NOT (a.state = 'approved' AND a.task_id IS NOT NULL AND EXISTS (SELECT 1 FROM tasks t WHERE t.org_id = a.org_id AND t.id = a.task_id AND t.state = 'queued' AND t.parked_since IS NOT NULL))
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

export interface NotificationDeps {
  ds: DataSource;
  keys: KeyProvider;
  log: Logger;
  /** The worker's connector settings (Slack notices through the org's Slack connector; its egress rules for webhooks and mail). */
  connectors?: SlackConnectorNoticeDeps['connectors'];
  /** The org's egress rules (orgEgressReader): absent, webhooks and mail reach public addresses only. */
  egress?: (orgId: string) => Promise<EgressOptions>;
}

export interface NotificationOptions {
  timeoutMs?: number;
  /** The console's external URL (STEWARD_CONSOLE_URL, else STEWARD_PUBLIC_URL): notices link to the approval there. */
  consoleUrl?: string;
}

type Notice = {
  channel: 'email' | 'webhook' | 'slack';
  kind: string;
  payload: Record<string, unknown> & { approvalId?: string; tool?: string; actionType?: string; delivered?: string[] };
  attempts: number;
};

/** Where a person opens the approval: the console's approvals page with it selected. */
export function approvalLink(consoleUrl: string | undefined, approvalId: string): string {
  return `${(consoleUrl ?? '').replace(/\/+$/, '')}/approvals?id=${encodeURIComponent(approvalId)}`;
}

/** What an approval notice says: tool, action type, who asked and why — never the arguments. */
function noticeText(kind: string, p: Notice['payload'], a: { requester: string; reason: string; expires_at: Date | string | null; quorum: number }, link: string) {
  const unknown = kind === 'approval.outcome_unknown';
  const headline = unknown ? `Outcome unknown: ${p.actionType} through ${p.tool}` : `Approval needed: ${p.actionType} through ${p.tool}`;
  return {
    subject: `[Steward] ${headline}`,
    text: [
      unknown ? 'This action was claimed, and its outcome was never written (a worker or API process stopped). Tell Steward whether it was carried out.' : 'An agent action waits for your decision.',
      `Tool: ${p.tool}`,
      `Action type: ${p.actionType}`,
      `Requested by: ${a.requester}`,
      `Reason: ${a.reason}`,
      ...(a.quorum > 1 ? [`Approvals needed: ${a.quorum}`] : []),
      ...(a.expires_at && !unknown ? [`Expires: ${new Date(a.expires_at).toISOString()}`] : []),
      '',
      `Open it in the Steward console: ${link}`,
    ].join('\n'),
    slack: `:raised_hand: ${unknown ? 'Outcome unknown' : 'Approval needed'}: *${slackText(String(p.actionType))}* through \`${slackText(String(p.tool))}\`, requested by ${slackText(a.requester)}. Reason: ${slackText(a.reason)}. <${link}|Open the approval in Steward>`,
  };
}

/**
 * Delivers pending approval notices. Webhooks go through the egress guard (the org's allowlist);
 * e-mail goes over the org's SMTP server (the incident settings) to the approvers the routing
 * names — the group's active members, else the approver role — never the requester, one message
 * each (a retry skips those already sent); with no SMTP server configured the row is only the
 * record (marked so, recipients resolved). Slack goes through the org's Slack connector to the
 * channel the incident settings name (as the member they name), else to its incident Slack webhook.
 * A failed delivery is retried with exponential backoff (2 s … 5 min), ten times at most.
 */
export async function deliverNotifications(deps: NotificationDeps, options: NotificationOptions = {}, limit = 100): Promise<number> {
  const { ds, log } = deps;
  const due: { org_id: string; id: string }[] = await outsideOrg(ds, (em) => em.query('SELECT org_id, id FROM steward_notifications_pending($1)', [limit]));
  let sent = 0;
  await eachOrgAtOnce(due, async (d) => {
    const job = await inOrg(ds, { orgId: d.org_id }, async (em) => {
      const [n]: Notice[] = await em.query(
        `SELECT channel, kind, payload, attempts FROM notifications WHERE org_id = $1 AND id = $2 AND state = 'pending' AND next_attempt_at <= now() FOR UPDATE SKIP LOCKED`,
        [d.org_id, d.id],
      );
      if (!n) return null;
      // A lease: another worker's sweep skips it while this one delivers (the outcome below replaces it).
      await em.query(`UPDATE notifications SET next_attempt_at = now() + interval '5 minutes' WHERE org_id = $1 AND id = $2`, [d.org_id, d.id]);
      const [org]: { notify_webhook_url: string | null }[] = await em.query(`SELECT notify_webhook_url FROM orgs WHERE id = $1`, [d.org_id]);
      const approvalId = typeof n.payload.approvalId === 'string' ? n.payload.approvalId : null;
      const [approval]: { requested_by: string; requester: string; reason: string; expires_at: Date | null; quorum: number; approver_group: string | null }[] = approvalId
        ? await em.query(
            `SELECT a.requested_by, coalesce(nullif(u.name, ''), u.email, 'a member') AS requester, a.reason, a.expires_at, a.quorum, a.approver_group
               FROM approvals a LEFT JOIN users u ON u.id = a.requested_by WHERE a.org_id = $1 AND a.id = $2`,
            [d.org_id, approvalId],
          )
        : [];
      // E-mail: the approvers the routing names (the group's members, else the approver role), active, never the requester.
      const group = approval?.approver_group ?? (typeof n.payload.approverGroup === 'string' ? n.payload.approverGroup : null);
      const requester = approval?.requested_by ?? null;
      const to: { email: string }[] =
        n.channel !== 'email' ? []
        : group ? await em.query(
            `SELECT u.email FROM group_members gm JOIN users u ON u.id = gm.user_id JOIN memberships m ON m.org_id = gm.org_id AND m.user_id = gm.user_id AND m.status = 'active'
              WHERE gm.org_id = $1 AND gm.group_id = $2 AND u.id IS DISTINCT FROM $3 ORDER BY u.email LIMIT 100`,
            [d.org_id, group, requester],
          )
        : await em.query(
            `SELECT u.email FROM role_assignments r JOIN users u ON u.id = r.user_id JOIN memberships m ON m.org_id = r.org_id AND m.user_id = r.user_id AND m.status = 'active'
              WHERE r.org_id = $1 AND r.role = 'approver' AND u.id IS DISTINCT FROM $2 ORDER BY u.email LIMIT 100`,
            [d.org_id, requester],
          );
      const needsSettings = n.channel === 'email' || n.channel === 'slack';
      return {
        ...n,
        approval,
        url: org?.notify_webhook_url ?? null,
        to: to.map((t) => t.email),
        settings: needsSettings ? await loadIncidentSettings(em, d.org_id) : null,
        // The webhook's signing secret is the org's (incident settings), as for incident notices.
        secrets: needsSettings || n.channel === 'webhook' ? await openIncidentSecrets(em, deps.keys, d.org_id) : {},
      };
    });
    if (!job) return;
    let error: string | null = null;
    let deferred = false;
    let payload: Notice['payload'] = job.payload;
    const channelOpts = { ...(await orgEgress(deps, d.org_id)), timeoutMs: options.timeoutMs ?? 10_000 };
    const approvalId = String(job.payload.approvalId ?? '');
    const text = noticeText(job.kind, job.payload, { requester: job.approval?.requester ?? 'a member', reason: job.approval?.reason ?? '', expires_at: job.approval?.expires_at ?? null, quorum: job.approval?.quorum ?? 1 }, approvalLink(options.consoleUrl, approvalId));
    try {
      if (job.channel === 'webhook') {
        if (!job.url) throw new Error('no webhook URL configured');
        const secret = secretOf(job.secrets, 'webhook_signing_secret');
        if (!secret) throw new Error('no webhook signing secret configured (incident settings)');
        // What it is, which notice and when, inside what is signed (a receiver dedupes on the id and refuses stale posts).
        const body = JSON.stringify({ kind: job.kind, ...job.payload, notificationId: d.id, sentAt: new Date().toISOString() });
        const res = await guardedFetch({ ...channelOpts, maxRedirects: 0 })(job.url, {
          method: 'POST',
          // Signed as incident notices are: HMAC-SHA-256 over "<unix seconds>.<body>" (x-steward-signature: t=…,v1=…).
          headers: { 'content-type': 'application/json', 'x-steward-event': job.kind, 'x-steward-delivery': d.id, 'x-steward-signature': signIncidentWebhook(secret, Math.floor(Date.now() / 1000), body) },
          body,
        });
        if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
      } else if (job.channel === 'slack') {
        if (job.settings && slackThroughConnector(job.settings)) await postSlackThroughConnector(deps, d.org_id, job.settings, text.slack);
        else {
          const url = secretOf(job.secrets, 'slack_webhook_url');
          if (!url) throw new Error('no Slack webhook URL configured');
          await postSlack(url, channelOpts, text.slack);
        }
      } else if (job.settings && smtpConfigured(job.settings)) {
        const s = job.settings;
        const delivered = new Set(Array.isArray(job.payload.delivered) ? job.payload.delivered : []);
        const pending = job.to.filter((t) => !delivered.has(t));
        try {
          await sendMails(s, s.smtp_user ? secretOf(job.secrets, 'smtp_password') : undefined, channelOpts, pending.map((t) => ({ to: t, subject: text.subject, text: text.text })), (t) => delivered.add(t));
        } finally {
          payload = { ...payload, to: job.to, delivered: [...delivered], sender: 'smtp' };
        }
      } else {
        payload = { ...payload, to: job.to, sender: 'outbox-only (no SMTP configured)' };
      }
    } catch (err) {
      error = ((err as Error).message || 'delivery failed').slice(0, 300);
      deferred = err instanceof NoticeDeferred;
    }
    // A deferred notice (the kill switch holds the Slack connector's credential) waits a minute and uses up no attempt.
    await inOrg(ds, { orgId: d.org_id }, (em) =>
      em.query(
        `UPDATE notifications SET attempts = attempts + CASE WHEN $5 THEN 0 ELSE 1 END,
                state = CASE WHEN $3::text IS NULL THEN 'sent' WHEN NOT $5 AND attempts + 1 >= 10 THEN 'failed' ELSE 'pending' END,
                next_attempt_at = now() + CASE WHEN $5 THEN interval '1 minute' ELSE make_interval(secs => least(power(2, attempts + 1), 300)) END,
                last_error = $3, sent_at = CASE WHEN $3::text IS NULL THEN now() END, payload = $4 WHERE org_id = $1 AND id = $2`,
        [d.org_id, d.id, error, JSON.stringify(payload), deferred],
      ),
    );
    if (job.channel === 'email' && !error) {
      log.info({ orgId: d.org_id, notification: d.id, kind: job.kind, recipients: job.to.length, sender: payload.sender }, payload.sender === 'smtp' ? 'approval e-mail sent' : 'e-mail notification recorded in the outbox (no SMTP configured)');
    }
    if (!error) sent++;
    else log.warn({ orgId: d.org_id, notification: d.id, channel: job.channel, error }, 'notification not delivered (retried)');
  });
  return sent;
}
