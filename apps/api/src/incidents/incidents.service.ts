import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, newId, UUID_PATTERN } from '@steward/common';
import type { EntityManager } from '@steward/db';
import { type IncidentAudit, type IncidentSecretName, loadIncidentSettings, openIncident, storeIncidentSecret, systemIncidentAudit } from '@steward/jobs';
import { ConfigKeyProvider, type KeyProvider } from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import type {
  AcknowledgeBody,
  AssignBody,
  CloseBody,
  CommentBody,
  CreateIncidentBody,
  IncidentSettingsView,
  IncidentView,
  ListIncidentsQuery,
  PutIncidentSettingsBody,
  ResolveBody,
} from './incidents.schemas';

interface IncidentRow {
  id: string;
  title: string;
  description: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  source: 'manual' | 'violation' | 'finding';
  source_ref: string | null;
  violation_id: string | null;
  task_id: string | null;
  subject_user_id: string | null;
  action_type: string | null;
  evidence: Record<string, unknown>;
  state: 'open' | 'acknowledged' | 'resolved' | 'closed';
  owner_id: string | null;
  opened_by: string | null;
  ack_due_at: Date;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  resolved_at: Date | null;
  resolution: string | null;
  closed_at: Date | null;
  escalation_level: number;
  next_escalation_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

function view(r: IncidentRow): z.infer<typeof IncidentView> {
  return {
    id: r.id,
    title: r.title,
    description: r.description,
    severity: r.severity,
    source: r.source,
    sourceRef: r.source_ref,
    violationId: r.violation_id,
    taskId: r.task_id,
    subjectUserId: r.subject_user_id,
    actionType: r.action_type,
    evidence: r.evidence,
    state: r.state,
    ownerId: r.owner_id,
    openedBy: r.opened_by,
    ackDueAt: iso(r.ack_due_at)!,
    acknowledgedAt: iso(r.acknowledged_at),
    acknowledgedBy: r.acknowledged_by,
    resolvedAt: iso(r.resolved_at),
    resolution: r.resolution,
    closedAt: iso(r.closed_at),
    escalationLevel: r.escalation_level,
    nextEscalationAt: iso(r.next_escalation_at),
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

/** A finding of the anomaly report, as the report helper hands it over. */
export interface IncidentFinding {
  /** Stable key of the finding (report id + finding id): one incident per finding. */
  key: string;
  title: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  description?: string;
  /** Links to the audit events, the baseline it was measured against. */
  evidence?: Record<string, unknown>;
  subjectUserId?: string | null;
  actionType?: string | null;
}

const SECRET_FIELDS: Record<'webhookSigningSecret' | 'smtpPassword' | 'slackWebhookUrl', IncidentSecretName> = {
  webhookSigningSecret: 'webhook_signing_secret',
  smtpPassword: 'smtp_password',
  slackWebhookUrl: 'slack_webhook_url',
};

/**
 * Incidents: open by hand or from a finding, acknowledge (stops escalation), assign, resolve,
 * close, comment; the org's escalation settings. Each change is audited in its transaction; the
 * escalation timers run in the worker (libs/jobs incidents.ts).
 */
@Injectable()
export class IncidentsService {
  private readonly keys: KeyProvider;

  constructor(
    @Inject(CONFIG) config: Config,
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {
    this.keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  }

  private auditAs(p: Principal): IncidentAudit {
    return (em, e) => this.audit.record(em, p, { action: e.action, targetType: 'Incident', targetId: e.targetId, payload: e.payload });
  }

  private async load(em: EntityManager, orgId: string, id: string, lock = false): Promise<IncidentRow> {
    const [row]: IncidentRow[] = UUID_PATTERN.test(id) ? await em.query(`SELECT * FROM incidents WHERE org_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [orgId, id]) : [];
    if (!row) throw AppError.notFound('incident');
    return row;
  }

  private async assertMembers(em: EntityManager, orgId: string, ids: (string | null | undefined)[], path: string): Promise<void> {
    const wanted = [...new Set(ids.filter((x): x is string => !!x))];
    if (!wanted.length) return;
    const rows: { user_id: string }[] = await em.query(`SELECT user_id FROM memberships WHERE org_id = $1 AND user_id = ANY($2::uuid[])`, [orgId, wanted]);
    const found = new Set(rows.map((r) => r.user_id));
    const missing = wanted.filter((u) => !found.has(u));
    if (missing.length) throw AppError.validation(missing.map((u) => ({ path, message: `${u} is not a member of this org` })));
  }

  /**
   * Who posts Slack notices through the connector: an active member of this org whose Slack account
   * is connected to the org's installed Slack connector (the broker will release that credential).
   */
  private async assertSlackPoster(em: EntityManager, orgId: string, userId: string): Promise<void> {
    const [row]: { member: string | null; connector: string | null; connected: boolean }[] = await em.query(
      `SELECT (SELECT m.status FROM memberships m WHERE m.org_id = $1 AND m.user_id = $2) AS member,
              c.id AS connector,
              EXISTS (SELECT 1 FROM credentials k WHERE k.org_id = $1 AND k.connector_id = c.id AND k.user_id = $2 AND k.status = 'active') AS connected
         FROM (SELECT 1) one
         LEFT JOIN LATERAL (SELECT id FROM connectors WHERE org_id = $1 AND catalog_id = 'slack' AND kind = 'builtin' AND status = 'active' ORDER BY created_at, id LIMIT 1) c ON true`,
      [orgId, userId],
    );
    if (!row?.member) throw AppError.validation([{ path: 'slack.postAs', message: `${userId} is not a member of this org` }]);
    if (row.member !== 'active') throw AppError.validation([{ path: 'slack.postAs', message: 'this member is not active (suspended or removed): their Slack account cannot post notices' }]);
    if (!row.connector) throw AppError.validation([{ path: 'slack', message: 'install the Slack connector first (Connectors), then have the posting member connect their Slack account' }]);
    if (!row.connected) throw AppError.validation([{ path: 'slack.postAs', message: 'this member has not connected their Slack account to the Slack connector yet (Connectors → Slack → Connect)' }]);
  }

  async list(p: Principal, q: z.infer<typeof ListIncidentsQuery>) {
    await this.access.authorize(p, 'read', 'Incident');
    const params: unknown[] = [p.orgId];
    const where = ['org_id = $1'];
    if (q.state) where.push(`state = $${params.push(q.state)}`);
    if (q.severity) where.push(`severity = $${params.push(q.severity)}`);
    if (q.cursor) where.push(`id < $${params.push(q.cursor)}`);
    return this.db.inOrg(p, async (em) => {
      const rows: IncidentRow[] = await em.query(`SELECT * FROM incidents WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.push(q.limit + 1)}`, params);
      const items = rows.slice(0, q.limit);
      return { items: items.map(view), nextCursor: rows.length > q.limit ? items[items.length - 1].id : null };
    });
  }

  private async detail(em: EntityManager, orgId: string, id: string) {
    const r = await this.load(em, orgId, id);
    const comments: { id: string; author_id: string | null; body: string; created_at: Date }[] = await em.query(
      `SELECT id, author_id, body, created_at FROM incident_comments WHERE org_id = $1 AND incident_id = $2 ORDER BY id LIMIT 500`,
      [orgId, id],
    );
    const notices: { id: string; level: number; channel: 'webhook' | 'email' | 'slack'; recipient_user_id: string | null; state: 'pending' | 'sent' | 'failed'; attempts: number; last_error: string | null; created_at: Date; sent_at: Date | null }[] =
      await em.query(
        `SELECT id, level, channel, recipient_user_id, state, attempts, last_error, created_at, sent_at FROM incident_notifications WHERE org_id = $1 AND incident_id = $2 ORDER BY created_at, id LIMIT 500`,
        [orgId, id],
      );
    return {
      ...view(r),
      comments: comments.map((c) => ({ id: c.id, authorId: c.author_id, body: c.body, createdAt: iso(c.created_at)! })),
      notifications: notices.map((n) => ({
        id: n.id,
        level: n.level,
        channel: n.channel,
        recipientUserId: n.recipient_user_id,
        state: n.state,
        attempts: n.attempts,
        lastError: n.last_error,
        createdAt: iso(n.created_at)!,
        sentAt: iso(n.sent_at),
      })),
    };
  }

  async get(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'Incident');
    return this.db.inOrg(p, (em) => this.detail(em, p.orgId, id));
  }

  async create(p: Principal, body: z.infer<typeof CreateIncidentBody>) {
    await this.access.authorize(p, 'create', 'Incident');
    return this.db.inOrg(p, async (em) => {
      await this.assertMembers(em, p.orgId, [body.ownerId], 'ownerId');
      if (body.taskId) {
        const [t] = await em.query(`SELECT 1 FROM tasks WHERE org_id = $1 AND id = $2`, [p.orgId, body.taskId]);
        if (!t) throw AppError.validation([{ path: 'taskId', message: 'no such task in this org' }]);
      }
      const { id } = await openIncident(
        em,
        { orgId: p.orgId, title: body.title, description: body.description, severity: body.severity, source: 'manual', taskId: body.taskId, ownerId: body.ownerId, openedBy: p.userId, now: new Date() },
        this.auditAs(p),
      );
      return this.detail(em, p.orgId, id);
    });
  }

  /**
   * For the anomaly report: opens one incident per high or critical finding (idempotent on the
   * finding's key); lower severities open none (null). Runs in `em` when given (the report's own
   * transaction), else in its own; audited as the principal, or as the system for a scheduled report.
   */
  async openIncidentFromFinding(actor: Principal | { orgId: string }, finding: IncidentFinding, em?: EntityManager): Promise<{ id: string; created: boolean } | null> {
    if (finding.severity !== 'high' && finding.severity !== 'critical') return null;
    const now = new Date();
    const audit = 'kind' in actor ? this.auditAs(actor) : systemIncidentAudit(actor.orgId, this.audit.keyring, now);
    const work = (m: EntityManager) =>
      openIncident(
        m,
        {
          orgId: actor.orgId,
          title: finding.title.slice(0, 200),
          description: (finding.description ?? '').slice(0, 4000),
          severity: finding.severity,
          source: 'finding',
          sourceRef: finding.key.slice(0, 200),
          subjectUserId: finding.subjectUserId ?? null,
          actionType: finding.actionType ?? null,
          evidence: finding.evidence ?? {},
          openedBy: 'kind' in actor ? actor.userId : null,
          now,
        },
        audit,
      );
    return em ? work(em) : this.db.inOrg({ orgId: actor.orgId }, work);
  }

  private async transition(
    p: Principal,
    id: string,
    action: string,
    change: (r: IncidentRow) => { sql: string; params: unknown[]; payload: Record<string, unknown> },
  ) {
    await this.access.authorize(p, 'respond', 'Incident');
    return this.db.inOrg(p, async (em) => {
      const r = await this.load(em, p.orgId, id, true);
      // The person an incident is about does not stop its escalation (acknowledge, resolve, close) nor
      // hand it to someone (assign): as nobody triages their own violation. Commenting stays open.
      if (r.subject_user_id === p.userId) await this.access.deny(p, 'respond', 'Incident', id, 'own_incident', 'Nobody responds to an incident about themself: another responder does.');
      const c = change(r);
      await em.query(`UPDATE incidents SET ${c.sql}, updated_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, id, ...c.params]);
      await this.audit.record(em, p, { action: `incident.${action}`, targetType: 'Incident', targetId: id, payload: { from: r.state, ...c.payload } });
      return this.detail(em, p.orgId, id);
    });
  }

