import { z } from 'zod';
import { EmailOut, Timestamp, Uuid } from '../core/schemas';

export const IncidentState = z.enum(['open', 'acknowledged', 'resolved', 'closed']);
export const IncidentSeverity = z.enum(['low', 'medium', 'high', 'critical']);
const Text = (max: number) => z.string().trim().min(1).max(max);

export const CreateIncidentBody = z.strictObject({
  title: Text(200),
  description: z.string().trim().max(4000).optional(),
  severity: IncidentSeverity,
  /** Default: the org's incident owner (settings), else the first contact of the chain. */
  ownerId: Uuid.optional(),
  taskId: Uuid.optional(),
});
export const ListIncidentsQuery = z.strictObject({
  state: IncidentState.optional(),
  severity: IncidentSeverity.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: Uuid.optional(),
});
export const AcknowledgeBody = z.strictObject({ note: Text(2000).optional() });
export const AssignBody = z.strictObject({ ownerId: Uuid });
export const ResolveBody = z.strictObject({ resolution: Text(2000) });
export const CloseBody = z.strictObject({ note: Text(2000).optional() });
export const CommentBody = z.strictObject({ body: Text(4000) });

export const IncidentView = z.strictObject({
  id: Uuid,
  title: z.string().max(200),
  description: z.string().max(4000),
  severity: IncidentSeverity,
  source: z.enum(['manual', 'violation', 'finding']),
  sourceRef: z.string().max(200).nullable(),
  violationId: Uuid.nullable(),
  taskId: Uuid.nullable(),
  subjectUserId: Uuid.nullable(),
  actionType: z.string().max(32).nullable(),
  evidence: z.record(z.string().max(100), z.unknown()),
  state: IncidentState,
  ownerId: Uuid.nullable(),
  openedBy: Uuid.nullable(),
  /** Acknowledge by then, or it escalates to the next contact, then to the org's executive. */
  ackDueAt: Timestamp,
  acknowledgedAt: Timestamp.nullable(),
  acknowledgedBy: Uuid.nullable(),
  resolvedAt: Timestamp.nullable(),
  resolution: z.string().max(2000).nullable(),
  closedAt: Timestamp.nullable(),
  escalationLevel: z.int().min(0),
  nextEscalationAt: Timestamp.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export const IncidentDetail = IncidentView.extend({
  comments: z.array(z.strictObject({ id: Uuid, authorId: Uuid.nullable(), body: z.string().max(4000), createdAt: Timestamp })).max(500),
  notifications: z
    .array(
      z.strictObject({
        id: Uuid,
        level: z.int().min(0),
        channel: z.enum(['webhook', 'email', 'slack']),
        recipientUserId: Uuid.nullable(),
        state: z.enum(['pending', 'sent', 'failed']),
        attempts: z.int().min(0),
        lastError: z.string().max(500).nullable(),
        createdAt: Timestamp,
        sentAt: Timestamp.nullable(),
      }),
    )
    .max(500),
});
export const IncidentList = z.strictObject({ items: z.array(IncidentView).max(200), nextCursor: Uuid.nullable() });
export const CommentView = z.strictObject({ id: Uuid, authorId: Uuid.nullable(), body: z.string().max(4000), createdAt: Timestamp });

const Channel = z.enum(['webhook', 'email', 'slack']);
/** A secret to set (string), clear (null) or keep (absent). Write-only: never returned. */
const SecretField = (max: number) => z.string().min(1).max(max).meta({ format: 'password' }).nullable().optional();

export const PutIncidentSettingsBody = z.strictObject({
  ownerUserId: Uuid.nullable().optional(),
  /** Who an unacknowledged incident escalates to, in order (then the executive). */
  escalationChain: z.array(Uuid).max(10).default([]),
  /** The org's named executive (the CTO of the seed policy): the last step. */
  executiveUserId: Uuid.nullable().optional(),
  executiveTitle: z.string().trim().min(1).max(100).default('CTO'),
  ackMinutes: z.int().min(5).max(10080).default(720),
  stepMinutes: z.int().min(5).max(10080).default(240),
  channels: z.array(Channel).min(1).max(3).default(['email']),
  webhookUrl: z.url({ protocol: /^https?$/ }).max(2000).nullable().optional(),
  smtp: z
    .strictObject({
      host: z.string().trim().min(1).max(253).regex(/^[A-Za-z0-9.-]+$/, 'a host name or IPv4 address'),
      port: z.int().min(1).max(65535),
      /** Implicit TLS (port 465); otherwise STARTTLS when the server offers it. */
      secure: z.boolean().default(false),
      user: z.string().max(200).optional(),
      from: z.email().max(320),
    })
    .nullable()
    .optional(),
  /**
   * Slack notices (incidents, approval requests) through the org's installed Slack connector: the
   * channel (an id such as C0123ABCD, or #name) and the member whose connected Slack account posts
   * there — the owner who sets it up, naming themselves. Null stops it; absent keeps it. Takes
   * precedence over the incoming webhook.
   */
  slack: z
    .strictObject({
      channel: z.string().trim().min(1).max(80).regex(/^#?[A-Za-z0-9._-]+$/, 'a Slack channel id (C0123ABCD) or #name'),
      postAs: Uuid,
    })
    .nullable()
    .optional(),
  secrets: z
    .strictObject({
      webhookSigningSecret: SecretField(500),
      smtpPassword: SecretField(500),
      slackWebhookUrl: z.url({ protocol: /^https?$/ }).max(2000).meta({ format: 'password' }).nullable().optional(),
    })
    .optional(),
});

export const IncidentSettingsView = z.strictObject({
  ownerUserId: Uuid.nullable(),
  escalationChain: z.array(Uuid).max(10),
  executiveUserId: Uuid.nullable(),
  executiveTitle: z.string().max(100),
  ackMinutes: z.int(),
  stepMinutes: z.int(),
  channels: z.array(Channel).max(3),
  webhookUrl: z.string().max(2000).nullable(),
  smtp: z.strictObject({ host: z.string().max(253), port: z.int(), secure: z.boolean(), user: z.string().max(200).nullable(), from: EmailOut }).nullable(),
  /** Slack notices through the org's Slack connector: the channel and the member who posts (null: not set). */
  slack: z.strictObject({ channel: z.string().max(80), postAs: Uuid }).nullable(),
  /** Which secrets are set (their values are never returned). */
  secrets: z.strictObject({ webhookSigningSecret: z.boolean(), smtpPassword: z.boolean(), slackWebhookUrl: z.boolean() }),
});
