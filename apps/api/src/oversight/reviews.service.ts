import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, type Logger, UUID_PATTERN } from '@steward/common';
import { ConnectorError, ConnectorHub } from '@steward/connectors';
import { actionScope, CredentialBroker } from '@steward/gate';
import { type EntityManager, queryReturning } from '@steward/db';
import { addTaskConnectors, appendEvents, hubIdOf, refuseServerRequests } from '@steward/jobs';
import { type ActionType, compilePolicy, decideRecorded, type PolicyDocument, type RecordedFacts, subjectOf } from '@steward/policy';
import { ConfigKeyProvider } from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG, LOGGER } from '../core/tokens';
import { CredentialsService } from '../connectors/credentials.service';
import type { DismissReviewBody, GatewayReviewBody, GatewayReviewList, GatewayReviewView, ListGatewayReviewsQuery, ListReviewsQuery, ReviewActionView, ReviewBody, ReviewView, SettleReviewStepBody } from './oversight.schemas';

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
  review_state: 'accepted' | 'reverted' | 'dismissed' | 'accepting' | 'reverting' | null;
  reviewed_by: string | null;
  reviewed_at: Date | null;
  /** A step underway (accepting, reverting) whose outcome is unknown: it may have acted, or it ran past the grace (the database's clock). */
  interrupted: boolean;
}

const needsReview = (a: ActionRow) => a.level === 'batched' && a.state === 'succeeded' && a.reversible;

/**
 * A reviewer's undo or finishing step is claimed before it runs (`accepting`, `reverting`, committed
 * with who and when), so a step the API did not see end (the process died during its call, or the
 * call ended in a way that may have acted) is never run again blindly: past this time it shows as
 * interrupted and a person settles it. Longer than any step may take (each call's time limit).
 */
const STEP_TIMEOUT_MS = 30_000;
export const REVIEW_STEP_GRACE_MS = 4 * STEP_TIMEOUT_MS;
/** Not yet accepted, reverted or dismissed (a step underway or interrupted included): what keeps a bundle open. */
const UNSETTLED = `(review_state IS NULL OR review_state IN ('accepting', 'reverting'))`;
const isUnderway = (state: ActionRow['review_state']): state is 'accepting' | 'reverting' => state === 'accepting' || state === 'reverting';
const interrupted = (a: Pick<ActionRow, 'interrupted'>) => a.interrupted;
/** Computed by the database, on its own clock (the one that stamped the claim). */
const INTERRUPTED_SQL = (t: string) =>
  `coalesce(${t}review_state IN ('accepting', 'reverting') AND (${t}review_interrupted OR ${t}reviewed_at < now() - make_interval(secs => ${REVIEW_STEP_GRACE_MS / 1000})), false) AS interrupted`;
/** An action's columns as ActionRow reads them (`t`: the table's alias and a dot, or nothing). */
const actionColumns = (t: string) =>
  `${['id', 'step', 'connector', 'tool', 'action_type', 'level', 'state', 'reversible', 'undo', 'finalize', 'review_state', 'reviewed_by', 'reviewed_at'].map((c) => t + c).join(', ')}, ${INTERRUPTED_SQL(t)}`;
const ACTION_COLUMNS = actionColumns('');
/** Why an action whose step is underway cannot be decided now. */
const underwayConflict = (a: ActionRow) =>
  interrupted(a)
    ? AppError.conflict(`An earlier ${a.review_state === 'accepting' ? 'accept' : 'revert'} of action ${a.id} was interrupted before its outcome was known: it is not run again. Check the target, then settle it (done or not done).`)
    : AppError.conflict(`Action ${a.id} is being ${a.review_state === 'accepting' ? 'accepted' : 'reverted'} by a reviewer now.`);

/**
 * Tasks whose Batched writes a reviewer may accept or revert: one that ended in review, and one
 * that stopped before its end (failed: a Forbidden attempt, the kill switch, a suspension, a limit;
 * or cancelled) after such writes ran. The latter keeps its state; its writes wait all the same.
 */
const REVIEWABLE = ['in_review', 'failed', 'cancelled'];

