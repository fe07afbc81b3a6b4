import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, type Logger, UUID_PATTERN } from '@steward/common';
import { ConnectorError, ConnectorHub } from '@steward/connectors';
import { actionScope, CredentialBroker } from '@steward/gate';
import { type EntityManager, queryReturning } from '@steward/db';
import { addTaskConnectors, appendEvents, refuseServerRequests } from '@steward/jobs';
import { type ActionType, compilePolicy, decideRecorded, type PolicyDocument, type RecordedFacts, subjectOf } from '@steward/policy';
import { ConfigKeyProvider } from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG, LOGGER } from '../core/tokens';
import { CredentialsService } from '../connectors/credentials.service';
import type { ListReviewsQuery, ReviewActionView, ReviewBody, ReviewView } from './oversight.schemas';

interface ActionRow {
  id: string;
  step: number | null;
  connector: string;
  tool: string;
  action_type: string;
  level: 'autonomous' | 'batched' | 'watched' | 'forbidden';
  state: string;
  reversible: boolean;
  undo: { tool: string; args: Record<string, unknown> } | null;
  finalize: { tool: string; args: Record<string, unknown> } | null;
  review_state: 'accepted' | 'reverted' | null;
  reviewed_by: string | null;
  reviewed_at: Date | null;
}

const needsReview = (a: ActionRow) => a.level === 'batched' && a.state === 'succeeded' && a.reversible;

/**
 * Review bundles: a finished task whose Batched writes ran in their reversible form waits
 * `in_review`. A reviewer accepts each action (its finishing step, where the connector has one: a
 * draft becomes the sent message; else final as it is) or reverts it (its undo call), each through
 * the task's connector, now. When
 * every Batched action is settled the task is `completed`. Every decision is audited.
 */
