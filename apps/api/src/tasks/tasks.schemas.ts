import { z } from 'zod';
import { Timestamp, Uuid } from '../core/schemas';

export const TaskState = z.enum(['queued', 'running', 'awaiting_approval', 'in_review', 'completed', 'failed', 'cancelled']);

export const CreateTaskBody = z.strictObject({
  /** What the agent should do (longer material goes in the workspace). Sealed at rest, never logged. */
  prompt: z.string().trim().min(1).max(4000),
  /** A workflow key of the org (routes the model, scopes policy rules). */
  workflow: z.string().max(100).regex(/^[a-z0-9][a-z0-9-]{0,99}$/).optional(),
  /** Connectors the agent may use: "workspace-files" and the names of the org's installed connectors. */
  connectors: z.array(z.string().trim().min(1).max(200)).max(20).default(['workspace-files']),
  /** A model id: it wins over the org's model tier, not over a workflow's tier or the deployment's route for the workflow. */
  model: z.string().max(100).regex(/^[a-zA-Z0-9._:-]{1,100}$/).optional(),
  /** At most this many steps (model calls and actions); capped by the server's limit. */
  maxSteps: z.int().min(1).max(1000).optional(),
  /** At most this much spent on the model, US dollars; capped by the server's limit. */
  budgetUsd: z.number().min(0.01).max(10_000).optional(),
});

export const TaskView = z.strictObject({
  id: Uuid,
  userId: Uuid,
  state: TaskState,
  workflow: z.string().max(100).nullable(),
  connectors: z.array(z.string().max(100)).max(20),
  modelPreference: z.string().max(100).nullable(),
  model: z.string().max(100).nullable(),
  /** True when the model is the built-in scripted server. */
  offlineModel: z.boolean(),
  steps: z.int().min(0),
  maxSteps: z.int().min(1),
  turns: z.int().min(0),
  usage: z.strictObject({ inputTokens: z.int().min(0), outputTokens: z.int().min(0), costUsd: z.number().min(0) }),
  budgetUsd: z.number().min(0).nullable(),
  tainted: z.boolean(),
  error: z.strictObject({ code: z.string().max(64), message: z.string().max(1000) }).nullable(),
  cancelRequested: z.boolean(),
  /** The employee's 1–5 rating of the finished task (pilot metrics), null until rated. */
  rating: z.int().min(1).max(5).nullable(),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
});

export const ListTasksQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** From the previous page's `nextCursor`. */
  cursor: z.string().max(200).optional(),
  state: TaskState.optional(),
  /** Only this member's tasks (readers of the org's tasks). */
  userId: Uuid.optional(),
});

export const TaskList = z.strictObject({ items: z.array(TaskView).max(200), nextCursor: z.string().max(200).nullable() });

export const TaskEventsQuery = z.strictObject({
  /** Events after this sequence number (or the Last-Event-ID header). */
  after: z.coerce.number().int().min(0).max(1_000_000_000).optional(),
  /** Keep the stream open until the task stops (default), or send what there is and close. */
  follow: z.enum(['true', 'false']).default('true'),
});
