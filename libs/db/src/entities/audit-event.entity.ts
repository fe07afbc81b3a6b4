/**
 * The audit tables (audit_events, audit_chain, audit_heads, audit_checkpoints, audit_keys)
 * are defined by migrations and used through libs/audit's SQL, not as TypeORM entities:
 * audit_events is partitioned, append-only and derives its columns from the canonical
 * JSON that the hash chain covers.
 */
export type ActorType = 'user' | 'api_key' | 'agent_task' | 'system' | 'scim_token';
export type AuditClient = 'rest' | 'mcp' | 'cli' | 'console' | 'worker' | 'system' | 'scim';
export type AuditOutcome = 'success' | 'failure' | 'denied';
