import { createHmac } from 'node:crypto';
import { recordEvent, type AuditKeyring } from '@steward/audit';
import { type EgressOptions, guardedFetch, type Logger, newId } from '@steward/common';
import { type DataSource, type EntityManager, inOrg, outsideOrg } from '@steward/db';
import { incidentSecretAad, type KeyProvider, openSecret, sealSecret } from '@steward/vault';
import { postSlack, sendMails, slackText, type SmtpSettings } from '../notifications/senders';
import { eachOrgAtOnce, orgEgress } from '../notifications/delivery';
import { NoticeDeferred, postSlackThroughConnector, type SlackConnectorNoticeDeps, slackThroughConnector } from '../notifications/slack-connector';
import { sanctionAutomaticStrikes } from './strikes';

/**
 * Incidents: opened by hand, by a Forbidden attempt (a violation) or by a high-severity report
 * finding. Each has an owner and must be acknowledged within the org's window (24 h by default);
 * an open one escalates, one step at a time, to the next contact of the org's escalation chain and
 * finally to its named executive (the CTO of the seed policy), through the org's channels: a signed
 * webhook, e-mail over SMTP, a Slack incoming webhook. Timers and notices are swept from Postgres
 * with the caller's clock (`now`), so tests drive time instead of sleeping.
 */

export type IncidentSeverity = 'low' | 'medium' | 'high' | 'critical';
export type IncidentSource = 'manual' | 'violation' | 'finding';
export type IncidentChannel = 'webhook' | 'email' | 'slack';
export const INCIDENT_CHANNELS: readonly IncidentChannel[] = ['webhook', 'email', 'slack'];
export type IncidentSecretName = 'webhook_signing_secret' | 'smtp_password' | 'slack_webhook_url';
export const INCIDENT_SECRET_NAMES: readonly IncidentSecretName[] = ['webhook_signing_secret', 'smtp_password', 'slack_webhook_url'];


export interface IncidentSettingsRow extends SmtpSettings {
  owner_user_id: string | null;
  escalation_chain: string[];
  executive_user_id: string | null;
  executive_title: string;
  ack_minutes: number;
  step_minutes: number;
  channels: IncidentChannel[];
  webhook_url: string | null;
  smtp_host: string | null;
  smtp_port: number | null;
  smtp_secure: boolean;
  smtp_user: string | null;
  smtp_from: string | null;
  /** Slack notices through the org's Slack connector: the channel, and the member whose connected Slack account posts (both or neither). */
  slack_channel: string | null;
  slack_post_as: string | null;
}

export const DEFAULT_INCIDENT_SETTINGS: IncidentSettingsRow = {
  owner_user_id: null,
  escalation_chain: [],
  executive_user_id: null,
  executive_title: 'CTO',
  ack_minutes: 720,
  step_minutes: 240,
  channels: ['email'],
  webhook_url: null,
  smtp_host: null,
  smtp_port: null,
  smtp_secure: false,
  smtp_user: null,
  smtp_from: null,
  slack_channel: null,
  slack_post_as: null,
};

export async function loadIncidentSettings(em: EntityManager, orgId: string): Promise<IncidentSettingsRow> {
  const [row]: IncidentSettingsRow[] = await em.query(
    `SELECT owner_user_id, escalation_chain, executive_user_id, executive_title, ack_minutes, step_minutes, channels, webhook_url,
            smtp_host, smtp_port, smtp_secure, smtp_user, smtp_from, slack_channel, slack_post_as FROM incident_settings WHERE org_id = $1`,
    [orgId],
  );
  return row ?? DEFAULT_INCIDENT_SETTINGS;
}

/** Seals one channel secret under its own data key (never stored or returned in the clear). */
export async function storeIncidentSecret(em: EntityManager, keys: KeyProvider, orgId: string, name: IncidentSecretName, value: string | null): Promise<void> {
  if (value === null) {
    await em.query(`DELETE FROM incident_secrets WHERE org_id = $1 AND name = $2`, [orgId, name]);
    return;
  }
  const s = await sealSecret(keys, value, incidentSecretAad(orgId, name));
  await em.query(
    `INSERT INTO incident_secrets (org_id, name, sealed, wrapped_key) VALUES ($1, $2, $3, $4)
     ON CONFLICT (org_id, name) DO UPDATE SET sealed = EXCLUDED.sealed, wrapped_key = EXCLUDED.wrapped_key, updated_at = now()`,
    [orgId, name, s.sealed, s.wrappedKey],
  );
}

