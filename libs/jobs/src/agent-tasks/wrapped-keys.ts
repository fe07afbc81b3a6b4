import type { WrappedKeySource } from '@steward/vault';
import { scheduleAad } from './schedules';
import { eventAad, promptAad, transcriptAad } from './task-store';

/**
 * Agent tasks' data keys wrapped by the key-encryption key, for KEK rotation (`rewrapAll` in
 * libs/vault): each task's prompt and transcript, the sealed text of task events (model text,
 * output) and each schedule's prompt — with the AAD they were sealed under. Keys removed by
 * retention (NULL) are skipped.
 */
export const TASK_WRAPPED_KEY_SOURCES: WrappedKeySource[] = [
  { name: 'task_prompts', table: 'tasks', keyColumns: [['id', 'uuid']], wrappedColumn: 'prompt_key', aad: (orgId, r) => promptAad(orgId, String(r.id)) },
  { name: 'task_transcripts', table: 'tasks', keyColumns: [['id', 'uuid']], wrappedColumn: 'transcript_key', aad: (orgId, r) => transcriptAad(orgId, String(r.id)) },
  {
    name: 'task_events',
    table: 'task_events',
    keyColumns: [
      ['task_id', 'uuid'],
      ['seq', 'integer'],
    ],
    wrappedColumn: 'sealed_key',
    aad: (orgId, r) => eventAad(orgId, String(r.task_id), Number(r.seq)),
  },
  { name: 'schedule_prompts', table: 'task_schedules', keyColumns: [['id', 'uuid']], wrappedColumn: 'prompt_key', aad: (orgId, r) => scheduleAad(orgId, String(r.id)) },
];