  acknowledge(p: Principal, id: string, body: z.infer<typeof AcknowledgeBody>) {
    return this.transition(p, id, 'acknowledge', (r) => {
      if (r.state !== 'open') throw AppError.conflict(`The incident is already ${r.state}.`);
      return { sql: `state = 'acknowledged', acknowledged_at = now(), acknowledged_by = $3, next_escalation_at = NULL`, params: [p.userId], payload: { note: body.note ?? null, late: r.escalation_level > 0 || Date.now() > new Date(r.ack_due_at).getTime(), escalationLevel: r.escalation_level } };
    });
  }

  async assign(p: Principal, id: string, body: z.infer<typeof AssignBody>) {
    await this.db.inOrg(p, (em) => this.assertMembers(em, p.orgId, [body.ownerId], 'ownerId'));
    return this.transition(p, id, 'assign', (r) => {
      if (r.state === 'closed') throw AppError.conflict('The incident is closed.');
      return { sql: `owner_id = $3`, params: [body.ownerId], payload: { ownerId: body.ownerId, previousOwnerId: r.owner_id } };
    });
  }

  resolve(p: Principal, id: string, body: z.infer<typeof ResolveBody>) {
    return this.transition(p, id, 'resolve', (r) => {
      if (r.state !== 'open' && r.state !== 'acknowledged') throw AppError.conflict(`The incident is already ${r.state}.`);
      return { sql: `state = 'resolved', resolved_at = now(), resolution = $3, next_escalation_at = NULL`, params: [body.resolution], payload: {} };
    });
  }

