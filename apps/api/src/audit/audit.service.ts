import { Inject, Injectable } from '@nestjs/common';
import { type Config, newId } from '@steward/common';
import { AuditKeyring, type PreparedEvent, prepareEvent } from '@steward/audit';
import type { ActorType, AuditClient, AuditOutcome, EntityManager } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import type { Principal } from '../auth/principal';
import type { ApiMetrics } from '../core/metrics';
import { CONFIG, METRICS } from '../core/tokens';

export interface AuditActor {
  orgId: string;
  actorType: ActorType;
  actorId: string | null;
  client: AuditClient;
  sourceIp: string | null;
  requestId: string | null;
}

export interface AuditRecord {
  /** "<subject>.<verb>", e.g. "member.suspend". */
  action: string;
  targetType?: string;
  targetId?: string | null;
  outcome?: AuditOutcome;
  /** Never secrets: ids, names of things, changed field names. */
  payload?: Record<string, unknown>;
  /** Personal or sensitive values (addresses, arguments): sealed under the org-month key. */
  sensitive?: Record<string, string | string[] | number | boolean | null>;
  /** The person the sensitive values are about (default: the signed-in user); null: the org's key. */
  subject?: string | null;
}

/**
 * Whether a person is one a hold or an erasure can name in this org: a member now, or someone the
 * org's trail has events of or about (a former employee, deprovisioned: the usual subject of both).
 */
export async function knownPerson(em: EntityManager, orgId: string, userId: string): Promise<boolean> {
  const rows: unknown[] = await em.query(
    `SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2
     UNION ALL (SELECT 1 FROM audit_events WHERE actor_id = $2 AND org_id = $1 LIMIT 1)
     UNION ALL (SELECT 1 FROM audit_events WHERE org_id = $1 AND subject_id = $2 LIMIT 1)
     LIMIT 1`,
    [orgId, userId],
  );
  return rows.length > 0;
}

export function actorOf(p: Principal): AuditActor {
  return {
    orgId: p.orgId,
    actorType: p.actorType,
    actorId: p.actorId,
    client: p.client,
    sourceIp: p.sourceIp,
    requestId: p.requestId,
  };
}

/**
 * The one call site for writing the trail. It takes the mutation's own EntityManager,
 * so the event commits or rolls back with the change it records.
 */
@Injectable()
export class AuditService {
  readonly keyring: AuditKeyring;

  constructor(
    @Inject(CONFIG) config: Config,
    @Inject(METRICS) private readonly metrics: ApiMetrics,
  ) {
    this.keyring = new AuditKeyring(new ConfigKeyProvider(config.STEWARD_MASTER_KEY));
  }

  async record(em: EntityManager, actor: AuditActor | Principal, event: AuditRecord): Promise<void> {
    const started = performance.now();
    const e = await this.prepare(em, actor, event);
    await em.query('INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES ($1, $2, $3, $4)', [e.id, e.orgId, e.occurredAt, e.canonical]);
    this.metrics.steward.auditWrite.observe({ source: 'api' }, (performance.now() - started) / 1000);
  }

  /**
   * The event in its stored form, for a caller that inserts it in one statement with the rows it
   * records (it must commit with them). Sealing sensitive fields may create a key: that needs the
   * caller's transaction (`em`); an event without sensitive fields can be prepared outside one.
   */
  async prepare(em: EntityManager | null, actor: AuditActor | Principal, event: AuditRecord): Promise<PreparedEvent> {
    if (!em && event.sensitive && Object.keys(event.sensitive).length) throw new Error('an audit event with sensitive fields is prepared in a transaction');
    const a = 'kind' in actor ? actorOf(actor) : actor;
    return prepareEvent(em as EntityManager, this.keyring, {
      id: newId(),
      orgId: a.orgId,
      occurredAt: new Date(),
      actor: { type: a.actorType, id: a.actorId },
      action: event.action,
      target: event.targetType ? { type: event.targetType, id: event.targetId ?? null } : null,
      outcome: event.outcome ?? 'success',
      client: a.client,
      sourceIp: a.sourceIp,
      requestId: a.requestId,
      payload: event.payload,
      sensitive: event.sensitive,
      // Whose fields these are (an erasure shreds them): the signed-in user, also behind an API key.
      subject: event.subject !== undefined ? event.subject : 'kind' in actor ? actor.userId : undefined,
    });
  }
}
