import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

export type ActorType = 'user' | 'api_key' | 'agent_task' | 'system';
export type AuditClient = 'rest' | 'mcp' | 'cli' | 'console' | 'worker' | 'system';
export type AuditOutcome = 'success' | 'failure' | 'denied';

/**
 * Append-only: UPDATE and DELETE are revoked from the runtime role and refused by
 * trigger. Written in the same transaction as the change it records.
 */
@Entity({ name: 'audit_events' })
@Index('audit_events_org_occurred_idx', ['orgId', 'occurredAt'])
export class AuditEvent {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ name: 'actor_type', type: 'varchar', length: 16 })
  actorType!: ActorType;

  @Column({ name: 'actor_id', type: 'uuid', nullable: true })
  actorId!: string | null;

  @Column({ type: 'varchar', length: 80 })
  action!: string;

  @Column({ name: 'target_type', type: 'varchar', length: 40, nullable: true })
  targetType!: string | null;

  @Column({ name: 'target_id', type: 'uuid', nullable: true })
  targetId!: string | null;

  @Column({ type: 'varchar', length: 16 })
  outcome!: AuditOutcome;

  @Column({ type: 'varchar', length: 16 })
  client!: AuditClient;

  @Column({ name: 'source_ip', type: 'varchar', length: 64, nullable: true })
  sourceIp!: string | null;

  @Column({ name: 'request_id', type: 'varchar', length: 64, nullable: true })
  requestId!: string | null;

  @Column({ type: 'jsonb', default: () => "'{}'" })
  payload!: Record<string, unknown>;
}
