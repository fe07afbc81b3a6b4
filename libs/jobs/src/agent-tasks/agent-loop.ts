import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { type AuditKeyring, canonical, recordEvent } from '@steward/audit';
import { type Logger, newId } from '@steward/common';
import { ConnectorHub, type ConnectorManifest } from '@steward/connectors';
import { databaseUnavailable, type DataSource, type EntityManager, inOrg } from '@steward/db';
import { ClaimFenced, gateAction, type GateDeps, type GateObserver, type GateResult, OutcomeWriter, PolicySource, reserve } from '@steward/gate';
import { type ActionType, authorize, decide, isActionType, labelArguments, rateLimitsFor, redactPersonalData, toFacts } from '@steward/policy';
import { type KeyProvider, openSecret, sealSecret } from '@steward/vault';
import { bookTurnCost, budgetMessage, reserveTurn } from './budgets';
import { costMicros, type Message, type MessageParam, ModelClient, type ModelOptions, ModelUnavailable, routeModel, type Tool } from './model';
import { openOutcomeUnknown } from './outcome-unknown';
import { addTaskConnectors, type TaskConnectorDeps } from './task-connectors';
import { acquireLease, appendEvents, enqueueInOutbox, fenced, type Lease, LeaseLost, openPrompt, releaseLease, renewLease, resumeWaitingTask, type RunTaskPayload, sha256, type TaskEvent, transcriptAad } from './task-store';

/**
 * The agent loop: one task, run (or resumed) under its lease, turn after turn.
 *
 *   take the lease for the job's epoch (or do nothing) → load the sealed transcript
 *   each turn: limits (steps, budget, cancel) → `model.invoke` written ahead (claim, audit event
 *   by digest and size) → the model (retries on 429/529) → usage and cost → for each tool_use, in
 *   order, a step number fixed in the transcript first, then `gateAction()` with claim
 *   {taskId, step} → all tool results of the turn back together (a refusal as is_error) →
 *   transcript sealed and written under the epoch check.
 *   Forbidden stops the task (failed); Watched leaves it awaiting_approval (no worker held); the
 *   end turn finishes it: in_review when Batched actions ran, else completed.
 */
export const BUILTIN_TASK_CONNECTORS = ['workspace-files'] as const;

export interface AgentDeps {
  ds: DataSource;
  /** True once the worker is shutting down: a task goes back to the queue at its next turn. */
  stopping?: () => boolean;
  /** The deployment's ceilings on every task's steps and budget (TASK_MAX_STEPS, TASK_BUDGET_USD), applied when it runs and when a schedule fires. */
  limits?: { maxSteps: number; budgetMicros: number };
  redis: Redis;
  /** REDIS_PREFIX (the gate's rate-limit counters live under it). */
  redisPrefix?: string;
  keys: KeyProvider;
  keyring: AuditKeyring;
  policies?: PolicySource;
  /** STEWARD_DATA_DIR: workspaces live in `<dataDir>/workspaces/<org>/<user>`. */
  dataDir: string;
  model: ModelOptions;
  leaseSeconds: number;
  log: Logger;
  /** Identifies this worker in leases. */
  holder?: string;
  /** Installed connectors: the credential broker, API base URLs, egress rules (absent: only the workspace runs). */
  connectors?: Pick<TaskConnectorDeps, 'broker' | 'baseUrls' | 'egress'>;
  /** Tests: called before each model turn (turn index). */
  beforeTurn?: (lease: Lease, turn: number) => Promise<void>;
  /**
   * More in-process connectors a task may name, by id (tests: a connector whose executions are
   * logged; the server is made per task run, with the lease it runs under).
   */
  builtins?: Record<string, { manifest: ConnectorManifest; server: (ctx: { lease: Lease; folder: string }) => Parameters<ConnectorHub['addBuiltin']>[1] }>;
  /** The process's metrics: told of each decision, write-ahead commit and connector failure. */
  observer?: GateObserver;
  /** A task that comes to run while its org's agents are paused goes back to the queue for this long (default 60 s). */
  pausedRecheckMs?: number;
  /** Agent tasks one org may run at once (TASKS_MAX_RUNNING_PER_ORG, default 20; an org may set a lower limit of its own): more are parked until a place frees. */
  maxRunningPerOrg?: number;
}

interface Transcript {
  v: 1;
  messages: MessageParam[];
  /** tool_use id → the step it was claimed under (fixed before the gate runs, so a resume reuses it). */
  steps: Record<string, number>;
  continuations: number;
  /** The turn's output room was doubled once: a tool call was cut at max_tokens (asked again with twice the room). */
  roomier?: boolean;
  /** The last message is the model's final answer (written before the task is finished: a resume finishes with it). */
  answered?: boolean;
  /** Results of a turn that stopped for a human (tool_use id → result), given back when the task resumes. */
  held?: Record<string, ToolResultBlock>;
}

/** Refusals the model is told about while the task goes on: a person said no, or the approval no longer holds. */
const REFUSALS_TOLD: Record<string, string> = {
  not_authorized: 'the action is not authorised',
  rejected: 'a person rejected this action; it was not run',
  expired: 'nobody approved this action in time; it was not run',
  approval_used: 'the approval for this action was already used; it was not run again',
  approval_mismatch: 'the approval was for other arguments or another tool definition; it was not run',
};

export type RunOutcome = 'skipped' | 'completed' | 'in_review' | 'awaiting_approval' | 'failed' | 'cancelled' | 'lease_lost' | 'requeued' | 'parked';

const SYSTEM = (offline: boolean) =>
  'You are an agent working for an employee through Steward, which checks every action you take against the company policy. ' +
  'Use the tools offered; a tool result marked as an error may be a refusal by policy — do not try to work around it.' +
  (offline ? ' (offline demo model)' : '');

/**
 * The most input tokens a turn's request can count: its text in UTF-8 bytes (a token of text covers
 * at least one byte), plus room for what the API adds around tool definitions. An upper bound, so
 * that a reservation made from it is never short (Claude's tokens average 3–4 characters of English).
 */
function inputTokensAtMost(system: string, messages: MessageParam[], tools: Tool[]): number {
  return Buffer.byteLength(system) + Buffer.byteLength(JSON.stringify(messages)) + Buffer.byteLength(JSON.stringify(tools)) + 1000;
}

export const toolNameOf = (connector: string, tool: string) => `${connector}__${tool.replace(/[^a-zA-Z0-9_-]/g, '_')}`.slice(0, 64);

/**
 * The names a model or an MCP client sees for the tools of several connectors: `toolNameOf`, made
 * unique. Where two tools would get the same name (characters replaced by "_", or cut at 64),
 * one whose name needed no change keeps it, else the first by connector and tool name, and the
 * others get a suffix from a digest of their connector and tool — so that a name never stands for two tools (before, the model was
 * offered both under one name, and a call ran whichever was found first). Keyed `connector\ntool`.
 */
