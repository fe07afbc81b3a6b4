import { z } from 'zod';
import { Timestamp, Uuid } from '../core/schemas';

export const RateTaskBody = z.strictObject({
  /** 1 (poor) … 5 (excellent): how well the task did the employee's work. */
  rating: z.int().min(1).max(5),
  comment: z.string().trim().min(1).max(1000).optional(),
});
export const RatingView = z.strictObject({ taskId: Uuid, userId: Uuid, rating: z.int().min(1).max(5), comment: z.string().max(1000).nullable(), client: z.string().max(16), createdAt: Timestamp, updatedAt: Timestamp });

export const BaselineBody = z.strictObject({
  /** How long the work takes by hand, per task (the weekly brief: 180). */
  manualMinutes: z.int().min(1).max(100_000),
});
export const BaselineView = z.strictObject({ workflow: z.string().max(80), manualMinutes: z.int(), updatedAt: Timestamp });

export const PilotMetricsQuery = z
  .strictObject({
    from: z.iso.datetime({ offset: true }).max(40).optional(),
    to: z.iso.datetime({ offset: true }).max(40).optional(),
  })
  .refine((q) => !q.from || !q.to || new Date(q.from) < new Date(q.to), { message: '"from" must be before "to"', path: ['from'] });

export const PilotDecision = z.enum(['roll_out', 'extend', 'stop', 'insufficient_data']);
export const WorkflowMetrics = z.strictObject({
  workflow: z.string().max(80),
  name: z.string().max(200),
  /** Tasks started in the period that have ended (completed, failed, cancelled) or wait in review. */
  tasksRun: z.int(),
  completed: z.int(),
  failed: z.int(),
  cancelled: z.int(),
  inReview: z.int(),
  completionRate: z.number().nullable(),
  manualBaselineMinutes: z.int().nullable(),
  /** Baseline minutes × completed tasks (null without a baseline). */
  timeSavedMinutes: z.int().nullable(),
  ratings: z.int(),
  satisfaction: z.number().nullable(),
  /** Incidents about the workflow's tasks in the period: a safety concern stops a pilot. */
  incidents: z.int(),
  decision: PilotDecision,
  decisionReason: z.string().max(300),
});
export const PilotMetricsView = z.strictObject({
  from: Timestamp,
  to: Timestamp,
  thresholds: z.strictObject({ rollOutCompletion: z.number(), rollOutSatisfaction: z.number(), extendCompletion: z.number() }),
  workflows: z.array(WorkflowMetrics).max(1000),
});
