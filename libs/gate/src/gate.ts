/**
 * The action gate: the one function every agent action passes through (the worker's tool calls
 * now, the MCP gateway's next). Read it top to bottom — it is the action lifecycle of
 * ARCHITECTURE.md, one numbered step after another:
 *
 *   1 resolve   the tool to an action type (unmapped → `unknown`)
 *   2 label     personal data in the arguments, labels of what the task read, its taint
 *   3 decide    libs/policy on the active version, after reserving rate limits (Redis; fails safe)
 *   4 write ahead, in ONE transaction: kill switch and suspension read, claim (unique per task
 *               step or gateway action id), decision row, audit event — nothing runs unless it commits
 *   5 act       Autonomous runs; Batched runs its reversible form (reads run as they are; a write
 *               with no reversible form waits like Watched); Watched waits for approval; Forbidden
 *               is refused
 *   6 execute   through libs/connectors, the action id sent upstream as an idempotency key
 *   7 outcome   state, result digest and size, duration, the undo call — and its audit event
 *
 * Delivery is at most once: a claim that exists is never executed again; one left `executing`
 * by a crash is an outcome nobody knows, for a human to settle.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DataSource, EntityManager } from 'typeorm';
import { type AuditKeyring, canonical, type Client, recordEvent } from '@steward/audit';
import { newId } from '@steward/common';
import { type ConnectorHub, ConnectorError, type ConnectorManifest, extractContext, resolveTool, reversibleCall, type ToolCall, type ToolCallResult, undoCall, unknownMapping } from '@steward/connectors';
import { inOrg } from '@steward/db';
import { type ActionContext, authorize, type Decision, decide, labelArguments, type Level, type PolicyPrincipal, rateLimitsFor, toFacts } from '@steward/policy';
import type { ActivePolicy, PolicySource } from './policy-source';
import { reserve } from './rate-limits';

export interface GateDeps {
  ds: DataSource;
  redis: Redis;
  keyring: AuditKeyring;
  policies: PolicySource;
  /** The org's connectors, credentials wired per call (decrypted only for the call). */
  hub: ConnectorHub;
  /** The manifest of an installed connector (how its tools map to action types). */
  manifest: (connector: string) => ConnectorManifest | undefined;
  now?: () => Date;
}

export interface ActionRequest {
  orgId: string;
  /** The employee the agent acts for. */
  userId: string;
  /** The claim: one action per task step, or per gateway action id. */
  claim: { taskId: string; step: number } | { gatewayKey: string };
  connector: string;
  tool: string;
  args: Record<string, unknown>;
  /** The task has read untrusted content (web pages, outside mail, third-party tool output). */
  tainted: boolean;
  /** Labels of data the task read earlier ("confidential", "external", ...). */
  labels?: string[];
  workflow?: string | null;
  client: Client;
}

export type Refusal = 'forbidden' | 'paused' | 'suspended' | 'no_policy' | 'not_authorized';

interface Decided {
  actionId: string;
  level: Level;
  ruleIds: string[];
  reason: string;
  policyVersion: number | null;
}

export type GateResult =
  | (Decided & { status: 'executed'; reversible: boolean; result: ToolCallResult; undo: ToolCall | null })
  | (Decided & { status: 'awaiting_approval' })
  | (Decided & { status: 'refused'; refusal: Refusal })
  | (Decided & { status: 'failed'; error: { code: string; message: string } })
  /** The claim was made before: nothing ran again. `state` is what the first attempt left. */
  | { status: 'duplicate'; actionId: string; state: string };

const digest = (value: unknown) => createHash('sha256').update(canonical(value ?? null)).digest('hex');

/** What the decision event says, in words an OCSF/ECS consumer maps (denied → blocked). */
const DECISION_WORD: Record<Level, string> = { autonomous: 'allowed', batched: 'allowed_reversible', watched: 'watched_pending', forbidden: 'denied' };