export function exposedToolNames(manifests: Record<string, ConnectorManifest>): Map<string, string> {
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  // Tools whose name needs no change first: a tool added upstream never takes the name of one that kept its own.
  const changed = (c: string, t: string) => toolNameOf(c, t) !== `${c}__${t}`;
  const pairs = Object.keys(manifests)
    .sort(byName)
    .flatMap((c) => manifests[c]!.tools.map((t) => t.name).sort(byName).map((t) => [c, t] as const))
    .sort(([c1, t1], [c2, t2]) => Number(changed(c1, t1)) - Number(changed(c2, t2)));
  const names = new Map<string, string>();
  const used = new Set<string>();
  for (const [connector, tool] of pairs) {
    let name = toolNameOf(connector, tool);
    for (let i = 0; used.has(name); i++) name = `${toolNameOf(connector, tool).slice(0, 55)}_${sha256(`${connector}\n${tool}\n${i}`).slice(0, 8)}`;
    used.add(name);
    names.set(`${connector}\n${tool}`, name);
  }
  return names;
}

const MAX_RESULT_CHARS = 20_000;
const policiesDefault = new PolicySource();
const defaultHolder = `${hostname()}:${process.pid}:${newId().slice(-8)}`;

export async function runTask(deps: AgentDeps, job: RunTaskPayload): Promise<RunOutcome> {
  // One holder per run, not per process: a second delivery of the same job to this process (a
  // stalled job handed out again while Redis was away) finds the lease taken and does nothing.
  const holder = deps.holder ?? `${defaultHolder}:${newId().slice(-12)}`;
  const taken = await acquireLease(deps.ds, job, holder, deps.leaseSeconds, { limit: deps.maxRunningPerOrg ?? 20, keys: deps.keys });
  // Fairness between the orgs sharing the workers: this one runs as many tasks as it may. Parked, the
  // task holds no worker and no job; the workers' timer gives it one when a place frees (releaseParked).
  if (taken === 'busy') return 'parked';
  if (!taken) return 'skipped';
  const lease: Lease = { orgId: job.orgId, taskId: job.taskId, epoch: job.epoch, userId: taken.userId, holder };
  const log = deps.log.child({ orgId: job.orgId, taskId: job.taskId, epoch: job.epoch });
  const abort = new AbortController();
  let lost = false;
  const renew = setInterval(() => {
    renewLease(deps.ds, lease, deps.leaseSeconds)
      .then((ok) => {
        if (!ok) {
          lost = true;
          abort.abort();
        }
      })
      .catch((err) => log.warn({ err }, 'lease renewal failed'));
  }, Math.max(500, (deps.leaseSeconds * 1000) / 3));
  const hub = new ConnectorHub({ timeoutMs: 30_000, maxResultBytes: 1 << 20 });
  try {
    return await loop(deps, lease, hub, abort.signal, log);
  } catch (err) {
    if (err instanceof LeaseLost || lost) {
      log.warn('lease lost: this worker stops and writes nothing more');
      return 'lease_lost';
    }
    // A run that fails the same way every time (a call the database refuses, say) would be taken up
    // again for ever, holding one of its org's running places: counted, and past MAX_RUN_ERRORS the
    // task fails instead. A database that cannot be reached is not counted (it passes).
    if (!databaseUnavailable(err) && !TRANSIENT_SQLSTATES.has(sqlState(err) ?? '')) {
      const stopped = await failAfterRunErrors(deps, lease).catch(() => false);
      log.error({ err, stopped }, stopped ? 'the task failed again: stopped' : 'the task run failed');
      if (stopped) return (await taskState(deps, lease)) === 'cancelled' ? 'cancelled' : 'failed';
    }
    // The job's retry is another run: it may take the task over at once (same epoch).
    await releaseLease(deps.ds, lease).catch(() => undefined);
    throw err;
  } finally {
    clearInterval(renew);
    await hub.close().catch(() => undefined);
  }
}

/** The most output a turn asks for, doubled room included (the largest ANTHROPIC_MAX_TOKENS). */
const MAX_OUTPUT_TOKENS = 64_000;

/** Runs of one task that may end in an error before it is failed (a job tries 3 times per epoch). */
export const MAX_RUN_ERRORS = 6;

/** Errors of a database that answers but could not do this now (serialization, deadlock, lock or statement time limit): the run may pass next time. */
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '55P03', '57014']);
const sqlState = (err: unknown): string | undefined => (err as { driverError?: { code?: string } })?.driverError?.code ?? (err as { code?: string })?.code;

/**
 * Counts a run that ended in an error (the count starts again at every answered model turn); at
 * MAX_RUN_ERRORS in a row fails the task (true). A task whose member asked to cancel it is cancelled
 * instead, at once (its next run could fail the same way before it saw the request). Fenced: a lost
 * lease counts nothing.
 */
async function failAfterRunErrors(deps: AgentDeps, lease: Lease): Promise<boolean> {
  const { orgId, taskId } = lease;
  return fenced(deps.ds, lease, async (em, flags) => {
    if (flags.cancelRequested) {
      await em.query(`UPDATE tasks SET state = 'cancelled', lease_holder = NULL, lease_until = NULL, reserved_micros = 0, finished_at = now() WHERE org_id = $1 AND id = $2`, [orgId, taskId]);
      await voidOpenApprovals(em, deps.keyring, orgId, taskId, 'cancelled');
      await appendEvents(em, deps.keys, orgId, taskId, [{ kind: 'state', data: { state: 'cancelled' } }]);
      return true;
    }
    const [{ run_errors: n }]: { run_errors: number }[] = await em.query(`WITH u AS (UPDATE tasks SET run_errors = run_errors + 1 WHERE org_id = $1 AND id = $2 RETURNING run_errors) SELECT run_errors FROM u`, [orgId, taskId]);
    if (n < MAX_RUN_ERRORS) return false;
    // What went wrong stays in the worker's log: its text may hold what the task handled.
    const error = { code: 'internal_error', message: `the task's runs ended in an error ${n} times in a row; it was stopped (the worker's log says why)` };
    await em.query(
      `UPDATE tasks SET state = 'failed', error_code = $3, error_message = $4, lease_holder = NULL, lease_until = NULL, reserved_micros = 0, finished_at = now() WHERE org_id = $1 AND id = $2`,
      [orgId, taskId, error.code, error.message],
    );
    await voidOpenApprovals(em, deps.keyring, orgId, taskId, 'failed');
    await appendEvents(em, deps.keys, orgId, taskId, [{ kind: 'error', data: error }, { kind: 'state', data: { state: 'failed' } }]);
    return true;
  });
}

async function taskState(deps: AgentDeps, lease: Lease): Promise<string | undefined> {
  const [row]: { state: string }[] = await inOrg(deps.ds, { orgId: lease.orgId }, (em) => em.query(`SELECT state FROM tasks WHERE org_id = $1 AND id = $2`, [lease.orgId, lease.taskId]));
  return row?.state;
}

