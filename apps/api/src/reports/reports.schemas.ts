import { z } from 'zod';
import { FINDING_KINDS } from '@steward/oversight';
import { LEVELS } from '@steward/policy';
import { Timestamp, Uuid } from '../core/schemas';

const TimeZone = z.string().min(1).max(64).regex(/^[A-Za-z][A-Za-z0-9_+/-]{0,63}$/, 'an IANA time zone such as Europe/Berlin');

/** A report for any period (default: the last calendar month in the schedule's zone, else UTC); at most 366 days. */
export const CreateReportBody = z.strictObject({
  from: Timestamp.optional(),
  to: Timestamp.optional(),
  timeZone: TimeZone.optional(),
});

export const ListReportsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

export const DownloadQuery = z.strictObject({
  format: z.enum(['html', 'csv', 'json']).default('html'),
});

export const ReportSummaryView = z.strictObject({
  id: Uuid,
  from: Timestamp,
  to: Timestamp,
  timeZone: z.string().max(64),
  trigger: z.enum(['schedule', 'manual']),
  requestedBy: Uuid.nullable(),
  findings: z.int().min(0),
  high: z.int().min(0),
  eventsScanned: z.int().min(0),
  durationMs: z.int().min(0),
  createdAt: Timestamp,
});

const Scalar = z.union([z.string().max(20_000), z.number()]);
export const FindingView = z.strictObject({
  kind: z.enum(FINDING_KINDS),
  severity: z.enum(['low', 'medium', 'high']),
  subject: z.strictObject({ type: z.enum(['user', 'connector', 'policy']), id: z.string().max(200), label: z.string().max(300).optional() }),
  action: z.string().max(40).optional(),
  title: z.string().max(1000),
  observed: z.record(z.string().max(100), Scalar),
  baseline: z.record(z.string().max(100), Scalar),
  score: z.number().optional(),
  evidence: z.strictObject({ eventIds: z.array(Uuid).max(20), total: z.int().min(0) }),
  series: z.strictObject({ label: z.string().max(200), values: z.array(z.number()).max(400), markFrom: z.int().optional() }).optional(),
});

export const ReportView = ReportSummaryView.extend({
  baselineFrom: Timestamp,
  users: z.int().min(0),
  findingList: z.array(FindingView).max(10_000),
});

export const ReportList = z.strictObject({ items: z.array(ReportSummaryView).max(200), nextCursor: z.string().max(200).nullable() });

export const UpdateReportScheduleBody = z.strictObject({
  /** The org's time zone: the report runs on the 1st of each month, 01:00 local, for the month before. */
  timeZone: TimeZone,
  enabled: z.boolean().default(true),
});

export const ReportScheduleView = z.strictObject({
  timeZone: z.string().max(64).nullable(),
  enabled: z.boolean(),
  nextRunAt: Timestamp.nullable(),
  lastRunAt: Timestamp.nullable(),
  lastReportId: Uuid.nullable(),
  /** Scheduled reports that failed in a row (retried with backoff), and why the last one did. */
  failures: z.int().min(0),
  lastError: z.string().max(1000).nullable(),
});

export const ReplayBody = z.strictObject({
  /** Days of the trail to replay, ending now (default 180). */
  days: z.int().min(1).max(366).default(180),
  /** Examples in the summary (default 20). */
  examples: z.int().min(0).max(100).default(20),
});

const Level = z.enum(LEVELS);
const Tally = { changed: z.int().min(0), stricter: z.int().min(0), looser: z.int().min(0) };
export const ReplayView = z.strictObject({
  policyId: Uuid,
  version: z.int().min(1),
  status: z.string().max(16),
  from: Timestamp,
  to: Timestamp,
  days: z.int().min(1),
  replayed: z.int().min(0),
  notReplayable: z.int().min(0),
  changed: z.int().min(0),
  stricter: z.int().min(0),
  looser: z.int().min(0),
  sameLevelOtherRules: z.int().min(0),
  approvalsPerDay: z.strictObject({ before: z.number(), after: z.number(), delta: z.number() }),
  transitions: z.array(z.strictObject({ from: Level, to: Level, count: z.int().min(0) })).max(16),
  byAction: z.array(z.strictObject({ action: z.string().max(40), ...Tally })).max(50),
  byUser: z.array(z.strictObject({ user: Uuid, email: z.string().max(254).nullable(), ...Tally })).max(50),
  byWorkflow: z.array(z.strictObject({ workflow: z.string().max(100).nullable(), ...Tally })).max(50),
  examples: z
    .array(
      z.strictObject({
        eventId: Uuid,
        at: Timestamp,
        user: Uuid,
        action: z.string().max(40),
        workflow: z.string().max(100).nullable(),
        before: z.strictObject({ level: Level, ruleIds: z.array(z.string().max(80)).max(100) }),
        after: z.strictObject({ level: Level, ruleIds: z.array(z.string().max(80)).max(100), reason: z.string().max(5000) }),
      }),
    )
    .max(100),
});