/** Each secret opened on its own: one that does not open fails only the channel that needs it. */
export async function openIncidentSecrets(em: EntityManager, keys: KeyProvider, orgId: string): Promise<Partial<Record<IncidentSecretName, string | Error>>> {
  const rows: { name: IncidentSecretName; sealed: Buffer; wrapped_key: string }[] = await em.query(`SELECT name, sealed, wrapped_key FROM incident_secrets WHERE org_id = $1`, [orgId]);
  const out: Partial<Record<IncidentSecretName, string | Error>> = {};
  for (const r of rows) {
    try {
      out[r.name] = (await openSecret(keys, { sealed: r.sealed, wrappedKey: r.wrapped_key }, incidentSecretAad(orgId, r.name))).toString('utf8');
    } catch {
      out[r.name] = new Error(`the ${r.name.replace(/_/g, ' ')} does not open (re-enter it)`);
    }
  }
  return out;
}

/** A channel's secret, or the reason it does not open (thrown: the delivery fails and is retried). */
export function secretOf(secrets: Partial<Record<IncidentSecretName, string | Error>>, name: IncidentSecretName): string | undefined {
  const v = secrets[name];
  if (v instanceof Error) throw v;
  return v;
}

/** Records one audit event in the caller's transaction (the API passes its principal's, the sweeper the system's). */
export type IncidentAudit = (em: EntityManager, event: { action: string; targetId: string; payload: Record<string, unknown> }) => Promise<void>;

export function systemIncidentAudit(orgId: string, keyring: AuditKeyring, now: Date): IncidentAudit {
  return (em, e) =>
    recordEvent(em, keyring, {
      id: newId(),
      orgId,
      occurredAt: now,
      actor: { type: 'system', id: null },
      action: e.action,
      target: { type: 'Incident', id: e.targetId },
      outcome: 'success',
      client: 'system',
      payload: e.payload,
    });
}

export interface OpenIncidentInput {
  orgId: string;
  title: string;
  description?: string;
  severity: IncidentSeverity;
  source: IncidentSource;
  /** Idempotency key within the source: the violation id, the finding's key. */
  sourceRef?: string | null;
  violationId?: string | null;
  taskId?: string | null;
  subjectUserId?: string | null;
  actionType?: string | null;
  evidence?: Record<string, unknown>;
  ownerId?: string | null;
  openedBy?: string | null;
  now: Date;
}

type Recipient = { userId: string; role: 'owner' | 'contact' | 'executive' };