/**
 * Review bundles: a finished task whose Batched writes ran in their reversible form waits
 * `in_review` (one that failed or was cancelled after such writes keeps its state, and its writes
 * wait for a reviewer all the same). A reviewer accepts each action (its finishing step, where the connector has one: a
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
      const rows: { id: string; user_id: string; state: string; pending: number; accepted: number; reverted: number; dismissed: number }[] = await em.query(
        `SELECT t.id, t.user_id, t.state,
                count(*) FILTER (WHERE a.review_state IS NULL OR a.review_state IN ('accepting', 'reverting'))::int AS pending,
                count(*) FILTER (WHERE a.review_state = 'accepted')::int AS accepted,
                count(*) FILTER (WHERE a.review_state = 'reverted')::int AS reverted,
                count(*) FILTER (WHERE a.review_state = 'dismissed')::int AS dismissed
           FROM tasks t JOIN task_actions a ON a.org_id = t.org_id AND a.task_id = t.id AND a.level = 'batched' AND a.state = 'succeeded' AND a.reversible
          WHERE t.org_id = $1 AND t.state IN ('in_review', 'failed', 'cancelled') ${reach === 'own' ? 'AND t.user_id = $2' : ''}
          GROUP BY t.org_id, t.id
         HAVING t.state = 'in_review' OR count(*) FILTER (WHERE a.review_state IS NULL OR a.review_state IN ('accepting', 'reverting')) > 0
          ORDER BY t.id DESC LIMIT ${q.limit}`,
        reach === 'own' ? [p.orgId, p.userId] : [p.orgId],
      );
      return { items: rows.map((r) => ({ taskId: r.id, userId: r.user_id, taskState: r.state, pending: r.pending, accepted: r.accepted, reverted: r.reverted, dismissed: r.dismissed })) };
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
      `SELECT ${ACTION_COLUMNS} FROM task_actions
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
      interrupted: needsReview(a) && interrupted(a),
      reviewedBy: a.reviewed_by,
      reviewedAt: a.reviewed_at?.toISOString() ?? null,
    }));
    const under = actions.filter((a) => a.needsReview);
    return {
      taskId: t.id,
      userId: t.user_id,
      taskState: t.state,
      pending: under.filter((a) => a.reviewState !== 'accepted' && a.reviewState !== 'reverted' && a.reviewState !== 'dismissed').length,
      accepted: under.filter((a) => a.reviewState === 'accepted').length,
      reverted: under.filter((a) => a.reviewState === 'reverted').length,
      dismissed: under.filter((a) => a.reviewState === 'dismissed').length,
      actions,
    };
  }

  /**
   * Accepts or reverts one action of the bundle, or every pending one (`actionId` null), newest
   * first: each action's undo or finishing step is claimed, run through its connector, and its
   * outcome recorded with its audit event (settleEach). A failure stops there (409, audited), and
   * what was done stays done.
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
      if (!REVIEWABLE.includes(t.state)) throw AppError.conflict(`The task is ${t.state}, not in review.`);
      await this.refuseWhilePaused(em, p);
      await this.access.requireStepUp(em, p);
      if (actionId !== null && !UUID_PATTERN.test(actionId)) throw AppError.notFound('action');
      const rows: ActionRow[] = await em.query(
        `SELECT ${ACTION_COLUMNS} FROM task_actions
          WHERE org_id = $1 AND task_id = $2 AND level = 'batched' AND state = 'succeeded' AND reversible ${actionId ? 'AND id = $3' : 'AND review_state IS NULL'}
          ORDER BY step DESC`,
        actionId ? [p.orgId, taskId, actionId] : [p.orgId, taskId],
      );
      if (actionId && !rows.length) throw AppError.notFound('action');
      if (actionId && isUnderway(rows[0].review_state)) throw underwayConflict(rows[0]);
      if (actionId && rows[0].review_state) throw AppError.conflict(`The action is already ${rows[0].review_state}.`);
      if (!rows.length) {
        const [{ underway }]: { underway: number }[] = await em.query(`SELECT count(*)::int AS underway FROM task_actions WHERE org_id = $1 AND task_id = $2 AND review_state IN ('accepting', 'reverting')`, [p.orgId, taskId]);
        throw AppError.conflict(underway ? `Nothing in this bundle is left to decide: ${underway} action(s) are being accepted or reverted, or wait to be settled after an interrupted step.` : 'Nothing in this bundle is left to review.');
      }
      if (verdict === 'revert') {
        const stuck = rows.find((r) => !r.undo);
        if (stuck) throw AppError.conflict(`The action ${stuck.id} has no undo call recorded; it cannot be reverted.`);
      } else if (rows.some((r) => r.finalize)) await this.stillAllowed(em, p.orgId, t.user_id, rows.filter((r) => r.finalize), (r) => this.taskDecision(em, p.orgId, t.id, r), p.userId);
      return { t, rows };
    });
    // 2. Action by action: its claim, its call, then its mark and audit event.
    const hub = rows.some((r) => r[step]) ? await this.taskHub(p, t) : null;
    try {
      await this.settleEach(p, rows, verdict, body, { taskId, ownerId: t.user_id, whole: actionId === null }, () => hub, actionId !== null);
    } finally {
      await hub?.close().catch(() => undefined);
    }
    // 3. The task completes once nothing is left to review.
    return this.completeIfSettled(p, taskId);
  }

  private completeIfSettled(p: Principal, taskId: string) {
    return this.db.inOrg(p, async (em) => {
      await this.task(em, p, taskId, true);
      const [{ left }]: { left: number }[] = await em.query(
        `SELECT count(*)::int AS left FROM task_actions WHERE org_id = $1 AND task_id = $2 AND level = 'batched' AND state = 'succeeded' AND reversible AND ${UNSETTLED}`,
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
   * Settles an action whose undo or finishing step was interrupted (its outcome unknown): a person
   * checked the target and says whether it was carried out. Done: the action is accepted (or
   * reverted) as the step meant; not done: it is pending again, to be decided anew. Audited.
   */
  async settleStep(p: Principal, taskId: string | null, actionId: string, body: z.infer<typeof SettleReviewStepBody>) {
    if (taskId !== null) await this.access.authorize(p, 'read', 'Review', { id: taskId, userId: p.userId });
    else await this.access.authorize(p, 'read', 'Review', { id: actionId, userId: p.userId });
    await this.db.inOrg(p, async (em) => {
      const t = taskId !== null ? await this.task(em, p, taskId, true) : null;
      const [r]: GatewayRow[] = UUID_PATTERN.test(actionId)
        ? await em.query(
            `SELECT ${GATEWAY_COLUMNS} FROM task_actions a WHERE a.org_id = $1 AND a.id = $2 AND ${taskId !== null ? 'a.task_id = $3' : 'a.task_id IS NULL'} AND ${GATEWAY_UNDER_REVIEW} FOR UPDATE`,
            taskId !== null ? [p.orgId, actionId, taskId] : [p.orgId, actionId],
          )
        : [];
      if (!r || !p.ability.can('read', subjectOf('Review', { userId: r.user_id }))) throw AppError.notFound('action');
      await this.access.authorize(p, 'decide', 'Review', { id: taskId ?? actionId, userId: r.user_id });
      if (!isUnderway(r.review_state)) throw AppError.conflict(r.review_state ? `The action is already ${r.review_state}.` : 'No step of this action is underway: accept or revert it.');
      if (!interrupted(r)) throw underwayConflict(r);
      const verdict = r.review_state === 'accepting' ? 'accept' : 'revert';
      // Settled as done, an interrupted accept is an acceptance: never of one's own work.
      if (body.done && verdict === 'accept' && r.user_id === p.userId) await this.access.deny(p, 'decide', 'Review', taskId ?? actionId, 'own_action', "Nobody accepts their own agent's work: another reviewer does.");
      await this.access.requireStepUp(em, p);
      await em.query(`UPDATE task_actions SET review_state = $3, reviewed_by = $4, reviewed_at = $5, review_interrupted = false WHERE org_id = $1 AND id = $2`, [
        p.orgId,
        r.id,
        body.done ? (verdict === 'accept' ? 'accepted' : 'reverted') : null,
        body.done ? p.userId : null,
        body.done ? new Date() : null,
      ]);
      await this.audit.record(em, p, {
        action: 'review.settle',
        ...(t ? { targetType: 'Task', targetId: t.id } : { targetType: 'Action', targetId: r.id }),
        payload: { actionId: r.id, tool: r.tool, step: verdict === 'accept' ? (r.finalize?.tool ?? null) : (r.undo?.tool ?? null), interrupted: verdict, startedBy: r.reviewed_by, done: body.done, reasonBytes: body.reason ? Buffer.byteLength(body.reason) : 0 },
      });
    });
    if (taskId !== null) return this.completeIfSettled(p, taskId);
    return this.db.inOrg(p, async (em) => {
      const [after]: GatewayRow[] = await em.query(`SELECT ${GATEWAY_COLUMNS} FROM task_actions a WHERE a.org_id = $1 AND a.id = $2`, [p.orgId, actionId]);
      return gatewayView(after, (await this.clientNames(em, p.orgId, [after])).get(after.id) ?? null);
    });
  }

  /**
   * Closes pending actions without running anything: neither the undo nor the finishing step. What
   * is left when neither can run (the connector was removed, the draft was deleted upstream by hand),
   * so that the action and its task do not wait in review for ever. The rules of an accept: never
   * one's own agent's work (leaving it as it is accepts it), step-up where the org requires it, a
   * step underway or interrupted is settled instead. The reason is required and sealed in the audit
   * event. Runs nothing, so the kill switch does not hold it back.
   */
  async dismiss(p: Principal, taskId: string | null, actionIds: string[], body: z.infer<typeof DismissReviewBody>) {
    await this.access.authorize(p, 'read', 'Review', { id: taskId ?? actionIds[0], userId: p.userId });
    await this.db.inOrg(p, async (em) => {
      const t = taskId !== null ? await this.task(em, p, taskId, true) : null;
      if (t && !REVIEWABLE.includes(t.state)) throw AppError.conflict(`The task is ${t.state}, not in review.`);
      const ids = actionIds.filter((id) => UUID_PATTERN.test(id));
      const rows: GatewayRow[] = await em.query(
        `SELECT ${GATEWAY_COLUMNS} FROM task_actions a WHERE a.org_id = $1 AND a.id = ANY($2::uuid[]) AND ${t ? 'a.task_id = $3' : 'a.task_id IS NULL'} AND ${GATEWAY_UNDER_REVIEW}
          ORDER BY a.created_at DESC, a.id DESC FOR UPDATE`,
        t ? [p.orgId, ids, t.id] : [p.orgId, ids],
      );
      const missing = actionIds.find((id) => !rows.some((r) => r.id === id && p.ability.can('read', subjectOf('Review', { userId: r.user_id }))));
      if (missing) throw AppError.notFound(t ? 'action' : `gateway action under review (${missing})`);
      for (const r of rows) {
        await this.access.authorize(p, 'decide', 'Review', { id: taskId ?? r.id, userId: r.user_id });
        if (r.user_id === p.userId) await this.access.deny(p, 'decide', 'Review', taskId ?? r.id, 'own_action', "Nobody dismisses their own agent's work (leaving it as it is accepts it): another reviewer does. You may revert it.");
        if (isUnderway(r.review_state)) throw underwayConflict(r);
        if (r.review_state) throw AppError.conflict(`The action ${r.id} is already ${r.review_state}.`);
      }
      await this.access.requireStepUp(em, p);
      await em.query(`UPDATE task_actions SET review_state = 'dismissed', reviewed_by = $3, reviewed_at = now(), review_interrupted = false WHERE org_id = $1 AND id = ANY($2::uuid[])`, [p.orgId, rows.map((r) => r.id), p.userId]);
      for (const r of rows) {
        await this.audit.record(em, p, {
          action: 'review.dismiss',
          ...(t ? { targetType: 'Task', targetId: t.id } : { targetType: 'Action', targetId: r.id }),
          payload: { actions: [{ actionId: r.id, tool: r.tool, undo: r.undo?.tool ?? null, finalize: r.finalize?.tool ?? null }], ...(t ? {} : { gateway: true }), owner: r.user_id, reasonBytes: Buffer.byteLength(body.reason) },
          sensitive: { reason: body.reason },
        });
      }
    });
    if (taskId !== null) return this.completeIfSettled(p, taskId);
    return this.gatewayItems(p, actionIds);
  }

  /** The named gateway actions as they stand now, newest first. */
  private gatewayItems(p: Principal, actionIds: string[]): Promise<z.infer<typeof GatewayReviewList>> {
    return this.db.inOrg(p, async (em) => {
      const after: GatewayRow[] = await em.query(`SELECT ${GATEWAY_COLUMNS} FROM task_actions a WHERE a.org_id = $1 AND a.id = ANY($2::uuid[]) ORDER BY a.created_at DESC, a.id DESC`, [p.orgId, actionIds]);
      const clients = await this.clientNames(em, p.orgId, after);
      return { items: after.map((r) => gatewayView(r, clients.get(r.id) ?? null)), nextCursor: null };
    });
  }

  /**
   * Batched writes made through the MCP gateway: no task holds them, so each waits under the member
   * it acted for until a reviewer accepts or reverts it. A member with the `own` reach sees theirs.
   */
  async listGateway(p: Principal, q: z.infer<typeof ListGatewayReviewsQuery>): Promise<z.infer<typeof GatewayReviewList>> {
    const reach = this.access.reach(p, 'read', 'Review');
    if (reach === 'none') await this.access.authorize(p, 'read', 'Review');
    return this.db.inOrg(p, async (em) => {
      const params: unknown[] = [p.orgId];
      const where = [`a.org_id = $1`, `a.task_id IS NULL`, GATEWAY_UNDER_REVIEW];
      if (q.state === 'pending') where.push(`(a.review_state IS NULL OR a.review_state IN ('accepting', 'reverting'))`);
      if (q.state === 'settled') where.push(`a.review_state IN ('accepted', 'reverted', 'dismissed')`);
      const user = reach === 'own' ? p.userId : q.userId;
      if (reach === 'own' && q.userId && q.userId !== p.userId) return { items: [], nextCursor: null };
      if (user) where.push(`a.user_id = $${params.push(user)}`);
      if (q.cursor) where.push(`(a.created_at, a.id) < (SELECT created_at, id FROM task_actions WHERE org_id = $1 AND id = $${params.push(q.cursor)})`);
      const rows: GatewayRow[] = await em.query(
        `SELECT ${GATEWAY_COLUMNS} FROM task_actions a WHERE ${where.join(' AND ')} ORDER BY a.created_at DESC, a.id DESC LIMIT ${q.limit + 1}`,
        params,
      );
      const more = rows.length > q.limit;
      const page = rows.slice(0, q.limit);
      const clients = await this.clientNames(em, p.orgId, page);
      return { items: page.map((r) => gatewayView(r, clients.get(r.id) ?? null)), nextCursor: more ? page[page.length - 1].id : null };
    });
  }

  /**
   * Accepts or reverts gateway actions, named one by one (a reviewer settles what they saw, never an
   * action that arrived meanwhile). The same rules as a task's bundle: nobody accepts their own, a
   * finishing step runs only while the owner is active and the policy does not now forbid it, each
   * step runs through the owner's connector and is recorded with its audit event in one commit.
   */
  async decideGateway(p: Principal, verdict: 'accept' | 'revert', body: z.infer<typeof GatewayReviewBody>): Promise<z.infer<typeof GatewayReviewList>> {
    await this.access.authorize(p, 'read', 'Review', { id: body.actionIds[0], userId: p.userId });
    const rows = await this.db.inOrg(p, async (em) => {
      const rows: GatewayRow[] = await em.query(
        `SELECT ${GATEWAY_COLUMNS} FROM task_actions a WHERE a.org_id = $1 AND a.id = ANY($2::uuid[]) AND a.task_id IS NULL AND ${GATEWAY_UNDER_REVIEW}
          ORDER BY a.created_at DESC, a.id DESC FOR UPDATE`,
        [p.orgId, body.actionIds],
      );
      const missing = body.actionIds.find((id) => !rows.some((r) => r.id === id && p.ability.can('read', subjectOf('Review', { userId: r.user_id }))));
      if (missing) throw AppError.notFound(`gateway action under review (${missing})`);
      for (const r of rows) {
        await this.access.authorize(p, 'decide', 'Review', { id: r.id, userId: r.user_id });
        if (verdict === 'accept' && r.user_id === p.userId) await this.access.deny(p, 'decide', 'Review', r.id, 'own_action', "Nobody accepts their own agent's work: another reviewer does. You may revert it.");
        if (isUnderway(r.review_state)) throw underwayConflict(r);
        if (r.review_state) throw AppError.conflict(`The action ${r.id} is already ${r.review_state}.`);
        if (verdict === 'revert' && !r.undo) throw AppError.conflict(`The action ${r.id} has no undo call recorded; it cannot be reverted.`);
      }
      await this.refuseWhilePaused(em, p);
      await this.access.requireStepUp(em, p);
      if (verdict === 'accept') {
        for (const owner of new Set(rows.filter((r) => r.finalize).map((r) => r.user_id))) {
          await this.stillAllowed(em, p.orgId, owner, rows.filter((r) => r.finalize && r.user_id === owner), (r) => this.gatewayDecision(em, p.orgId, r as GatewayRow), p.userId);
        }
      }
      return rows;
    });
    // Each owner's connectors that a step runs through, opened once, as the gateway opens them for that member.
    const step = verdict === 'revert' ? 'undo' : 'finalize';
    const hubs = new Map<string, { hub: ConnectorHub; close(): Promise<void> }>();
    try {
      for (const owner of new Set(rows.filter((r) => r[step]).map((r) => r.user_id))) {
        hubs.set(owner, await this.gatewayHub(p, owner, rows.filter((x) => x.user_id === owner).map((x) => x.connector)));
      }
      await this.settleEach(p, rows, verdict, body, null, (r) => hubs.get((r as GatewayRow).user_id) ?? null, true);
    } finally {
      for (const h of hubs.values()) await h.close().catch(() => undefined);
    }
    return this.gatewayItems(p, body.actionIds);
  }

  /** The kill switch: nothing runs through a connector while agents are paused, a reviewer's step included (it waits for the resume). */
  private async refuseWhilePaused(em: EntityManager, p: Principal): Promise<void> {
    const [org]: { paused: boolean }[] = await em.query(`SELECT agents_paused_at IS NOT NULL AS paused FROM orgs WHERE id = $1`, [p.orgId]);
    if (org?.paused) throw AppError.conflict('Agents are paused in this org (kill switch): reviews are decided once they resume.');
  }

  /**
   * Action by action, newest first: the step's claim (committed before it runs), the undo or
   * finishing step, then the mark and audit event in one commit, so what happened upstream is on
   * record even when a later one fails: the failure stops there (409, audited), and what was done
   * stays done. A step the API did not see end keeps its claim for a person to settle.
   */
  private async settleEach(
    p: Principal,
    rows: ActionRow[],
    verdict: 'accept' | 'revert',
    body: { reason?: string },
    task: { taskId: string; ownerId: string; whole: boolean } | null,
    hubOf: (r: ActionRow) => { hub: ConnectorHub } | null,
    /** The caller named these actions (one of a bundle, or the gateway's): one decided by someone else meanwhile is a conflict, not skipped. */
    named: boolean,
  ): Promise<void> {
    const step = verdict === 'revert' ? 'undo' : 'finalize';
    const target = (r: ActionRow) => (task ? { targetType: 'Task', targetId: task.taskId } : { targetType: 'Action', targetId: r.id });
    const scope = task ? { whole: task.whole } : { gateway: true };
    let done = 0;
    for (const r of rows) {
      const owner = task ? { userId: task.ownerId, taskId: task.taskId } : { userId: (r as GatewayRow).user_id, taskId: null };
      const record = (em: EntityManager, late = false) =>
        this.audit.record(em, p, {
          action: `review.${verdict}`,
          ...target(r),
          payload: {
            actions: [{ actionId: r.id, tool: r.tool, undo: verdict === 'revert' ? (r.undo?.tool ?? null) : null, finalize: verdict === 'accept' ? (r.finalize?.tool ?? null) : null }],
            ...scope,
            reasonBytes: body.reason ? Buffer.byteLength(body.reason) : 0,
            // The step ran, but a person had settled its claim meanwhile (it outlived the grace): what they said stands.
            ...(late ? { finishedAfterSettle: true } : {}),
          },
        });
      const final = verdict === 'accept' ? 'accepted' : 'reverted';
      const underway = `${verdict}ing`;
      try {
        // 1. The claim: this reviewer's step, committed before it runs (or, with no step to run, the decision itself).
        const claim = await this.db.inOrg(p, async (em) => {
          const [now]: ActionRow[] = await em.query(`SELECT ${ACTION_COLUMNS} FROM task_actions WHERE org_id = $1 AND id = $2 FOR UPDATE`, [p.orgId, r.id]);
          if (now?.review_state) {
            // Decided, or being decided, by another reviewer meanwhile: one the caller named is a conflict; in a whole bundle it is left to them.
            if (!named) return null;
            throw isUnderway(now.review_state) ? underwayConflict(now) : AppError.conflict(`The action ${r.id} was ${now.review_state} by another reviewer meanwhile.`);
          }
          // A step runs through the connector the action ran through, never through another installed since under the same name
          // (another account, another server): the connector's row must predate the action (both stamped by the database's clock).
          if (r[step]) {
            const installed: { name: string; later: boolean }[] = await em.query(
              `SELECT c.name, c.created_at > a.created_at AS later FROM connectors c JOIN task_actions a ON a.org_id = c.org_id AND a.id = $2 WHERE c.org_id = $1`,
              [p.orgId, r.id],
            );
            if (installed.some((c) => c.later && hubIdOf(c.name) === r.connector)) {
              throw AppError.conflict(
                `The ${r.connector} connector was installed again after action ${r.id} ran: its ${step === 'undo' ? 'undo' : 'finishing step'} belongs to the installation that was removed and is not run through the new one. Check the target by hand, then dismiss the action with a reason.`,
              );
            }
          }
          // The claim's time as text: microseconds, which a Date would round away.
          const [c]: { at: string }[] = await em.query(
            `WITH u AS (UPDATE task_actions SET review_state = $3, reviewed_by = $4, reviewed_at = now(), review_interrupted = false WHERE org_id = $1 AND id = $2 RETURNING reviewed_at) SELECT reviewed_at::text AS at FROM u`,
            [p.orgId, r.id, r[step] ? underway : final, p.userId],
          );
          if (!r[step]) {
            await record(em);
            done++;
          }
          return r[step] ? c!.at : null;
        });
        if (!claim) continue;
        // Later writes apply only to this very claim: a person may have settled it meanwhile, and another reviewer claimed it again.
        const mine = `org_id = $1 AND id = $2 AND review_state = '${underway}' AND reviewed_by = $3 AND reviewed_at = $4::timestamptz`;
        const mineArgs = [p.orgId, r.id, p.userId, claim];
        // 2. The step, outside any transaction. A failure that surely did nothing upstream frees the
        //    claim (pending again); one that may have acted keeps it, marked interrupted at once, for a person to settle.
        try {
          const hub = hubOf(r);
          if (!hub) throw AppError.conflict(`The ${r.connector} connector is no longer available: action ${r.id} cannot be ${verdict === 'accept' ? 'made final' : 'reverted'}.`);
          await this.runStep(hub, p, owner, r, step);
        } catch (err) {
          const unknown = err instanceof ConnectorError && err.mayHaveActed;
          await this.db.inOrg(p, (em) =>
            unknown
              ? em.query(`UPDATE task_actions SET review_interrupted = true WHERE ${mine}`, mineArgs)
              : em.query(`UPDATE task_actions SET review_state = NULL, reviewed_by = NULL, reviewed_at = NULL WHERE ${mine}`, mineArgs),
          );
          if (err instanceof ConnectorError) {
            throw AppError.conflict(
              `The ${step === 'undo' ? 'undo' : 'finishing step'} of action ${r.id} failed (${err.code}): ${err.message.slice(0, 300)}${unknown ? ' It may have been carried out: check the target, then settle the action (done or not done).' : ''}`,
            );
          }
          throw err;
        }
        // 3. Its outcome: the mark and the audit event, in one commit.
        const settledMeanwhile = await this.db.inOrg(p, async (em) => {
          const marked = await queryReturning(em, `UPDATE task_actions SET review_state = $5, reviewed_at = now() WHERE ${mine} RETURNING id`, [...mineArgs, final]);
          await record(em, !marked.length);
          return !marked.length;
        });
        if (settledMeanwhile) throw AppError.conflict(`The ${step === 'undo' ? 'undo' : 'finishing step'} of action ${r.id} ran, but it took so long that a person settled the action meanwhile: what they recorded stands. Check the action.`);
        done++;
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        // On record although nothing of it was kept: the call was attempted for this action.
        await this.db.inOrg(p, (em) =>
          // The error's words may come from the upstream and name people or files (a draft's recipients): sealed under the action's owner's key.
          this.audit.record(em, p, {
            action: `review.${verdict}`,
            ...target(r),
            outcome: 'failure',
            payload: { actions: [{ actionId: r.id, tool: r.tool, [step]: r[step]?.tool ?? null }], ...scope, errorCode: err.code },
            sensitive: { error: err.message.slice(0, 300) },
            subject: owner.userId,
          }),
        );
        throw done ? AppError.conflict(`${err.message} ${done} action(s)${task ? ' of this bundle' : ''} were ${verdict === 'accept' ? 'accepted' : 'reverted'} before it and stay so; the others not yet decided are still pending.`) : err;
      }
    }
  }

  /**
   * A finishing step acts for the owner now (a draft is sent): like an approved action, it runs only
   * while the owner's membership is active and the current policy does not forbid what the action
   * does. Each action is decided again on the facts its decision recorded (its decision event); the
   * reviewer's accept satisfies anything short of Forbidden, except where the policy now routes the
   * action to approval by a group the reviewer is not in, or by two people (an approval's routing
   * is kept the same way: a reviewer's accept is not weaker than an approval).
   */
  private async stillAllowed(em: EntityManager, orgId: string, owner: string, rows: ActionRow[], decision: (r: ActionRow) => Promise<RecordedFacts | null>, reviewer: string): Promise<void> {
    const [m]: { status: string }[] = await em.query(`SELECT status FROM memberships WHERE org_id = $1 AND user_id = $2`, [orgId, owner]);
    if (m?.status !== 'active') throw AppError.conflict("The action's owner is not an active member now: nothing of it is made final. Revert it, or accept it once they are reinstated.");
    const [active]: { document: PolicyDocument }[] = await em.query(`SELECT document FROM policies WHERE org_id = $1 AND status = 'active'`, [orgId]);
    if (!active) throw AppError.conflict('The org has no active policy: nothing is made final.');
    const compiled = compilePolicy(active.document);
    for (const r of rows) {
      const facts = await decision(r);
      if (!facts) throw AppError.conflict(`The action ${r.id} has no recorded decision to decide again: it is not made final.`);
      // Decided under a workflow: its rules count only while the owner may still run tasks under it (its groups).
      if (facts.workflow) {
        const [w]: { ok: boolean }[] = await em.query('SELECT steward_workflow_permitted($1, $2, $3) AS ok', [orgId, owner, facts.workflow]);
        if (!w?.ok) throw AppError.conflict(`The action's owner may no longer run tasks under the workflow "${facts.workflow}" (${r.tool}): it is not made final; revert it.`);
      }
      const d = decideRecorded(compiled, facts, r.action_type as ActionType, r.connector, new Date());
      if (d.level === 'forbidden') throw AppError.conflict(`The policy now forbids this action (${r.tool}): ${d.reason.slice(0, 300)} It is not made final; revert it.`);
      if (d.level === 'watched' && d.routing) {
        if (d.routing.quorum > 1) throw AppError.conflict(`The policy now has this action (${r.tool}) approved by two people (route ${d.routing.routeId}): one reviewer's accept does not make it final; revert it.`);
        const group = d.routing.approverGroup;
        if (group) {
          const [inGroup]: unknown[] = await em.query(`SELECT 1 FROM group_members WHERE org_id = $1 AND group_id = $2 AND user_id = $3`, [orgId, group, reviewer]);
          if (!inGroup) throw AppError.conflict(`The policy now has this action (${r.tool}) approved by the members of one group (route ${d.routing.routeId}): accept it as one of them, or revert it.`);
        }
      }
    }
  }

  /** The facts a task action's decision recorded (its decision event, the task its actor). */
  private async taskDecision(em: EntityManager, orgId: string, taskId: string, r: ActionRow): Promise<RecordedFacts | null> {
    const [e]: { payload: { facts?: RecordedFacts } }[] = await em.query(
      `SELECT canonical::jsonb->'payload' AS payload FROM audit_events
        WHERE org_id = $1 AND actor_id = $2 AND canonical::jsonb->'payload'->>'actionId' = $3 AND canonical::jsonb->>'decision' <> 'executed' LIMIT 1`,
      [orgId, taskId, r.id],
    );
    return e?.payload?.facts ?? null;
  }

  /** The facts a gateway action's decision recorded: its decision event was written in the claim's commit (found by its action type and time). */
  private async gatewayDecision(em: EntityManager, orgId: string, r: GatewayRow): Promise<RecordedFacts | null> {
    const [e]: { payload: { facts?: RecordedFacts } }[] = await em.query(
      `SELECT canonical::jsonb->'payload' AS payload FROM audit_events
        WHERE org_id = $1 AND action = $2 AND occurred_at BETWEEN $3::timestamptz - interval '10 minutes' AND $3::timestamptz + interval '1 minute'
          AND canonical::jsonb->'payload'->>'actionId' = $4 AND canonical::jsonb->>'decision' <> 'executed' LIMIT 1`,
      [orgId, r.action_type, r.created_at, r.id],
    );
    return e?.payload?.facts ?? null;
  }

  /** The MCP client each gateway action's decision event names (`payload.mcp.clientName`). */
  private async clientNames(em: EntityManager, orgId: string, rows: GatewayRow[]): Promise<Map<string, string>> {
    if (!rows.length) return new Map();
    const found: { id: string; client: string | null }[] = await em.query(
      `SELECT a.id, (SELECT e.canonical::jsonb->'payload'->'mcp'->>'clientName' FROM audit_events e
                      WHERE e.org_id = a.org_id AND e.action = a.action_type AND e.occurred_at BETWEEN a.created_at - interval '10 minutes' AND a.created_at + interval '1 minute'
                        AND e.canonical::jsonb->'payload'->>'actionId' = a.id::text LIMIT 1) AS client
         FROM task_actions a WHERE a.org_id = $1 AND a.id = ANY($2::uuid[])`,
      [orgId, rows.map((r) => r.id)],
    );
    return new Map(found.filter((f) => f.client).map((f) => [f.id, f.client!.slice(0, 200)]));
  }

  /**
   * The task's connectors, as its agent had them, with the task owner's credentials (each decrypt
   * audited under the action it serves). While agents are paused no credential is released, so
   * nothing runs through a connector that needs one.
   */
  private taskHub(p: Principal, t: { id: string; user_id: string; connectors: string[] }): Promise<{ hub: ConnectorHub; close(): Promise<void> }> {
    return this.openHub(p, t.user_id, t.id, t.connectors);
  }

  /** A gateway owner's connectors that the actions to settle went through (hub ids), as the gateway opens them for that member. */
  private async gatewayHub(p: Principal, owner: string, hubIds: string[]): Promise<{ hub: ConnectorHub; close(): Promise<void> }> {
    const installed: { name: string }[] = await this.db.inOrg(p, (em) => em.query(`SELECT name FROM connectors WHERE org_id = $1 AND status = 'active'`, [p.orgId]));
    const names = ['workspace-files', ...installed.map((n) => n.name)].filter((n) => hubIds.includes(hubIdOf(n)));
    return this.openHub(p, owner, null, names);
  }

  private async openHub(p: Principal, owner: string, taskId: string | null, names: string[]): Promise<{ hub: ConnectorHub; close(): Promise<void> }> {
    const hub = new ConnectorHub({ timeoutMs: STEP_TIMEOUT_MS, maxResultBytes: 1 << 20 });
    try {
      const egress = await this.db.inOrg(p, (em) => this.credentials.egressFor(em, p.orgId));
      const broker = new CredentialBroker(this.db.dataSource, this.credentials.keys, this.audit.keyring, async () => egress);
      const { connectors } = await addTaskConnectors(
        hub,
        { ds: this.db.dataSource, dataDir: this.config.STEWARD_DATA_DIR, log: this.log, broker, baseUrls: this.config.STEWARD_CONNECTOR_BASE_URLS, egress: async () => egress },
        { orgId: p.orgId, userId: owner, taskId },
        names,
      );
      // No MCP client stands behind a reviewer's undo or finishing step: an upstream's sampling or elicitation is refused and audited.
      refuseServerRequests(hub, connectors, { ds: this.db.dataSource, keyring: this.audit.keyring, orgId: p.orgId, taskId, actor: { type: 'user', id: p.userId }, client: 'rest', where: 'during a review' });
      return { hub, close: () => hub.close() };
    } catch (err) {
      await hub.close().catch(() => undefined);
      throw err;
    }
  }

  /** One action's undo call (a revert) or finishing step (an accept), with an idempotency key: settling again does not act twice where the upstream honours it. */
  private async runStep(task: { hub: ConnectorHub }, p: Principal, owner: { userId: string; taskId: string | null }, r: ActionRow, step: 'undo' | 'finalize'): Promise<void> {
    const call = r[step]!;
    if (!task.hub.has(r.connector)) throw AppError.conflict(`The ${r.connector} connector is no longer available${owner.taskId ? ' to this task' : ''}: action ${r.id} cannot be ${step === 'undo' ? 'reverted' : 'made final'}.`);
    await actionScope.run({ orgId: p.orgId, userId: owner.userId, actionId: r.id, taskId: owner.taskId, client: 'rest' }, () => task.hub.callTool(r.connector, call.tool, call.args, { idempotencyKey: `${step}-${r.id}` }));
  }
}

interface GatewayRow extends ActionRow {
  user_id: string;
  created_at: Date;
}

/** A Batched gateway write that ran (in its reversible form) and so waits for, or had, a review. */
const GATEWAY_UNDER_REVIEW = `a.level = 'batched' AND a.state = 'succeeded' AND a.reversible`;
/** With whom and when: a gateway action's owner (also read for a task's action, whose owner is its task's). */
const GATEWAY_COLUMNS = `${actionColumns('a.')}, a.user_id, a.created_at`;

function gatewayView(r: GatewayRow, clientName: string | null): z.infer<typeof GatewayReviewView> {
  return {
    actionId: r.id,
    userId: r.user_id,
    connector: r.connector,
    tool: r.tool,
    actionType: r.action_type,
    clientName,
    reversible: r.reversible,
    undoTool: r.undo?.tool ?? null,
    finalizeTool: r.finalize?.tool ?? null,
    reviewState: r.review_state ?? 'pending',
    interrupted: interrupted(r),
    reviewedBy: r.reviewed_by,
    reviewedAt: r.reviewed_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
  };
}
