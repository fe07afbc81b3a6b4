/** Queue names: kebab-case nouns, never renamed (jobs in Redis refer to them). */
export const QueueName = {
  AgentTasks: 'agent-tasks',
  Maintenance: 'maintenance',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

/** Job names: kebab-case verbs. */
export const MaintenanceJob = {
  Heartbeat: 'record-heartbeat',
  /** Re-wrap data keys still under an older key-encryption key version (KEK rotation). */
  RewrapDataKeys: 'rewrap-data-keys',
} as const;

/** Jobs of the agent-tasks queue. The job id is `taskId-epoch` (one job per lease generation). */
export const AgentTaskJob = {
  /** Run or resume a task. */
  Run: 'run-task',
} as const;