/** Queues one notice per configured channel for a recipient (the e-mail goes to their address). */
async function queueNotices(em: EntityManager, orgId: string, incident: { id: string; title: string; severity: string; ack_due_at: Date | string; state: string }, level: number, to: Recipient, s: IncidentSettingsRow, now: Date, event: string) {
  const [user]: { email: string; display_name: string | null }[] = await em.query(
    `SELECT u.email, u.name AS display_name FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2 AND m.status = 'active'`,
    [orgId, to.userId],
  );
  // A member who is not active (suspended, deprovisioned) is told nothing of the org's incidents: not theirs to handle now.
  if (!user) return 0;
  const payload = {
    event,
    incidentId: incident.id,
    title: incident.title,
    severity: incident.severity,
    state: incident.state,
    level,
    ackDueAt: new Date(incident.ack_due_at).toISOString(),
    recipient: { userId: to.userId, email: user.email, name: user.display_name, role: to.role, ...(to.role === 'executive' ? { title: s.executive_title } : {}) },
  };
  let n = 0;
  for (const channel of s.channels) {
    await em.query(
      `INSERT INTO incident_notifications (org_id, id, incident_id, level, channel, recipient_user_id, payload, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [orgId, newId(), incident.id, level, channel, to.userId, JSON.stringify(payload), now],
    );
    n++;
  }
  return n;
}

/**
 * Opens an incident in the caller's transaction, with its audit event; idempotent per
 * (source, sourceRef): a second call returns the existing one with `created: false`.
 */
export async function openIncident(em: EntityManager, input: OpenIncidentInput, audit: IncidentAudit): Promise<{ id: string; created: boolean }> {
  const s = await loadIncidentSettings(em, input.orgId);
  const owner = input.ownerId ?? s.owner_user_id ?? s.escalation_chain[0] ?? s.executive_user_id ?? null;
  const ackDue = new Date(input.now.getTime() + s.ack_minutes * 60_000);
  const id = newId(input.now.getTime());
  const rows: { id: string; title: string; severity: string; ack_due_at: Date; state: string }[] = await em.query(
    `INSERT INTO incidents (org_id, id, title, description, severity, source, source_ref, violation_id, task_id, subject_user_id, action_type, evidence,
                            owner_id, opened_by, ack_due_at, next_escalation_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $16)
     ON CONFLICT (org_id, source, source_ref) WHERE source_ref IS NOT NULL DO NOTHING
     RETURNING id, title, severity, ack_due_at, state`,
    [
      input.orgId, id, input.title, input.description ?? '', input.severity, input.source, input.sourceRef ?? null, input.violationId ?? null,
      input.taskId ?? null, input.subjectUserId ?? null, input.actionType ?? null, JSON.stringify(input.evidence ?? {}), owner, input.openedBy ?? null, ackDue, input.now,
    ],
  );
  if (!rows.length) {
    const [existing]: { id: string }[] = await em.query(`SELECT id FROM incidents WHERE org_id = $1 AND source = $2 AND source_ref = $3`, [input.orgId, input.source, input.sourceRef]);
    return { id: existing.id, created: false };
  }
  const notices = owner ? await queueNotices(em, input.orgId, rows[0], 0, { userId: owner, role: 'owner' }, s, input.now, 'incident.opened') : 0;
  await audit(em, {
    action: 'incident.open',
    targetId: id,
    payload: { source: input.source, sourceRef: input.sourceRef ?? null, severity: input.severity, ownerId: owner, ackDueAt: ackDue.toISOString(), notices },
  });
  return { id, created: true };
}

/** Who the incident escalates to at each step: the chain in order, then the executive (each once). */
export function escalationTargets(s: IncidentSettingsRow, ownerId: string | null): Recipient[] {
  const seen = new Set<string>(ownerId ? [ownerId] : []);
  const out: Recipient[] = [];
  for (const u of s.escalation_chain) {
    if (seen.has(u)) continue;
    seen.add(u);
    out.push({ userId: u, role: 'contact' });
  }
  if (s.executive_user_id && !seen.has(s.executive_user_id)) out.push({ userId: s.executive_user_id, role: 'executive' });
  return out;
}

export interface IncidentSweepDeps {
  ds: DataSource;
  keys: KeyProvider;
  keyring: AuditKeyring;
  log: Logger;
  /** The worker's connector settings (Slack notices through the org's Slack connector). */
  connectors?: SlackConnectorNoticeDeps['connectors'];
  /** The org's egress rules (orgEgressReader): absent, webhooks and mail reach public addresses only. */
  egress?: (orgId: string) => Promise<EgressOptions>;
}

/** Opens an incident for each Forbidden attempt recorded since this feature exists (idempotent). */
export async function openIncidentsForViolations(deps: IncidentSweepDeps, now: Date, limit = 200): Promise<number> {
  const due: { org_id: string; id: string }[] = await outsideOrg(deps.ds, (em) => em.query('SELECT org_id, id FROM steward_violations_without_incident($1)', [limit]));
  let n = 0;
  for (const v of due) {
    const created = await inOrg(deps.ds, { orgId: v.org_id }, async (em) => {
      const [row]: { id: string; user_id: string; task_id: string | null; action_id: string; connector: string; tool: string; action_type: string; tainted: boolean; labels: string[]; rule_ids: string[]; reason: string }[] =
        await em.query(`SELECT id, user_id, task_id, action_id, connector, tool, action_type, tainted, labels, rule_ids, reason FROM violations WHERE org_id = $1 AND id = $2`, [v.org_id, v.id]);
      if (!row) return false;
      const r = await openIncident(
        em,
        {
          orgId: v.org_id,
          title: `Forbidden attempt: ${row.action_type} through ${row.connector}/${row.tool}`.slice(0, 200),
          description: row.reason.slice(0, 4000),
          severity: 'high',
          source: 'violation',
          sourceRef: row.id,
          violationId: row.id,
          taskId: row.task_id,
          subjectUserId: row.user_id,
          actionType: row.action_type,
          evidence: { actionId: row.action_id, connector: row.connector, tool: row.tool, tainted: row.tainted, labels: row.labels, ruleIds: row.rule_ids },
          now,
        },
        systemIncidentAudit(v.org_id, deps.keyring, now),
      );
      return r.created;
    });
    if (created) n++;
  }
  if (n) deps.log.info({ opened: n }, 'incidents opened for Forbidden attempts');
  return n;
}

/** Escalates every open incident whose acknowledgement (or previous step) is overdue at `now`. */
export async function escalateIncidents(deps: IncidentSweepDeps, now: Date, limit = 200): Promise<number> {
  const due: { org_id: string; id: string }[] = await outsideOrg(deps.ds, (em) => em.query('SELECT org_id, id FROM steward_incidents_due($1, $2)', [now, limit]));
  let n = 0;
  for (const d of due) {
    const done = await inOrg(deps.ds, { orgId: d.org_id }, async (em) => {
      const [inc]: { id: string; title: string; severity: string; ack_due_at: Date; state: string; owner_id: string | null; escalation_level: number }[] = await em.query(
        `SELECT id, title, severity, ack_due_at, state, owner_id, escalation_level FROM incidents
          WHERE org_id = $1 AND id = $2 AND state = 'open' AND next_escalation_at <= $3 FOR UPDATE SKIP LOCKED`,
        [d.org_id, d.id, now],
      );
      if (!inc) return false;
      const s = await loadIncidentSettings(em, d.org_id);
      const targets = escalationTargets(s, inc.owner_id);
      const level = inc.escalation_level + 1;
      const to = targets[inc.escalation_level];
      const next = to && level < targets.length ? new Date(now.getTime() + s.step_minutes * 60_000) : null;
      await em.query(`UPDATE incidents SET escalation_level = $3, next_escalation_at = $4, last_escalated_at = $5, updated_at = $5 WHERE org_id = $1 AND id = $2`, [
        d.org_id, d.id, to ? level : inc.escalation_level, next, now,
      ]);
      const notices = to ? await queueNotices(em, d.org_id, inc, level, to, s, now, 'incident.escalated') : 0;
      await systemIncidentAudit(d.org_id, deps.keyring, now)(em, {
        action: 'incident.escalate',
        targetId: d.id,
        payload: to ? { level, to: to.userId, role: to.role, notices, nextEscalationAt: next?.toISOString() ?? null } : { level: inc.escalation_level, to: null, reason: 'nobody left to escalate to' },
      });
      return Boolean(to);
    });
    if (done) n++;
  }
  if (n) deps.log.info({ escalated: n }, 'incidents escalated');
  return n;
}

/** The webhook signature: HMAC-SHA-256 over "<unix seconds>.<body>", sent as `t=<ts>,v1=<hex>`. */
export function signIncidentWebhook(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface DeliverOptions {
  timeoutMs?: number;
}

/** Delivers pending incident notices due at `now`; a failure is retried with backoff (2 s … 5 min), ten times at most. */
export async function deliverIncidentNotifications(deps: IncidentSweepDeps, now: Date, options: DeliverOptions = {}, limit = 100): Promise<number> {
  const due: { org_id: string; id: string }[] = await outsideOrg(deps.ds, (em) => em.query('SELECT org_id, id FROM steward_incident_notifications_pending($1, $2)', [now, limit]));
  let sent = 0;
  await eachOrgAtOnce(due, async (d) => {
    const job = await inOrg(deps.ds, { orgId: d.org_id }, async (em) => {
      const [n]: { channel: IncidentChannel; payload: Record<string, unknown> & { recipient: { email: string }; title: string; severity: string; level: number }; attempts: number }[] = await em.query(
        `SELECT channel, payload, attempts FROM incident_notifications WHERE org_id = $1 AND id = $2 AND state = 'pending' AND next_attempt_at <= $3 FOR UPDATE SKIP LOCKED`,
        [d.org_id, d.id, now],
      );
      if (!n) return null;
      // A lease: another worker's sweep skips it while this one delivers (the outcome below replaces it).
      // From the database's clock (or the pass's, if later): a pass that has run long must not lease what it takes already expired.
      await em.query(`UPDATE incident_notifications SET next_attempt_at = greatest(now(), $3::timestamptz) + interval '5 minutes' WHERE org_id = $1 AND id = $2`, [d.org_id, d.id, now]);
      const s = await loadIncidentSettings(em, d.org_id);
      return { ...n, settings: s, secrets: await openIncidentSecrets(em, deps.keys, d.org_id) };
    });
    if (!job) return;
    let error: string | null = null;
    let deferred = false;
    const p = job.payload;
    try {
      const fetchOpts = { ...(await orgEgress(deps, d.org_id)), timeoutMs: options.timeoutMs ?? 10_000, maxRedirects: 0 };
      if (job.channel === 'webhook') {
        if (!job.settings.webhook_url) throw new Error('no webhook URL configured');
        const secret = secretOf(job.secrets, 'webhook_signing_secret');
        if (!secret) throw new Error('no webhook signing secret configured');
        const body = JSON.stringify({ ...p, notificationId: d.id, sentAt: now.toISOString() });
        const res = await guardedFetch(fetchOpts)(job.settings.webhook_url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-steward-event': String(p.event), 'x-steward-delivery': d.id, 'x-steward-signature': signIncidentWebhook(secret, Math.floor(now.getTime() / 1000), body) },
          body,
        });
        if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
      } else if (job.channel === 'slack') {
        const verb = p.event === 'incident.opened' ? 'opened' : `escalated (level ${p.level})`;
        const text = `:rotating_light: Incident ${verb}: *${slackText(String(p.title))}* (${p.severity}) — ${slackText(p.recipient.email)}, please acknowledge by ${p.ackDueAt}. Incident ${p.incidentId}`;
        if (slackThroughConnector(job.settings)) await postSlackThroughConnector(deps, d.org_id, job.settings, text);
        else {
          const url = secretOf(job.secrets, 'slack_webhook_url');
          if (!url) throw new Error('no Slack webhook URL configured');
          await postSlack(url, fetchOpts, text);
        }
      } else {
        const verb = p.event === 'incident.opened' ? 'opened' : 'escalated to you';
        await sendMails(job.settings, job.settings.smtp_user ? secretOf(job.secrets, 'smtp_password') : undefined, fetchOpts, [
          {
            to: p.recipient.email,
            subject: `[Steward] Incident ${verb}: ${p.title} (${p.severity})`,
            text: [
              `Incident ${p.incidentId} (${p.severity}) ${verb}.`,
              `Title: ${p.title}`,
              `Escalation level: ${p.level}`,
              `Acknowledge by: ${p.ackDueAt}`,
              '',
              'Acknowledge it in the Steward console or with POST /v1/incidents/<id>/acknowledge.',
            ].join('\n'),
          },
        ]);
      }
    } catch (err) {
      error = ((err as Error).message || 'delivery failed').slice(0, 300);
      deferred = err instanceof NoticeDeferred;
    }
    // A deferred notice (the kill switch holds the Slack connector's credential) waits a minute and uses up no attempt.
    await inOrg(deps.ds, { orgId: d.org_id }, (em) =>
      em.query(
        `UPDATE incident_notifications SET attempts = attempts + CASE WHEN $5 THEN 0 ELSE 1 END,
                state = CASE WHEN $3::text IS NULL THEN 'sent' WHEN NOT $5 AND attempts + 1 >= 10 THEN 'failed' ELSE 'pending' END,
                next_attempt_at = $4::timestamptz + CASE WHEN $5 THEN interval '1 minute' ELSE make_interval(secs => least(power(2, attempts + 1), 300)) END,
                last_error = $3, sent_at = CASE WHEN $3::text IS NULL THEN $4::timestamptz END WHERE org_id = $1 AND id = $2`,
        [d.org_id, d.id, error, now, deferred],
      ),
    );
    if (!error) sent++;
    else deps.log.warn({ orgId: d.org_id, notification: d.id, channel: job.channel, error }, 'incident notice not delivered (retried)');
  });
  return sent;
}

/**
 * One pass of the incident timers (the worker runs it on its relay tick with the wall clock, with
 * `deliver: false`: it sends the notices in a loop of its own).
 */
export async function sweepIncidents(deps: IncidentSweepDeps, now: Date = new Date(), options: DeliverOptions & { deliver?: boolean } = {}): Promise<{ opened: number; escalated: number; delivered: number; sanctioned: number }> {
  const opened = await openIncidentsForViolations(deps, now);
  const escalated = await escalateIncidents(deps, now);
  const delivered = options.deliver === false ? 0 : await deliverIncidentNotifications(deps, now, options);
  const sanctioned = await sanctionAutomaticStrikes(deps, now);
  return { opened, escalated, delivered, sanctioned };
}