@Injectable()
export class ReviewsService {
  private readonly keys: ConfigKeyProvider;

  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly log: Logger,
    private readonly credentials: CredentialsService,
  ) {
    this.keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  }

  async list(p: Principal, q: z.infer<typeof ListReviewsQuery>) {
    const reach = this.access.reach(p, 'read', 'Review');
    if (reach === 'none') await this.access.authorize(p, 'read', 'Review');
    return this.db.inOrg(p, async (em) => {
      const rows: { id: string; user_id: string; state: string; pending: number; accepted: number; reverted: number }[] = await em.query(
        `SELECT t.id, t.user_id, t.state,
                count(*) FILTER (WHERE a.review_state IS NULL)::int AS pending,
                count(*) FILTER (WHERE a.review_state = 'accepted')::int AS accepted,
                count(*) FILTER (WHERE a.review_state = 'reverted')::int AS reverted
           FROM tasks t JOIN task_actions a ON a.org_id = t.org_id AND a.task_id = t.id AND a.level = 'batched' AND a.state = 'succeeded' AND a.reversible
          WHERE t.org_id = $1 AND t.state = 'in_review' ${reach === 'own' ? 'AND t.user_id = $2' : ''}
          GROUP BY t.org_id, t.id ORDER BY t.id DESC LIMIT ${q.limit}`,
        reach === 'own' ? [p.orgId, p.userId] : [p.orgId],
      );
      return { items: rows.map((r) => ({ taskId: r.id, userId: r.user_id, taskState: r.state, pending: r.pending, accepted: r.accepted, reverted: r.reverted })) };
    });
  }

  async get(p: Principal, taskId: string) {
    await this.access.authorize(p, 'read', 'Review', { id: taskId, userId: p.userId });
    return this.db.inOrg(p, (em) => this.bundle(em, p, taskId));
  }

  private async task(em: EntityManager, p: Principal, taskId: string, lock = false) {
    const [t]: { id: string; user_id: string; state: string; connectors: string[] }[] = UUID_PATTERN.test(taskId)
      ? await em.query(`SELECT id, user_id, state, connectors FROM tasks WHERE org_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [p.orgId, taskId])
      : [];
    if (!t || !p.ability.can('read', subjectOf('Review', { userId: t.user_id }))) throw AppError.notFound('review');
    return t;
  }

  private async bundle(em: EntityManager, p: Principal, taskId: string): Promise<z.infer<typeof ReviewView>> {
    const t = await this.task(em, p, taskId);
    const rows: ActionRow[] = await em.query(
      `SELECT id, step, connector, tool, action_type, level, state, reversible, undo, finalize, review_state, reviewed_by, reviewed_at FROM task_actions
        WHERE org_id = $1 AND task_id = $2 AND action_type <> 'model.invoke' ORDER BY step`,
      [p.orgId, taskId],
    );
    const actions: z.infer<typeof ReviewActionView>[] = rows.map((a) => ({
      actionId: a.id,
      step: a.step,
      connector: a.connector,
      tool: a.tool,
      actionType: a.action_type,
      level: a.level,
      state: a.state,
      needsReview: needsReview(a),
      reversible: a.reversible,
      undoTool: a.undo?.tool ?? null,
      finalizeTool: a.finalize?.tool ?? null,
      reviewState: needsReview(a) ? (a.review_state ?? 'pending') : null,
      reviewedBy: a.reviewed_by,
      reviewedAt: a.reviewed_at?.toISOString() ?? null,
    }));
    const under = actions.filter((a) => a.needsReview);
    return {
      taskId: t.id,
      userId: t.user_id,
      taskState: t.state,
      pending: under.filter((a) => a.reviewState === 'pending').length,
      accepted: under.filter((a) => a.reviewState === 'accepted').length,
      reverted: under.filter((a) => a.reviewState === 'reverted').length,
      actions,
    };
  }

  /**
   * Accepts or reverts one action of the bundle, or every pending one (`actionId` null). Each
   * action's undo or finishing step runs through its connector and is recorded with its audit event
   * in one commit, newest first, so what happened upstream is on record even when a later one fails:
   * the failure stops there (409, audited), and what was done stays done.
   */
  async decide(p: Principal, taskId: string, actionId: string | null, verdict: 'accept' | 'revert', body: z.infer<typeof ReviewBody>) {
    await this.access.authorize(p, 'read', 'Review', { id: taskId, userId: p.userId });
    const step = verdict === 'revert' ? 'undo' : 'finalize';
    // 1. What to decide, checked under the task's lock.
    const { t, rows } = await this.db.inOrg(p, async (em) => {
      const t = await this.task(em, p, taskId, true);
      await this.access.authorize(p, 'decide', 'Review', { id: taskId, userId: t.user_id });
      // A person other than the one the agent acted for accepts its work (they may take their own back).
      if (verdict === 'accept' && t.user_id === p.userId) await this.access.deny(p, 'decide', 'Review', taskId, 'own_task', "Nobody accepts their own agent task's work: another reviewer does. You may revert it.");
      if (t.state !== 'in_review') throw AppError.conflict(`The task is ${t.state}, not in review.`);
      // The kill switch: nothing runs through a connector while agents are paused, a reviewer's step included (it waits for the resume).
      const [org]: { paused: boolean }[] = await em.query(`SELECT agents_paused_at IS NOT NULL AS paused FROM orgs WHERE id = $1`, [p.orgId]);
      if (org?.paused) throw AppError.conflict('Agents are paused in this org (kill switch): reviews are decided once they resume.');
      await this.access.requireStepUp(em, p);
      if (actionId !== null && !UUID_PATTERN.test(actionId)) throw AppError.notFound('action');
      const rows: ActionRow[] = await em.query(
        `SELECT id, step, connector, tool, action_type, level, state, reversible, undo, finalize, review_state, reviewed_by, reviewed_at FROM task_actions
          WHERE org_id = $1 AND task_id = $2 AND level = 'batched' AND state = 'succeeded' AND reversible ${actionId ? 'AND id = $3' : 'AND review_state IS NULL'}
          ORDER BY step DESC`,
        actionId ? [p.orgId, taskId, actionId] : [p.orgId, taskId],
      );
      if (actionId && !rows.length) throw AppError.notFound('action');
      if (actionId && rows[0].review_state) throw AppError.conflict(`The action is already ${rows[0].review_state}.`);
      if (!rows.length) throw AppError.conflict('Nothing in this bundle is left to review.');
      if (verdict === 'revert') {
        const stuck = rows.find((r) => !r.undo);
        if (stuck) throw AppError.conflict(`The action ${stuck.id} has no undo call recorded; it cannot be reverted.`);
      } else if (rows.some((r) => r.finalize)) await this.stillAllowed(em, p.orgId, t, rows.filter((r) => r.finalize));
      return { t, rows };
    });
    // 2. Action by action: its call, then its mark and audit event, in one commit.
    const hub = rows.some((r) => r[step]) ? await this.taskHub(p, t) : null;
    let done = 0;
    try {
      for (const r of rows) {
        try {
          await this.db.inOrg(p, async (em) => {
            const [now]: { review_state: string | null }[] = await em.query(`SELECT review_state FROM task_actions WHERE org_id = $1 AND id = $2 FOR UPDATE`, [p.orgId, r.id]);
            if (now?.review_state) return; // another reviewer settled it meanwhile
            if (hub && r[step]) await this.runStep(hub, p, t, r, step);
            await em.query(`UPDATE task_actions SET review_state = $3, reviewed_by = $4, reviewed_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, r.id, verdict === 'accept' ? 'accepted' : 'reverted', p.userId]);
            await this.audit.record(em, p, {
              action: `review.${verdict}`,
              targetType: 'Task',
              targetId: taskId,
              payload: { actions: [{ actionId: r.id, tool: r.tool, undo: verdict === 'revert' ? (r.undo?.tool ?? null) : null, finalize: verdict === 'accept' ? (r.finalize?.tool ?? null) : null }], whole: actionId === null, reasonBytes: body.reason ? Buffer.byteLength(body.reason) : 0 },
            });
            done++;
          });
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          // On record although nothing of it was kept: the call was attempted for this action.
          await this.db.inOrg(p, (em) =>
            this.audit.record(em, p, { action: `review.${verdict}`, targetType: 'Task', targetId: taskId, outcome: 'failure', payload: { actions: [{ actionId: r.id, tool: r.tool, [step]: r[step]?.tool ?? null }], whole: actionId === null, error: err.message.slice(0, 300) } }),
          );
          throw done ? AppError.conflict(`${err.message} ${done} action(s) of this bundle were ${verdict === 'accept' ? 'accepted' : 'reverted'} before it and stay so; the rest are still pending.`) : err;
        }
      }
    } finally {
      await hub?.close().catch(() => undefined);
    }
    // 3. The task completes once nothing is left to review.
    return this.db.inOrg(p, async (em) => {
      await this.task(em, p, taskId, true);
      const [{ left }]: { left: number }[] = await em.query(
        `SELECT count(*)::int AS left FROM task_actions WHERE org_id = $1 AND task_id = $2 AND level = 'batched' AND state = 'succeeded' AND reversible AND review_state IS NULL`,
        [p.orgId, taskId],
      );
      if (left === 0) {
        const completed = await queryReturning(em, `UPDATE tasks SET state = 'completed', updated_at = now() WHERE org_id = $1 AND id = $2 AND state = 'in_review' RETURNING id`, [p.orgId, taskId]);
        if (completed.length) await appendEvents(em, this.keys, p.orgId, taskId, [{ kind: 'state', data: { state: 'completed', reviewed: true } }]);
      }
      return this.bundle(em, p, taskId);
    });
  }

  /**
   * A finishing step acts for the task's owner now (a draft is sent): like an approved action, it
   * runs only while the owner's membership is active and the current policy does not forbid what
   * the action does. Each action is decided again on the facts its decision recorded (its
   * decision event); the reviewer's accept satisfies anything short of Forbidden.
   */
  private async stillAllowed(em: EntityManager, orgId: string, t: { id: string; user_id: string }, rows: ActionRow[]): Promise<void> {
    const [m]: { status: string }[] = await em.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [orgId, t.user_id]);
    if (m?.status !== 'active') throw AppError.conflict("The task's owner is not an active member now: nothing of this task is made final. Revert it, or accept it once they are reinstated.");
    const [active]: { document: PolicyDocument }[] = await em.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [orgId]);
    if (!active) throw AppError.conflict('The org has no active policy: nothing is made final.');
    const compiled = compilePolicy(active.document);
    for (const r of rows) {
      const [e]: { payload: { facts?: RecordedFacts } }[] = await em.query(
        `SELECT canonical::jsonb->'payload' AS payload FROM audit_events
          WHERE org_id = $1 AND actor_id = $2 AND canonical::jsonb->'payload'->>'actionId' = $3 AND canonical::jsonb->>'decision' <> 'executed' LIMIT 1`,
        [orgId, t.id, r.id],
      );
      if (!e?.payload?.facts) throw AppError.conflict(`The action ${r.id} has no recorded decision to decide again: it is not made final.`);
      const d = decideRecorded(compiled, e.payload.facts, r.action_type as ActionType, r.connector, new Date());
      if (d.level === 'forbidden') throw AppError.conflict(`The policy now forbids this action (${r.tool}): ${d.reason.slice(0, 300)} It is not made final; revert it.`);
    }
  }

  /**
   * The task's connectors, as its agent had them, with the task owner's credentials (each decrypt
   * audited under the action it serves). While agents are paused no credential is released, so
   * nothing runs through a connector that needs one.
   */
  private async taskHub(p: Principal, t: { id: string; user_id: string; connectors: string[] }): Promise<{ hub: ConnectorHub; close(): Promise<void> }> {
    const hub = new ConnectorHub({ timeoutMs: 30_000, maxResultBytes: 1 << 20 });
    try {
      const egress = await this.db.inOrg(p, (em) => this.credentials.egressFor(em, p.orgId));
      const broker = new CredentialBroker(this.db.dataSource, this.credentials.keys, this.audit.keyring, async () => egress);
      const { connectors } = await addTaskConnectors(
        hub,
        { ds: this.db.dataSource, dataDir: this.config.STEWARD_DATA_DIR, log: this.log, broker, baseUrls: this.config.STEWARD_CONNECTOR_BASE_URLS, egress: async () => egress },
        { orgId: p.orgId, userId: t.user_id, taskId: t.id },
        t.connectors,
      );
      // No MCP client stands behind a reviewer's undo or finishing step: an upstream's sampling or elicitation is refused and audited.
      refuseServerRequests(hub, connectors, { ds: this.db.dataSource, keyring: this.audit.keyring, orgId: p.orgId, taskId: t.id, actor: { type: 'user', id: p.userId }, client: 'rest', where: 'during a review' });
      return { hub, close: () => hub.close() };
    } catch (err) {
      await hub.close().catch(() => undefined);
      throw err;
    }
  }

  /** One action's undo call (a revert) or finishing step (an accept), with an idempotency key: settling again does not act twice where the upstream honours it. */
  private async runStep(task: { hub: ConnectorHub }, p: Principal, t: { id: string; user_id: string }, r: ActionRow, step: 'undo' | 'finalize'): Promise<void> {
    const call = r[step]!;
    const verb = step === 'undo' ? 'reverted' : 'made final';
    if (!task.hub.has(r.connector)) throw AppError.conflict(`The ${r.connector} connector is no longer available to this task: action ${r.id} cannot be ${verb}.`);
    try {
      await actionScope.run({ orgId: p.orgId, userId: t.user_id, actionId: r.id, taskId: t.id, client: 'rest' }, () => task.hub.callTool(r.connector, call.tool, call.args, { idempotencyKey: `${step}-${r.id}` }));
    } catch (err) {
      if (err instanceof ConnectorError) throw AppError.conflict(`The ${step === 'undo' ? 'undo' : 'finishing step'} of action ${r.id} failed (${err.code}): ${err.message.slice(0, 300)}`);
      throw err;
    }
  }
}
