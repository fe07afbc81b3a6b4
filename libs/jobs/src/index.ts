export * from './runtime';
export * from './agent-tasks/agent-loop';
export * from './agent-tasks/model';
export * from './agent-tasks/relay';
export * from './agent-tasks/scripted-model';
export * from './agent-tasks/task-store';
export * from './agent-tasks/from-config';
export * from './agent-tasks/approval-timers';