export async function gateAction(deps: GateDeps, req: ActionRequest): Promise<GateResult> {
  const now = deps.now?.() ?? new Date();

  // 1. Resolve the tool to an action type.
  const manifest = deps.manifest(req.connector);
  const mapping = manifest ? resolveTool(manifest, req.tool) : unknownMapping(req.connector, req.tool);
  const spec = manifest?.tools.find((t) => t.name === req.tool);

  // 2. Label: what the arguments name, personal data in them, what the task read, its taint.
  const facts: ActionContext = extractContext(mapping, req.args);
  const org = await inOrg(deps.ds, { orgId: req.orgId }, async (em) => ({
    domains: ((await em.query('SELECT domains FROM orgs WHERE id = $1', [req.orgId]))[0]?.domains ?? []) as string[],
    groups: ((await em.query('SELECT group_id FROM group_members WHERE org_id = $1 AND user_id = $2', [req.orgId, req.userId])) as { group_id: string }[]).map((g) => g.group_id),
  }));
  const found = labelArguments(req.args, org.domains);
  const context: ActionContext = {
    ...facts,
    connector: req.connector,
    labels: [...new Set([...(facts.labels ?? []), ...found.labels, ...(req.labels ?? [])])].sort(),
    tainted: req.tainted,
    workflow: req.workflow ?? undefined,
    at: now,
  };
  const principal: PolicyPrincipal = { userId: req.userId, groupIds: org.groups };

  // 3. Decide on the active policy, rate limits reserved first (fail safe). 4. Write ahead.
  //    The active version is read again inside the write-ahead transaction; if an activation
  //    came in between, decide again on the new one.
  let policy = await inOrg(deps.ds, { orgId: req.orgId }, (em) => deps.policies.active(em, req.orgId));
  const reservation = policy ? await reserve(deps.redis, req.orgId, req.userId, rateLimitsFor(policy.compiled, mapping.action), now) : { exceeded: [], unavailable: false };
  context.rateExceeded = reservation.exceeded;
  const actionId = newId();
  const argsDigest = digest(req.args);
  for (let attempt = 0; ; attempt++) {
    const d = decideOn(policy, principal, mapping.action, context, org.domains);
    // Batched: reads run as they are; writes run in their reversible form, or wait like Watched.
    const reversible = d.level === 'batched' && !spec?.readOnly ? reversibleCall(mapping, req.args) : null;
    const level: Level = d.level === 'batched' && !spec?.readOnly && !reversible ? 'watched' : d.level;
    const written = await inOrg(deps.ds, { orgId: req.orgId, userId: req.userId }, async (em) => {
      const [gate] = await em.query(
        `SELECT o.agents_paused_at IS NOT NULL AS paused, m.status AS membership,
                (SELECT id FROM policies p WHERE p.org_id = o.id AND p.status = 'active') AS policy_id
           FROM orgs o LEFT JOIN memberships m ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1`,
        [req.orgId, req.userId],
      );
      if ((gate?.policy_id ?? null) !== (policy?.id ?? null)) return 'policy_changed' as const;
      const refusal: Refusal | null =
        gate?.paused ? 'paused'
        : gate?.membership !== 'active' ? 'suspended'
        : !policy ? 'no_policy'
        : level === 'forbidden' ? 'forbidden'
        : !d.authorized ? 'not_authorized'
        : null;
      const state = refusal ? 'refused' : level === 'watched' ? 'awaiting_approval' : 'executing';
      const claimed: unknown[] = await em.query(
        `INSERT INTO task_actions (org_id, id, task_id, step, gateway_key, user_id, connector, tool, action_type, level, rule_ids, reason,
                                   policy_id, policy_version, args_digest, tainted, labels, reversible, state, refusal, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19::varchar, $20, CASE WHEN $19::varchar = 'refused' THEN now() END)
         ON CONFLICT DO NOTHING RETURNING id`,
        [
          req.orgId, actionId,
          'taskId' in req.claim ? req.claim.taskId : null, 'taskId' in req.claim ? req.claim.step : null, 'gatewayKey' in req.claim ? req.claim.gatewayKey : null,
          req.userId, req.connector, req.tool, mapping.action, level, d.ruleIds, d.reason.slice(0, 1000),
          policy?.id ?? null, policy?.version ?? null, argsDigest, req.tainted, context.labels, reversible !== null, state, refusal,
        ],
      );
      if (!claimed.length) return { kind: 'duplicate' as const, first: await existingClaim(em, req) };
      await recordEvent(em, deps.keyring, {
        id: newId(),
        orgId: req.orgId,
        occurredAt: now,
        actor: { type: 'agent_task', id: 'taskId' in req.claim ? req.claim.taskId : null },
        action: mapping.action,
        target: { type: 'Tool', id: null },
        level,
        decision: refusal ? (refusal === 'forbidden' ? 'denied' : `denied_${refusal}`) : DECISION_WORD[level],
        outcome: refusal ? 'denied' : 'success',
        policyVersion: policy?.version ?? null,
        task: 'taskId' in req.claim ? req.claim.taskId : null,
        connector: req.connector,
        client: req.client,
        payload: { actionId, tool: req.tool, argsDigest, ruleIds: d.ruleIds, tainted: req.tainted, labels: context.labels, reversible: reversible !== null, rateLimited: reservation.exceeded, rateLimitsUnavailable: reservation.unavailable },
        // The arguments themselves, sealed under the employee's key (an erasure shreds them).
        sensitive: { arguments: canonical(req.args).slice(0, 4000), ...(context.recipients?.length ? { recipients: context.recipients } : {}) },
        subject: req.userId,
      });
      return { kind: 'written' as const, refusal, state };
    });
    if (written === 'policy_changed') {
      if (attempt >= 3) throw new Error('the active policy kept changing while deciding');
      policy = await inOrg(deps.ds, { orgId: req.orgId }, (em) => deps.policies.active(em, req.orgId));
      continue;
    }
    if (written.kind === 'duplicate') return { status: 'duplicate', actionId: written.first.id, state: written.first.state };
    const decided: Decided = { actionId, level, ruleIds: d.ruleIds, reason: d.reason, policyVersion: policy?.version ?? null };

    // 5. Act on the level.
    if (written.refusal) return { ...decided, status: 'refused', refusal: written.refusal };
    if (written.state === 'awaiting_approval') return { ...decided, status: 'awaiting_approval' };

    // 6. Execute: the reversible form at Batched, the call itself otherwise.
    const call: ToolCall = reversible ?? { tool: req.tool, args: req.args };
    const started = Date.now();
    try {
      const result = await deps.hub.callTool(req.connector, call.tool, call.args, { idempotencyKey: actionId });
      const undo = reversible ? undoCall(mapping, reversible.args, result.structuredContent ?? {}) : null;
      // 7. Outcome.
      await finish(deps, req, actionId, mapping.action, { state: 'succeeded', resultDigest: digest(result.structuredContent ?? result.content), bytes: result.bytes, ms: Date.now() - started, undo, errorCode: null });
      return { ...decided, status: 'executed', reversible: reversible !== null, result, undo };
    } catch (err) {
      const error = err instanceof ConnectorError ? { code: err.code, message: err.message } : { code: 'internal', message: 'the connector call failed' };
      await finish(deps, req, actionId, mapping.action, { state: 'failed', resultDigest: null, bytes: null, ms: Date.now() - started, undo: null, errorCode: error.code });
      return { ...decided, status: 'failed', error };
    }
  }
}