async function loop(deps: AgentDeps, lease: Lease, hub: ConnectorHub, signal: AbortSignal, log: Logger): Promise<RunOutcome> {
  const { ds, keys } = deps;
  const { orgId, taskId, userId } = lease;
  const policies = deps.policies ?? policiesDefault;
  const [task] = await inOrg(ds, { orgId }, (em) =>
    em.query(
      `SELECT t.*, w.model_tier AS workflow_tier, o.model_tier AS org_tier, o.agents_paused_at IS NOT NULL AS org_paused
         FROM tasks t JOIN orgs o ON o.id = t.org_id LEFT JOIN workflows w ON w.org_id = t.org_id AND w.key = t.workflow
        WHERE t.org_id = $1 AND t.id = $2`,
      [orgId, taskId],
    ),
  );

  const model = routeModel(deps.model, { workflow: task.workflow, workflowTier: task.workflow_tier, preference: task.model_preference, orgTier: task.org_tier });
  const workflow: string | null = task.workflow;
  let tainted: boolean = task.tainted;
  let labels: string[] = task.labels ?? [];

  // The org's allowed hosts as the connectors are built with them (their connections are checked
  // against these): a change, such as a host taken off the list, ends this run at its next turn, and
  // the next run builds them again.
  const allowlistNow = async () => JSON.stringify((await deps.connectors?.egress?.(orgId))?.orgAllowHosts ?? []);
  const builtWith = deps.connectors?.egress ? await allowlistNow() : null;
  // The same for what an admin decides of the task's connectors (read before they are built): a tool
  // held, remapped to another action type or approved anew, a connector moved or uninstalled ends
  // this run at its next turn, and the next run is built on what was decided.
  const connectorsNow = async () =>
    (
      (await inOrg(ds, { orgId }, (em) =>
        em.query(
          `SELECT md5(coalesce(string_agg(c.id::text || '|' || coalesce(c.url, '') || '|' || c.auth::text || '|' || coalesce((
                    SELECT string_agg(t.name || '/' || t.status || '/' || coalesce(t.approved_hash, '') || '/' || t.action || '/' || coalesce(t.extract::text, ''), ',' ORDER BY t.name)
                      FROM connector_tools t WHERE t.org_id = c.org_id AND t.connector_id = c.id), ''), ';' ORDER BY c.id), '')) AS print
             FROM connectors c WHERE c.org_id = $1 AND c.name = ANY($2)`,
          [orgId, task.connectors],
        ),
      )) as { print: string }[]
    )[0]!.print;
  const decidedWith = await connectorsNow();
  // Connectors: the built-in ones run in process, the workspace a folder per org and user.
  const { manifests, targets, connectors } = await addTaskConnectors(hub, { ds, dataDir: deps.dataDir, log, ...deps.connectors }, { orgId, userId, taskId }, task.connectors as string[]);
  // A task has no MCP client to relay an upstream's sampling or elicitation to: each one is refused and audited.
  refuseServerRequests(hub, connectors, { ds, keyring: deps.keyring, orgId, taskId, actor: { type: 'agent_task', id: taskId }, client: 'worker', where: 'during an agent task' });
  // Test hooks: extra built-in connectors (the fault tests' ledger), given the task's lease.
  for (const c of task.connectors as string[]) {
    if (deps.builtins?.[c] && !manifests[c]) {
      await hub.addBuiltin(c, deps.builtins[c].server({ lease, folder: join(deps.dataDir, 'workspaces', orgId, userId) }));
      manifests[c] = deps.builtins[c].manifest;
    }
  }
  // Outcomes are written in batches after each call; flushed before the task's state moves on.
  const outcomes = new OutcomeWriter(ds, deps.keyring, (err) => log.error({ err: (err as Error).message, taskId }, 'writing action outcomes failed'));
  const gate: GateDeps = { ds, redis: deps.redis, ...(deps.redisPrefix ? { redisPrefix: deps.redisPrefix } : {}), keyring: deps.keyring, policies, hub, manifest: (id) => manifests[id], outcomes, ...(deps.observer ? { observer: deps.observer } : {}), ...(deps.connectors?.broker ? { credentials: { broker: deps.connectors.broker, target: (id: string) => targets[id] } } : {}) };

  // Tools offered: the connectors' tools minus those the active policy makes Forbidden for this user,
  // decided again before every model turn on the task's taint and labels as they are then (a task
  // that read outside mail is no longer offered what the policy forbids a tainted task).
  let { tools, byName } = await offeredTools(deps, policies, orgId, userId, workflow, manifests, tainted, labels);

  let t: Transcript;
  if (task.transcript_sealed) {
    t = JSON.parse((await openSecret(keys, { sealed: task.transcript_sealed, wrappedKey: task.transcript_key }, transcriptAad(orgId, taskId))).toString('utf8'));
  } else {
    t = { v: 1, messages: [{ role: 'user', content: await openPrompt(keys, orgId, taskId, task) }], steps: {}, continuations: 0 };
  }
  // A model call that a crashed worker (or one that lost its lease) left `executing` has no known
  // outcome: a new call is made. It may have been answered and billed, so it is booked at the most
  // its turn could cost — what was reserved for it, still on the task — as a lost attempt is.
  // (A tool call is handled when its claim answers `duplicate` below.)
  // (At every run's start: a run that died may be delivered again under the same epoch.)
  const lostMicros = await fenced(ds, lease, async (em) => {
      const [{ n }]: { n: number }[] = await em.query(
        `WITH u AS (UPDATE task_actions SET state = 'outcome_unknown', finished_at = now() WHERE org_id = $1 AND task_id = $2 AND action_type = 'model.invoke' AND state = 'executing' RETURNING id) SELECT count(*)::int AS n FROM u`,
        [orgId, taskId],
      );
      const spent = n > 0 ? Number(task.reserved_micros) : 0;
      if (spent > 0) {
        await em.query(`UPDATE tasks SET cost_micros = cost_micros + $3, reserved_micros = 0 WHERE org_id = $1 AND id = $2`, [orgId, taskId, spent]);
        await bookTurnCost(em, { orgId, taskId, userId }, { input_tokens: 0, output_tokens: 0 }, spent);
      }
      return spent;
    });
  // The deployment's ceilings as they are now (TASK_MAX_STEPS, TASK_BUDGET_USD): a task written under higher ones (queued, or fired by an older schedule) runs under these.
  if (deps.limits) task.max_steps = Math.min(task.max_steps, deps.limits.maxSteps);
  const budget = Math.min(task.budget_micros === null ? Infinity : Number(task.budget_micros), deps.limits?.budgetMicros ?? Infinity);
  let cost = Number(task.cost_micros) + lostMicros;
  let step: number = task.step;
  // Waits for the model in a row (a turn that the model answered starts the count again).
  let modelWaits: number = task.model_waits;

  /** `turn`: what a turn cut short already did (its actions' events, the steps it took), written with the end. */
  const finish = async (to: 'completed' | 'in_review' | 'failed' | 'cancelled' | 'awaiting_approval', error?: { code: string; message: string }, output?: string, turn?: { events: TaskEvent[]; step: number }) => {
    await outcomes.flush().catch((err) => log.error({ err: (err as Error).message, taskId }, 'writing action outcomes failed'));
    const state = await fenced(ds, lease, async (em, flags) => {
      // Cancelled while this turn ran: the task does not go on to wait for a person.
      const state = to === 'awaiting_approval' && flags.cancelRequested ? 'cancelled' : to;
      await em.query(
        `UPDATE tasks SET state = $3::varchar, error_code = $4, error_message = $5, lease_holder = NULL, lease_until = NULL, tainted = $6, labels = $7, reserved_micros = 0,
                finished_at = CASE WHEN $3::varchar IN ('completed', 'in_review', 'failed', 'cancelled') THEN now() END
          WHERE org_id = $1 AND id = $2`,
        [orgId, taskId, state, error?.code ?? null, error?.message.slice(0, 1000) ?? null, tainted, labels],
      );
      // A task that ends leaves no approval to decide: one still pending (a call of the turn that a
      // Forbidden one stopped, say) is voided, so that nobody approves what will never run.
      if (state !== 'awaiting_approval') await voidOpenApprovals(em, deps.keyring, orgId, taskId, state);
      if (turn) await em.query(`UPDATE tasks SET step = greatest(step, $3) WHERE org_id = $1 AND id = $2`, [orgId, taskId, turn.step]);
      const events: TaskEvent[] = [...(turn?.events ?? [])];
      if (output !== undefined) events.push({ kind: 'output', data: {}, secret: output });
      if (error) events.push({ kind: 'error', data: error });
      events.push({ kind: 'state', data: { state } });
      await appendEvents(em, keys, orgId, taskId, events);
      // A person may have decided while this turn was still running (the approval is written with
      // the claim, an outcome unknown is opened as it happens; their resume found the task running):
      // then nobody else re-enqueues the task — it goes back to a worker now. So it does when nothing
      // is left pending at all: a task never waits for a decision nobody is asked for.
      if (state === 'awaiting_approval') {
        const [{ decided, pending }]: { decided: boolean; pending: boolean }[] = await em.query(
          `SELECT EXISTS (SELECT 1 FROM approvals a JOIN task_actions c ON c.org_id = a.org_id AND c.id = a.action_id
                           WHERE a.org_id = $1 AND a.task_id = $2 AND a.kind = 'action' AND a.state <> 'pending' AND c.state = 'awaiting_approval') AS decided,
                  EXISTS (SELECT 1 FROM approvals a WHERE a.org_id = $1 AND a.task_id = $2 AND a.state = 'pending') AS pending`,
          [orgId, taskId],
        );
        if (decided || !pending) await resumeWaitingTask(em, keys, orgId, taskId, decided ? 'decided_while_running' : 'nothing_pending');
      }
      return state;
    });
    log.info({ state, error: error?.code }, 'task stopped');
    return state;
  };

  /** Back to the queue, to run again (a new epoch) once the delay passed: the transcript is already persisted. */
  const waitForModel = async (err: ModelUnavailable): Promise<RunOutcome> => {
    const r = deps.model.requeue ?? {};
    const delayMs = Math.min(r.maxDelayMs ?? 480_000, (r.baseDelayMs ?? 30_000) * 2 ** modelWaits);
    const notBefore = new Date(Date.now() + delayMs);
    await outcomes.flush().catch((e) => log.error({ err: (e as Error).message, taskId }, 'writing action outcomes failed'));
    const epoch = await fenced(ds, lease, async (em, flags) => {
      if (flags.cancelRequested) return null;
      const [row]: { epoch: number }[] = await em.query(
        `WITH u AS (UPDATE tasks SET epoch = epoch + 1, state = 'queued', lease_holder = NULL, lease_until = NULL, enqueued_at = NULL, reserved_micros = 0,
                                     model_waits = $5, tainted = $3, labels = $4, updated_at = now()
                     WHERE org_id = $1 AND id = $2 RETURNING epoch) SELECT * FROM u`,
        [orgId, taskId, tainted, labels, modelWaits + 1],
      );
      await enqueueInOutbox(em, orgId, taskId, row!.epoch, notBefore);
      await appendEvents(em, keys, orgId, taskId, [{ kind: 'requeued', data: { epoch: row!.epoch, reason: 'model_unavailable', status: err.status, retryAt: notBefore.toISOString(), wait: modelWaits + 1 } }]);
      return row!.epoch;
    });
    if (epoch === null) return finish('cancelled');
    log.warn({ status: err.status, retryAt: notBefore.toISOString(), epoch }, 'model unavailable: the task tries again later');
    return 'requeued';
  };

  // The kill switch: a task that comes to run while agents are paused (a new one, or one resumed
  // after its approval) does nothing and goes back to the queue until they resume — its approved
  // action is kept, not refused. A task already running stops at its next action instead (the gate).
  const waitForResume = (): Promise<RunOutcome> => requeue('paused', new Date(Date.now() + (deps.pausedRecheckMs ?? 60_000)));
  /** Back to the queue under a new epoch (this run ends; the task's state and transcript are kept). */
  const requeue = async (reason: 'paused' | 'connectors_changed' | 'worker_stopping', notBefore: Date): Promise<RunOutcome> => {
    const epoch = await fenced(ds, lease, async (em, flags) => {
      if (flags.cancelRequested) return null;
      const [row]: { epoch: number }[] = await em.query(
        `WITH u AS (UPDATE tasks SET epoch = epoch + 1, state = 'queued', lease_holder = NULL, lease_until = NULL, enqueued_at = NULL, reserved_micros = 0, updated_at = now()
                     WHERE org_id = $1 AND id = $2 RETURNING epoch) SELECT * FROM u`,
        [orgId, taskId],
      );
      await enqueueInOutbox(em, orgId, taskId, row!.epoch, notBefore);
      await appendEvents(em, keys, orgId, taskId, [{ kind: 'requeued', data: { epoch: row!.epoch, reason, retryAt: notBefore.toISOString() } }]);
      return row!.epoch;
    });
    if (epoch === null) return finish('cancelled');
    log.info(
      { retryAt: notBefore.toISOString(), epoch, reason },
      reason === 'paused' ? 'agents are paused: the task waits for the resume' : reason === 'worker_stopping' ? 'the worker is stopping: the task goes back to the queue for another' : "the task's connectors changed: it runs again with them built anew",
    );
    return 'requeued';
  };
  if (task.org_paused) return waitForResume();

  /** Seals and writes the transcript under the epoch check (with whatever else this step writes). */
  const persist = async (extra?: (em: EntityManager) => Promise<void>) =>
    fenced(ds, lease, async (em, flags) => {
      const sealed = await sealSecret(keys, JSON.stringify(t), transcriptAad(orgId, taskId));
      await em.query(`UPDATE tasks SET transcript_sealed = $3, transcript_key = $4, tainted = $5, labels = $6 WHERE org_id = $1 AND id = $2`, [orgId, taskId, sealed.sealed, sealed.wrappedKey, tainted, labels]);
      await extra?.(em);
      return flags;
    });

  /** The end: in review when Batched writes ran in their reversible form (a reviewer accepts or reverts them; Batched reads are listed with them, and leave nothing to decide on their own). */
  const end = async (said: string): Promise<RunOutcome> => {
    await outcomes.flush();
    const [{ n }] = await inOrg(ds, { orgId }, (em) =>
      em.query(`SELECT count(*)::int AS n FROM task_actions WHERE org_id = $1 AND task_id = $2 AND level = 'batched' AND state = 'succeeded' AND reversible`, [orgId, taskId]),
    );
    return finish(n > 0 ? 'in_review' : 'completed', undefined, said);
  };

  // A resumed task whose last message is the model's final answer (the run that wrote it stopped
  // before it finished the task): it finishes with that answer, without asking the model again.
  if (t.answered) {
    const last = t.messages[t.messages.length - 1];
    if (last?.role === 'assistant' && !(Array.isArray(last.content) && last.content.some((b) => b.type === 'tool_use'))) {
      // Cancelled meanwhile (its member asked while no worker held it): cancelled, as at any turn.
      if ((await fenced(ds, lease, async (_em, f) => f)).cancelRequested) return finish('cancelled');
      return end(typeof last.content === 'string' ? last.content : last.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n'));
    }
  }

  // A resumed task whose last message is the model's tool_use: its results come first (claims
  // already made answer `duplicate`, never run again).
  for (let turn = 0; ; turn++) {
    if (turn > 0 && builtWith !== null && (await allowlistNow()) !== builtWith) return requeue('connectors_changed', new Date());
    if (turn > 0 && (await connectorsNow()) !== decidedWith) return requeue('connectors_changed', new Date());
    // The worker is shutting down (a deploy): the task goes back to the queue between two turns (its
    // transcript written, nothing of a turn cut), for another worker, instead of holding the shutdown.
    if (turn > 0 && deps.stopping?.()) return requeue('worker_stopping', new Date());
    const last = t.messages[t.messages.length - 1];
    const pendingUses = last?.role === 'assistant' && Array.isArray(last.content) ? last.content.filter((b) => b.type === 'tool_use') : [];
    if (pendingUses.length) {
      const r = await runTools(pendingUses as ToolUse[]);
      if (r) return r;
      continue;
    }

    const flags = await fenced(ds, lease, async (_em, f) => f);
    if (flags.cancelRequested) return finish('cancelled');
    if (step >= task.max_steps) return finish('failed', { code: 'step_limit', message: `the task reached its step limit (${task.max_steps})` });
    if (turn > 0) {
      const before = tools.map((x) => x.name).join('\n');
      ({ tools, byName } = await offeredTools(deps, policies, orgId, userId, workflow, manifests, tainted, labels));
      if (tools.map((x) => x.name).join('\n') !== before) log.info({ taskId, tainted, labels, offered: tools.length }, 'the tools offered changed (taint, labels or policy)');
    }
    // Budgets are never overspent: the turn may cost at most its input as it stands and the whole
    // max_tokens of output; it runs only if that fits the task's budget and, reserved under the
    // org's lock, the org's and the user's monthly budgets.
    // Twice the room, within the most any deployment may configure (ANTHROPIC_MAX_TOKENS ≤ 64,000).
    const maxTokens = t.roomier ? Math.min(deps.model.maxTokens * 2, MAX_OUTPUT_TOKENS) : deps.model.maxTokens;
    const turnMax = costMicros(model, deps.model.offline, { input_tokens: inputTokensAtMost(SYSTEM(deps.model.offline), t.messages, tools), output_tokens: maxTokens });
    if (cost + turnMax > budget) {
      const why = cost >= budget ? 'reached its budget' : `has no room in its budget for another model turn (up to ${(turnMax / 1e6).toFixed(2)} USD; ${(cost / 1e6).toFixed(2)} spent)`;
      return finish('failed', { code: 'budget_exceeded', message: `the task ${why} (${(budget / 1e6).toFixed(2)} USD)` });
    }
    const monthly = await inOrg(ds, { orgId }, (em) => reserveTurn(em, orgId, userId, taskId, turnMax));
    if (monthly) return finish('failed', { code: 'monthly_budget_exceeded', message: budgetMessage(monthly) });
    await deps.beforeTurn?.(lease, turn);

    // model.invoke: decided and written ahead (claim, decision, audit event by digest and size);
    // what is sent is redacted where the decision says so (the sealed transcript keeps the original).
    const invoke = await writeAheadModelInvoke(deps, policies, lease, workflow, tainted, labels, { model, system: SYSTEM(deps.model.offline), messages: t.messages, tools });
    step = invoke.step;
    // The code says why (forbidden, or the kill switch, or the member's suspension).
    if (invoke.refused) return finish('failed', { code: invoke.refusal ?? 'forbidden', message: `model.invoke refused: ${invoke.reason}` });

    let message: Message;
    const started = Date.now();
    // An attempt that may have been generated (and billed) without an answer reaching us is counted at
    // the most the turn could cost, and not tried again in this run: the task goes back to the queue
    // (model_unavailable, holding no worker), and its next turn is checked against the budgets with it
    // booked — so a model that keeps timing out never spends past them.
    let lost = 0;
    try {
      message = await new ModelClient({ ...deps.model, maxTokens }).create(
        { model, system: SYSTEM(deps.model.offline), messages: invoke.messages, tools },
        signal,
        (status, delayMs) => log.info({ status, delayMs }, 'model busy: retrying'),
        () => lost++,
        false,
      );
    } catch (err) {
      if (signal.aborted) throw new LeaseLost();
      // The lost attempts' cost, the turn's reservation released and the call's outcome in one commit: a
      // run that dies in between leaves the call `executing`, booked once when the task runs again.
      const spent = lost * turnMax;
      cost += spent;
      await fenced(ds, lease, async (em) => {
        if (spent) {
          await em.query(`UPDATE tasks SET cost_micros = cost_micros + $3, reserved_micros = 0 WHERE org_id = $1 AND id = $2`, [orgId, taskId, spent]);
          await bookTurnCost(em, { orgId, taskId, userId }, { input_tokens: 0, output_tokens: 0 }, spent);
        }
        await finishModelInvokeIn(em, deps, lease, invoke.actionId, 'failed', null, Date.now() - started);
      });
      if (err instanceof ModelUnavailable) {
        // Still unavailable after the retries: the task tries again later (a bounded number of
        // times), holding no worker meanwhile; a fault that will not pass ends it at once.
        if (err.transient && modelWaits < (deps.model.requeue?.times ?? 5)) return waitForModel(err);
        // The conversation no longer fits the model's context window: said as such (the model is there;
        // the task asked more of it than one conversation holds), not as the model being unavailable.
        if (err.status === 400 && /prompt is too long|context (window|length)|too many (input )?tokens/i.test(err.message)) {
          return finish('failed', { code: 'context_exceeded', message: `the task's conversation no longer fits the model's context window (${err.message.slice(0, 200)}): start a new task with a narrower request, or split it` });
        }
        return finish('failed', { code: 'model_unavailable', message: err.message });
      }
      throw err;
    }
    const usage = { input_tokens: message.usage.input_tokens, output_tokens: message.usage.output_tokens };
    // The answer's own cost, and the most each lost attempt before it could have cost.
    const turnCost = costMicros(model, deps.model.offline, usage) + lost * turnMax;
    cost += turnCost;
    modelWaits = 0;
    const said = message.content.filter((b) => b.type === 'text').map((b) => b.text).join('\n');
    const uses = message.content.filter((b) => b.type === 'tool_use') as ToolUse[];
    // A tool_use cut by max_tokens (its arguments may be cut too) never enters the transcript: not
    // even for a moment, since a resume runs the tool_use a transcript ends with. The turn is asked
    // again once with twice the room (in the same commit as its cost), then the task fails.
    const cut = message.stop_reason === 'max_tokens' && uses.length > 0;
    const roomierBefore = t.roomier === true;
    // Cut text is continued (twice at most): the ask to go on is written with the cut text, so that a
    // resume never takes a transcript ending in the model's text for a finished answer that is not.
    const continued = message.stop_reason === 'max_tokens' && uses.length === 0 && t.continuations < 2;
    // Cut text past its continuations fails the task: it is not written as if it were an answer.
    const failsCut = message.stop_reason === 'max_tokens' && uses.length === 0 && !continued;
    if (cut) t.roomier = true;
    else if (!failsCut) {
      // The doubled room was for that one turn: the next ones (and their reservations) are as configured.
      delete t.roomier;
      t.messages.push({ role: 'assistant', content: message.content as MessageParam['content'] });
      // Fix the step of each tool_use before anything runs (a resume reuses them).
      for (const u of uses) t.steps[u.id] = ++step;
      if (continued) {
        t.continuations++;
        t.messages.push({ role: 'user', content: 'Continue exactly where you stopped.' });
      }
      if (uses.length === 0 && message.stop_reason !== 'max_tokens') t.answered = true;
    }
    const after = await persist(async (em) => {
      await em.query(
        `UPDATE tasks SET model = $3, turns = turns + 1, step = $4, input_tokens = input_tokens + $5, output_tokens = output_tokens + $6, cost_micros = cost_micros + $7, reserved_micros = 0, model_waits = 0, run_errors = 0 WHERE org_id = $1 AND id = $2`,
        [orgId, taskId, model, step, usage.input_tokens, usage.output_tokens, turnCost],
      );
      // Booked to the month it was spent in (monthly budgets and usage read this).
      await bookTurnCost(em, { orgId, taskId, userId }, usage, turnCost);
      await finishModelInvokeIn(em, deps, lease, invoke.actionId, 'succeeded', sha256(JSON.stringify(message.content)), Date.now() - started);
      await appendEvents(em, keys, orgId, taskId, [
        { kind: 'model', data: { model, offline: deps.model.offline, stopReason: message.stop_reason, inputTokens: usage.input_tokens, outputTokens: usage.output_tokens, costMicros: turnCost, toolUses: uses.length, ...(lost ? { lostAttempts: lost } : {}) }, ...(said ? { secret: said } : {}) },
      ]);
    });
    if (after.cancelRequested) return finish('cancelled');

    if (message.stop_reason === 'max_tokens') {
      // A cut tool_use cannot run: the turn was asked again once with twice the room for its output
      // (its cut answer dropped; nothing of it ran). Cut text is continued (twice at most). Past
      // that the task fails clearly.
      if (cut && !roomierBefore) continue;
      if (!continued) return finish('failed', { code: 'max_tokens', message: 'the model hit max_tokens before finishing its answer' });
      continue;
    }
    if (uses.length) {
      const r = await runTools(uses);
      if (r) return r;
      continue;
    }
    return end(said);
  }

  /** Gates every tool_use of one turn in order; all results go back in one user message. */
  async function runTools(uses: ToolUse[]): Promise<RunOutcome | null> {
    const results: ToolResultBlock[] = [];
    const events: TaskEvent[] = [];
    let stop: { state: 'failed' | 'awaiting_approval'; error?: { code: string; message: string } } | null = null;
    for (const u of uses) {
      if (!t.steps[u.id]) t.steps[u.id] = ++step;
      const held = t.held?.[u.id];
      if (held) {
        results.push(held);
        continue;
      }
      // The step limit holds within a turn too: uses past it are not run, and the task stops.
      if (t.steps[u.id]! > task.max_steps) {
        results.push({ type: 'tool_result', tool_use_id: u.id, is_error: true, content: `Not run: the task reached its step limit (${task.max_steps}).` });
        stop = { state: 'failed', error: { code: 'step_limit', message: `the task reached its step limit (${task.max_steps})` } };
        break;
      }
      const target = byName.get(u.name);
      if (!target) {
        results.push({ type: 'tool_result', tool_use_id: u.id, is_error: true, content: `No tool named ${u.name} is available to this task.` });
        continue;
      }
      // The epoch is checked right before the claim is written (the claim itself is unique per task step).
      const flags = await fenced(ds, lease, async (_em, f) => f);
      // Cancelled mid-turn: what the turn already did stays on the task's record (the audit trail has it too).
      if (flags.cancelRequested) return finish('cancelled', undefined, undefined, { events, step });
      const r: GateResult = await gateAction(gate, {
        // The claim itself checks the lease too (in its transaction): no step runs on two workers.
        fence: { epoch: lease.epoch, holder: lease.holder },
        orgId,
        userId,
        claim: { taskId, step: t.steps[u.id] },
        connector: target.connector,
        tool: target.tool,
        args: (u.input ?? {}) as Record<string, unknown>,
        tainted,
        labels,
        workflow,
        client: 'worker',
      }).catch((err) => {
        throw err instanceof ClaimFenced ? new LeaseLost() : err;
      });
      const ev: Record<string, unknown> = { step: t.steps[u.id], connector: target.connector, tool: target.tool, status: r.status, actionId: r.actionId, ...(r.status !== 'duplicate' ? { level: r.level, reason: r.reason, ruleIds: r.ruleIds } : { state: r.state }) };
      events.push({ kind: 'action', data: ev });
      switch (r.status) {
        case 'executed': {
          const got = r.result.labels ?? [];
          if (got.length) labels = [...new Set([...labels, ...got])].sort();
          if (got.includes('untrusted') || got.includes('external')) tainted = true;
          results.push({ type: 'tool_result', tool_use_id: u.id, content: (r.result.text || JSON.stringify(r.result.structuredContent ?? {})).slice(0, MAX_RESULT_CHARS) });
          break;
        }
        case 'refused':
          // Arguments that do not fit the tool's approved definition: told why, the model may call it again correctly.
          // (What did not fit goes to the model alone, in the sealed transcript: the task's events keep the reason.)
          if (r.refusal === 'bad_arguments') {
            results.push({ type: 'tool_result', tool_use_id: u.id, is_error: true, content: `Refused by Steward (bad_arguments): ${r.reason}${r.detail ? ` What does not fit: ${r.detail}.` : ''}` });
            break;
          }
          if (REFUSALS_TOLD[r.refusal]) {
            results.push({ type: 'tool_result', tool_use_id: u.id, is_error: true, content: `Refused by Steward (${r.refusal}): ${REFUSALS_TOLD[r.refusal]}.` });
            break;
          }
          results.push({ type: 'tool_result', tool_use_id: u.id, is_error: true, content: `Refused by Steward (${r.refusal}): ${r.reason}` });
          // It stops the task even when an earlier call of this turn waits for a person (that wait is voided).
          stop = { state: 'failed', error: { code: r.refusal, message: `${target.tool} refused: ${r.reason}` } };
          break;
        case 'awaiting_approval':
          stop ??= { state: 'awaiting_approval' };
          break;
        case 'failed':
          results.push({ type: 'tool_result', tool_use_id: u.id, is_error: true, content: `The tool failed (${r.error.code}): ${r.error.message}` });
          // A remote MCP server's error carries its own text to the model, as a result would: untrusted content, the task is tainted.
          if (manifests[target.connector]?.runtime.kind === 'remote') {
            tainted = true;
            if (!labels.includes('untrusted')) labels = [...labels, 'untrusted'].sort();
          }
          break;
        case 'outcome_unknown':
          // It may have acted: never run again, not told as failed; the task waits for a person to settle it.
          if (!r.approvalOpened) await fenced(ds, lease, (em) => openOutcomeUnknown(em, deps.keyring, { orgId, actionId: r.actionId, taskId, client: 'worker', ambiguous: true }));
          events.push({ kind: 'action', data: { step: t.steps[u.id], connector: target.connector, tool: target.tool, status: 'outcome_unknown', actionId: r.actionId, error: r.error.code } });
          stop ??= { state: 'awaiting_approval' };
          break;
        case 'duplicate':
          if (r.state === 'executing') {
            // Claimed before a crash, outcome never written: never re-run — a person settles it.
            await fenced(ds, lease, (em) => openOutcomeUnknown(em, deps.keyring, { orgId, actionId: r.actionId, taskId, client: 'worker' }));
            events.push({ kind: 'action', data: { step: t.steps[u.id], connector: target.connector, tool: target.tool, status: 'outcome_unknown', actionId: r.actionId } });
            stop ??= { state: 'awaiting_approval' };
          } else if (r.state === 'awaiting_approval' || r.state === 'outcome_unknown') stop ??= { state: 'awaiting_approval' };
          else if (r.state === 'settled_done') results.push({ type: 'tool_result', tool_use_id: u.id, content: 'This action was interrupted; a person confirmed that it was carried out. Its result is not available.' });
          else if (r.state === 'settled_not_done') results.push({ type: 'tool_result', tool_use_id: u.id, is_error: true, content: 'This action was interrupted; a person confirmed that it was NOT carried out, and it was not run again.' });
          else results.push({ type: 'tool_result', tool_use_id: u.id, is_error: true, content: `This action was already taken (state: ${r.state}); its result is not available again.` });
          break;
      }
      // Forbidden stops the task at once: nothing after it in this turn runs.
      if (stop?.state === 'failed') break;
    }
    // Outcomes are committed before the transcript holds the calls' results (a crash between the
    // two would otherwise leave claims `executing` that a resume never claims again).
    await outcomes.flush();
    if (stop?.state === 'awaiting_approval') {
      // The results so far wait with the transcript; the approval flow resumes the task.
      t.held = Object.fromEntries(results.map((b) => [b.tool_use_id, b]));
      await persist(async (em) => {
        await em.query(`UPDATE tasks SET step = greatest(step, $3) WHERE org_id = $1 AND id = $2`, [orgId, taskId, step]);
        await appendEvents(em, keys, orgId, taskId, events);
      });
      return finish('awaiting_approval', stop.error);
    }
    t.messages.push({ role: 'user', content: results as MessageParam['content'] });
    delete t.held;
    await persist(async (em) => {
      await em.query(`UPDATE tasks SET step = greatest(step, $3) WHERE org_id = $1 AND id = $2`, [orgId, taskId, step]);
      await appendEvents(em, keys, orgId, taskId, events);
    });
    if (stop) return finish(stop.state as 'failed', stop.error);
    return null;
  }
}

/** Voids the approvals of a task that ended (pending, or approved and not yet used), each audited. */
export async function voidOpenApprovals(em: EntityManager, keyring: AuditKeyring, orgId: string, taskId: string, taskState: string): Promise<number> {
  const voided: { id: string; action_id: string; action_type: string }[] = await em.query(
    `WITH u AS (UPDATE approvals SET state = 'void', decided_at = now() WHERE org_id = $1 AND task_id = $2 AND kind = 'action' AND state IN ('pending', 'approved')
       RETURNING id, action_id, action_type) SELECT * FROM u`,
    [orgId, taskId],
  );
  for (const a of voided) {
    await recordEvent(em, keyring, {
      id: newId(),
      orgId,
      occurredAt: new Date(),
      actor: { type: 'system', id: null },
      action: 'approval.void',
      target: { type: 'Approval', id: a.id },
      outcome: 'success',
      task: taskId,
      approval: a.id,
      client: 'system',
      payload: { actionId: a.action_id, actionType: a.action_type, why: `the task ended (${taskState})` },
    });
  }
  return voided.length;
}

interface ToolUse {
  type: 'tool_use';
  id: string;
  name: string;
  input: unknown;
}
interface ToolResultBlock {
  type: 'tool_result';
  tool_use_id: string;
  content: string;
  is_error?: boolean;
}

async function offeredTools(deps: AgentDeps, policies: PolicySource, orgId: string, userId: string, workflow: string | null, manifests: Record<string, ConnectorManifest>, tainted: boolean, labels: string[]) {
  const { policy, groups, domains } = await inOrg(deps.ds, { orgId }, async (em) => ({
    policy: await policies.active(em, orgId),
    groups: ((await em.query('SELECT group_id FROM group_members WHERE org_id = $1 AND user_id = $2', [orgId, userId])) as { group_id: string }[]).map((g) => g.group_id),
    domains: ((await em.query('SELECT domains FROM orgs WHERE id = $1', [orgId]))[0]?.domains ?? []) as string[],
  }));
  const tools: Tool[] = [];
  const byName = new Map<string, { connector: string; tool: string }>();
  const names = exposedToolNames(manifests);
  for (const [connector, manifest] of Object.entries(manifests)) {
    for (const spec of manifest.tools) {
      const action = isActionType(spec.action) ? (spec.action as ActionType) : 'unknown';
      // Decided as its calls will be: on the task's taint and the labels of what it read.
      const level = policy ? decide(policy.compiled, { userId, groupIds: groups }, action, { connector, workflow: workflow ?? undefined, tainted, labels }, { domains }).level : 'forbidden';
      const name = names.get(`${connector}\n${spec.name}`)!;
      // Every tool of the task's connectors resolves (a call to one not offered — a step claimed
      // before the policy changed, say — still goes through the gate, which refuses it); only
      // those not Forbidden are offered.
      byName.set(name, { connector, tool: spec.name });
      if (level === 'forbidden') continue;
      tools.push({ name, description: spec.description.slice(0, 1000), input_schema: spec.inputSchema as Tool['input_schema'] });
    }
  }
  return { tools, byName };
}

async function writeAheadModelInvoke(
  deps: AgentDeps,
  policies: PolicySource,
  lease: Lease,
  workflow: string | null,
  tainted: boolean,
  taskLabels: string[],
  request: { model: string; system: string; messages: MessageParam[]; tools: Tool[] },
) {
  const { model } = request;
  const { orgId, taskId, userId } = lease;
  return fenced(deps.ds, lease, async (em) => {
    const [s]: { step: number }[] = await em.query(`WITH u AS (UPDATE tasks SET step = step + 1 WHERE org_id = $1 AND id = $2 RETURNING step) SELECT * FROM u`, [orgId, taskId]);
    const [gate] = await em.query(
      `SELECT o.agents_paused_at IS NOT NULL AS paused, m.status AS membership, o.domains, steward_workflow_permitted(o.id, $2, $3) AS workflow_permitted
         FROM orgs o LEFT JOIN memberships m ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1`,
      [orgId, userId, workflow],
    );
    const policy = await policies.active(em, orgId);
    const groups = ((await em.query('SELECT group_id FROM group_members WHERE org_id = $1 AND user_id = $2', [orgId, userId])) as { group_id: string }[]).map((g) => g.group_id);
    const domains: string[] = gate?.domains ?? [];
    // The conversation is labelled like any action's arguments ("pii" when personal data is in it).
    const labels = [...new Set([...taskLabels, ...labelArguments(request.messages, domains).labels])].sort();
    // Decided as the gate decides an action: the policy's rate limits reserved across processes
    // (Redis not answering counts each as exceeded), then the level, then the policy's own checks.
    const principal = { userId, groupIds: groups };
    // (Per step: a step whose transaction did not commit, taken again, is the same call.)
    const reservation = policy ? await reserve(deps.redis, orgId, userId, rateLimitsFor(policy.compiled, 'model.invoke'), new Date(), 250, deps.redisPrefix, `t:${taskId}:${s.step}`) : null;
    // A workflow the member may no longer run tasks under lends its rules to nothing (the call is refused below).
    const context = { connector: 'anthropic', workflow: (gate?.workflow_permitted && workflow) || undefined, tainted, labels, ...(reservation?.exceeded.length ? { rateExceeded: reservation.exceeded } : {}) };
    const d = policy
      ? decide(policy.compiled, principal, 'model.invoke', context, { domains })
      : { level: 'forbidden' as const, ruleIds: ['no_active_policy'], reason: 'Forbidden: the org has no active policy', obligations: [] as string[] };
    const authorized = policy ? authorize(policy.ability, toFacts(principal, 'model.invoke', context, { domains }), d.level) : false;
    // The policy's redact obligation: personal data is replaced in what is sent (counts audited, never values).
    const sent = d.obligations.includes('redact_personal_data') ? redactPersonalData(request.messages, domains) : { value: request.messages, redacted: [] };
    const payload = canonical({ ...request, messages: sent.value });
    // Watched: a model call cannot wait for a person (nothing would be left to decide once it is
    // approved), so it is refused and the task stops, saying why; Batched runs and is listed.
    // A task under a workflow the member may no longer run tasks under (its groups changed, or it was deleted) stops here.
    const refusal = gate?.paused ? 'paused' : gate?.membership !== 'active' ? 'suspended' : d.level === 'forbidden' ? 'forbidden' : !gate?.workflow_permitted ? 'workflow_not_permitted' : d.level === 'watched' ? 'watched' : !authorized ? 'not_authorized' : null;
    const actionId = newId();
    const digest = sha256(payload);
    const level = d.level === 'forbidden' ? 'forbidden' : d.level;
    await em.query(
      `INSERT INTO task_actions (org_id, id, task_id, step, user_id, connector, tool, action_type, level, rule_ids, reason, policy_id, policy_version, args_digest, tainted, labels, reversible, state, refusal, finished_at)
       VALUES ($1, $2, $3, $4, $5, 'anthropic', 'messages.create', 'model.invoke', $6, $7, $8, $9, $10, $11, $12, $13, false, $14::varchar, $15, CASE WHEN $14::varchar = 'refused' THEN now() END)`,
      [orgId, actionId, taskId, s.step, userId, level, d.ruleIds, d.reason.slice(0, 1000), policy?.id ?? null, policy?.version ?? null, digest, tainted, labels, refusal ? 'refused' : 'executing', refusal],
    );
    await recordEvent(em, deps.keyring, {
      id: newId(),
      orgId,
      occurredAt: new Date(),
      actor: { type: 'agent_task', id: taskId },
      action: 'model.invoke',
      target: { type: 'Model', id: null },
      level,
      decision: refusal ? 'denied' : 'allowed',
      outcome: refusal ? 'denied' : 'success',
      policyVersion: policy?.version ?? null,
      task: taskId,
      connector: 'anthropic',
      client: 'worker',
      // What is sent to the model, by digest and size only.
      payload: {
        actionId,
        model,
        offline: deps.model.offline,
        digest,
        bytes: Buffer.byteLength(payload),
        step: s.step,
        labels,
        obligations: d.obligations,
        redacted: sent.redacted,
        ...(reservation?.exceeded.length ? { rateLimited: reservation.exceeded, rateLimitsUnavailable: reservation.unavailable } : {}),
      },
    });
    const reason =
      refusal === 'forbidden' ? d.reason
      : refusal === 'workflow_not_permitted' ? `the member may not run tasks under the workflow "${workflow}" (it is open to members of its groups only, or it no longer exists)`
      : refusal === 'watched' ? `${d.reason} (a model call cannot wait for a person's approval, so it is not made)` : (refusal ?? '');
    return { step: s.step, actionId, refused: refusal !== null, refusal, reason, messages: sent.value };
  });
}

async function finishModelInvokeIn(em: EntityManager, _deps: AgentDeps, lease: Lease, actionId: string, state: 'succeeded' | 'failed', resultDigest: string | null, ms: number) {
  await em.query(`UPDATE task_actions SET state = $3, result_digest = $4, duration_ms = $5, finished_at = now() WHERE org_id = $1 AND id = $2 AND state = 'executing'`, [lease.orgId, actionId, state, resultDigest, ms]);
}


/**
 * Where no MCP client stands behind the connector calls (a worker task; a reviewer's accept or
 * revert running a task's connectors), an upstream's sampling/createMessage or elicitation/create
 * is refused: the upstream gets a JSON-RPC error, and each refusal is audited like the gateway's
 * (`mcp.sampling` / `mcp.elicitation`, reason `no_client`, digest and size of the request, never its text).
 */
export function refuseServerRequests(
  hub: ConnectorHub,
  connectors: Record<string, { id: string; name: string }>,
  ctx: { ds: DataSource; keyring: AuditKeyring; orgId: string; taskId: string | null; actor: { type: 'agent_task' | 'user'; id: string }; client: 'worker' | 'rest'; where: string },
): void {
  for (const [hubId, connector] of Object.entries(connectors)) {
    if (!hub.has(hubId)) continue;
    hub.get(hubId).onServerRequest = async (request) => {
      const kind = request.method === 'sampling/createMessage' ? 'sampling' : request.method === 'elicitation/create' ? 'elicitation' : null;
      if (!kind) throw Object.assign(new Error(`Method not found: ${request.method}`), { code: -32601 });
      const body = canonical(request.params ?? {});
      await inOrg(ctx.ds, { orgId: ctx.orgId }, (em) =>
        recordEvent(em, ctx.keyring, {
          id: newId(),
          orgId: ctx.orgId,
          occurredAt: new Date(),
          actor: ctx.actor,
          action: `mcp.${kind}`,
          target: { type: 'Connector', id: connector.id },
          outcome: 'denied',
          task: ctx.taskId,
          connector: hubId,
          client: ctx.client,
          payload: { outcome: 'refused', reason: 'no_client', connector: connector.name, request: { method: request.method, digest: sha256(body), bytes: Buffer.byteLength(body) } },
        }),
      ).catch(() => undefined);
      // -32600 (invalid request), the code the gateway's refusals carry too.
      throw Object.assign(new Error(`Steward does not relay ${request.method} from connector "${connector.name}" ${ctx.where} (there is no MCP client to ask)`), { code: -32600 });
    };
  }
}