  close(p: Principal, id: string, body: z.infer<typeof CloseBody>) {
    return this.transition(p, id, 'close', (r) => {
      if (r.state === 'closed') throw AppError.conflict('The incident is already closed.');
      return { sql: `state = 'closed', closed_at = now(), next_escalation_at = NULL`, params: [], payload: { note: body.note ?? null } };
    });
  }

  async comment(p: Principal, id: string, body: z.infer<typeof CommentBody>) {
    await this.access.authorize(p, 'respond', 'Incident');
    return this.db.inOrg(p, async (em) => {
      const r = await this.load(em, p.orgId, id, true);
      const [{ n }] = await em.query(`SELECT count(*)::int AS n FROM incident_comments WHERE org_id = $1 AND incident_id = $2`, [p.orgId, id]);
      if (n >= 500) throw AppError.conflict('An incident holds at most 500 comments.');
      const cid = newId();
      const [c]: { created_at: Date }[] = await em.query(`INSERT INTO incident_comments (org_id, id, incident_id, author_id, body) VALUES ($1, $2, $3, $4, $5) RETURNING created_at`, [
        p.orgId, cid, r.id, p.userId, body.body,
      ]);
      await em.query(`UPDATE incidents SET updated_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, id]);
      await this.audit.record(em, p, { action: 'incident.comment', targetType: 'Incident', targetId: id, payload: { commentId: cid, length: body.body.length } });
      return { id: cid, authorId: p.userId, body: body.body, createdAt: iso(c.created_at)! };
    });
  }

  private async settingsView(em: EntityManager, orgId: string): Promise<z.infer<typeof IncidentSettingsView>> {
    const s = await loadIncidentSettings(em, orgId);
    const secrets: { name: IncidentSecretName }[] = await em.query(`SELECT name FROM incident_secrets WHERE org_id = $1`, [orgId]);
    const has = (n: IncidentSecretName) => secrets.some((x) => x.name === n);
    return {
      ownerUserId: s.owner_user_id,
      escalationChain: s.escalation_chain,
      executiveUserId: s.executive_user_id,
      executiveTitle: s.executive_title,
      ackMinutes: s.ack_minutes,
      stepMinutes: s.step_minutes,
      channels: s.channels,
      webhookUrl: s.webhook_url,
      smtp: s.smtp_host && s.smtp_port && s.smtp_from ? { host: s.smtp_host, port: s.smtp_port, secure: s.smtp_secure, user: s.smtp_user, from: s.smtp_from } : null,
      slack: s.slack_channel && s.slack_post_as ? { channel: s.slack_channel, postAs: s.slack_post_as } : null,
      secrets: { webhookSigningSecret: has('webhook_signing_secret'), smtpPassword: has('smtp_password'), slackWebhookUrl: has('slack_webhook_url') },
    };
  }

  async getSettings(p: Principal) {
    await this.access.authorize(p, 'read', 'Incident');
    return this.db.inOrg(p, (em) => this.settingsView(em, p.orgId));
  }

  async putSettings(p: Principal, body: z.infer<typeof PutIncidentSettingsBody>) {
    await this.access.authorize(p, 'configure', 'Incident');
    if (new Set(body.escalationChain).size !== body.escalationChain.length) throw AppError.validation([{ path: 'escalationChain', message: 'a contact appears twice' }]);
    if (new Set(body.channels).size !== body.channels.length) throw AppError.validation([{ path: 'channels', message: 'a channel appears twice' }]);
    return this.db.inOrg(p, async (em) => {
      await this.assertMembers(em, p.orgId, [body.ownerUserId, body.executiveUserId, ...body.escalationChain], 'escalationChain');
      const before = await this.settingsView(em, p.orgId);
      const webhookUrl = body.webhookUrl === undefined ? before.webhookUrl : body.webhookUrl;
      const smtp = body.smtp === undefined ? before.smtp : body.smtp;
      const slack = body.slack === undefined ? before.slack : body.slack;
      if (body.slack) {
        // A member's Slack account is theirs to offer: the owner who sets Slack notices up posts them as themselves.
        if (body.slack.postAs !== p.userId) throw AppError.validation([{ path: 'slack.postAs', message: 'Slack notices post as the owner who sets them up: connect your own Slack account and name yourself' }]);
        await this.assertSlackPoster(em, p.orgId, body.slack.postAs);
      }
      const secrets = { ...before.secrets };
      for (const [field, name] of Object.entries(SECRET_FIELDS) as [keyof typeof SECRET_FIELDS, IncidentSecretName][]) {
        const v = body.secrets?.[field];
        if (v === undefined) continue;
        await storeIncidentSecret(em, this.keys, p.orgId, name, v);
        secrets[field] = v !== null;
      }
      const problems: { path: string; message: string }[] = [];
      if (body.secrets?.webhookSigningSecret === null) {
        const [hook]: { url: string | null }[] = await em.query('SELECT notify_webhook_url AS url FROM orgs WHERE id = $1 FOR UPDATE', [p.orgId]);
        if (hook?.url) problems.push({ path: 'secrets.webhookSigningSecret', message: "the org's approval webhook is signed with it: remove that webhook (org settings) first" });
      }
      if (body.channels.includes('webhook') && (!webhookUrl || !secrets.webhookSigningSecret)) problems.push({ path: 'webhookUrl', message: 'the webhook channel needs a URL and a signing secret' });
      if (body.channels.includes('email') && !smtp) problems.push({ path: 'smtp', message: 'the e-mail channel needs an SMTP server' });
      if (body.channels.includes('slack') && !secrets.slackWebhookUrl && !slack) problems.push({ path: 'slack', message: 'the Slack channel needs the Slack connector (a channel and the member who posts) or an incoming webhook URL' });
      if (problems.length) throw AppError.validation(problems);
      await em.query(
        `INSERT INTO incident_settings (org_id, owner_user_id, escalation_chain, executive_user_id, executive_title, ack_minutes, step_minutes, channels, webhook_url,
                                        smtp_host, smtp_port, smtp_secure, smtp_user, smtp_from, updated_by, slack_channel, slack_post_as)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (org_id) DO UPDATE SET owner_user_id = EXCLUDED.owner_user_id, escalation_chain = EXCLUDED.escalation_chain, executive_user_id = EXCLUDED.executive_user_id,
           executive_title = EXCLUDED.executive_title, ack_minutes = EXCLUDED.ack_minutes, step_minutes = EXCLUDED.step_minutes, channels = EXCLUDED.channels,
           webhook_url = EXCLUDED.webhook_url, smtp_host = EXCLUDED.smtp_host, smtp_port = EXCLUDED.smtp_port, smtp_secure = EXCLUDED.smtp_secure,
           smtp_user = EXCLUDED.smtp_user, smtp_from = EXCLUDED.smtp_from, updated_by = EXCLUDED.updated_by, slack_channel = EXCLUDED.slack_channel,
           slack_post_as = EXCLUDED.slack_post_as, updated_at = now()`,
        [
          p.orgId, body.ownerUserId ?? null, body.escalationChain, body.executiveUserId ?? null, body.executiveTitle, body.ackMinutes, body.stepMinutes, body.channels, webhookUrl,
          smtp?.host ?? null, smtp?.port ?? null, smtp?.secure ?? false, smtp?.user || null, smtp?.from ?? null, p.userId, slack?.channel ?? null, slack?.postAs ?? null,
        ],
      );
      const after = await this.settingsView(em, p.orgId);
      const changed = (Object.keys(after) as (keyof typeof after)[]).filter((k) => JSON.stringify(after[k]) !== JSON.stringify(before[k]));
      // Names of what changed and which secrets were set or cleared; never their values.
      await this.audit.record(em, p, {
        action: 'incident_settings.update',
        targetType: 'IncidentSettings',
        targetId: null,
        payload: { changed, secretsWritten: Object.keys(body.secrets ?? {}), channels: after.channels, escalationChain: after.escalationChain, executiveUserId: after.executiveUserId, slack: after.slack },
      });
      return after;
    });
  }
}
