import { z } from 'zod';
import { Timestamp, Uuid } from '../core/schemas';

const Cron = z.string().trim().min(9).max(100).regex(/^[0-9A-Za-z*,/?#LW -]+$/, 'a five-field cron expression such as "0 17 * * 5"');
const TimeZone = z.string().min(1).max(64).regex(/^[A-Za-z][A-Za-z0-9_+/-]{0,63}$/, 'an IANA time zone such as Asia/Tokyo');

const Template = {
  name: z.string().trim().min(1).max(200),
  /** Five fields: minute hour day-of-month month day-of-week ("0 17 * * 5": Fridays 17:00). */
  cron: Cron,
  /** The IANA zone the cron expression is read in. */
  timeZone: TimeZone,
  /** What the agent should do at each run. Sealed at rest, never logged. */
  prompt: z.string().trim().min(1).max(4000),
  workflow: z.string().max(100).regex(/^[a-z0-9][a-z0-9-]{0,99}$/).optional(),
  connectors: z.array(z.enum(['workspace-files'])).max(20).default(['workspace-files']),
  model: z.string().max(100).regex(/^[a-zA-Z0-9._:-]{1,100}$/).optional(),
  maxSteps: z.int().min(1).max(1000).optional(),
  budgetUsd: z.number().min(0.01).max(10_000).optional(),
};

export const CreateScheduleBody = z.strictObject(Template);

export const UpdateScheduleBody = z
  .strictObject({
    name: Template.name.optional(),
    cron: Cron.optional(),
    timeZone: TimeZone.optional(),
    prompt: Template.prompt.optional(),
    maxSteps: Template.maxSteps,
    budgetUsd: Template.budgetUsd,
  })
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change');

export const ScheduleView = z.strictObject({
  id: Uuid,
  userId: Uuid,
  name: z.string().max(200),
  cron: z.string().max(100),
  timeZone: z.string().max(64),
  workflow: z.string().max(100).nullable(),
  connectors: z.array(z.string().max(100)).max(20),
  modelPreference: z.string().max(100).nullable(),
  maxSteps: z.int().min(1),
  budgetUsd: z.number().min(0).nullable(),
  paused: z.boolean(),
  /** The next run (null while paused). While the org's kill switch is on, runs are skipped. */
  nextRunAt: Timestamp.nullable(),
  lastRunAt: Timestamp.nullable(),
  lastTaskId: Uuid.nullable(),
  runs: z.int().min(0),
  skipped: z.int().min(0),
  /** The API key that wrote its prompt (null: a person's session). Revoking that key pauses the schedule; its owner rewrites the prompt from a session, or deletes it. */
  writtenWithApiKey: Uuid.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const ListSchedulesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  userId: Uuid.optional(),
});

export const ScheduleList = z.strictObject({ items: z.array(ScheduleView).max(200), nextCursor: z.string().max(200).nullable() });

const Spend = {
  spentUsd: z.number().min(0),
  /** The monthly budget (null: no limit). */
  budgetUsd: z.number().min(0).nullable(),
  tasks: z.int().min(0),
  inputTokens: z.int().min(0),
  outputTokens: z.int().min(0),
};

export const UsageView = z.strictObject({
  /** The calendar month (UTC), YYYY-MM. */
  month: z.string().max(7),
  /** The org's totals (null for callers who read only their own tasks). */
  org: z.strictObject(Spend).nullable(),
  users: z.array(z.strictObject({ userId: Uuid, ...Spend })).max(10_000),
});