/** The decision and its CASL authorisation (the product's contract: every action is checked against CASL before it runs). */
function decideOn(policy: ActivePolicy | null, principal: PolicyPrincipal, action: Decision['action'], context: ActionContext, domains: string[]): Decision & { authorized: boolean } {
  if (!policy) return { action, level: 'forbidden', ruleIds: ['no_active_policy'], reason: 'Forbidden: the org has no active policy', routing: null, obligations: [], authorized: false };
  const d = decide(policy.compiled, principal, action, context, { domains });
  const authorized = d.level === 'forbidden' || authorize(policy.ability, toFacts(principal, action, context, { domains }), d.level);
  return { ...d, authorized };
}

async function existingClaim(em: EntityManager, req: ActionRequest): Promise<{ id: string; state: string }> {
  const [row]: { id: string; state: string }[] =
    'taskId' in req.claim
      ? await em.query('SELECT id, state FROM task_actions WHERE org_id = $1 AND task_id = $2 AND step = $3', [req.orgId, req.claim.taskId, req.claim.step])
      : await em.query('SELECT id, state FROM task_actions WHERE org_id = $1 AND gateway_key = $2', [req.orgId, req.claim.gatewayKey]);
  // The conflicting claim committed before our INSERT returned (it waits for it), so it is visible here.
  if (!row) throw new Error('claim conflict without a visible claim');
  return row;
}

interface Outcome {
  state: 'succeeded' | 'failed';
  resultDigest: string | null;
  bytes: number | null;
  ms: number;
  undo: ToolCall | null;
  errorCode: string | null;
}

async function finish(deps: GateDeps, req: ActionRequest, actionId: string, action: string, o: Outcome): Promise<void> {
  await inOrg(deps.ds, { orgId: req.orgId, userId: req.userId }, async (em) => {
    await em.query(
      `UPDATE task_actions SET state = $3, result_digest = $4, result_bytes = $5, duration_ms = $6, undo = $7, error_code = $8, finished_at = now()
        WHERE org_id = $1 AND id = $2 AND state = 'executing'`,
      [req.orgId, actionId, o.state, o.resultDigest, o.bytes, o.ms, o.undo ? JSON.stringify(o.undo) : null, o.errorCode],
    );
    await recordEvent(em, deps.keyring, {
      id: newId(),
      orgId: req.orgId,
      occurredAt: new Date(),
      actor: { type: 'agent_task', id: 'taskId' in req.claim ? req.claim.taskId : null },
      action,
      target: { type: 'Tool', id: null },
      decision: 'executed',
      outcome: o.state === 'succeeded' ? 'success' : 'failure',
      task: 'taskId' in req.claim ? req.claim.taskId : null,
      connector: req.connector,
      client: req.client,
      payload: { actionId, tool: req.tool, resultDigest: o.resultDigest, bytes: o.bytes, ms: o.ms, error: o.errorCode, undo: o.undo ? o.undo.tool : null },
    });
  });
}
