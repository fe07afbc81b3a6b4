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
 *               with no reversible form waits like Watched); Watched waits for approval (the
 *               approval request is written with the claim); Forbidden is refused (a violation is
 *               opened with the claim). A claim that waited comes back here when its task resumes:
 *               decided again, its approval redeemed once (approvals.ts)
 *   6 execute   through libs/connectors, the action id sent upstream as an idempotency key; the
 *               connector's credential decrypted for this call alone, the decrypt audited (credentials.ts)
 *               A transient failure is retried with backoff only for reads and idempotent tools.
 *   7 outcome   state, result digest and size, duration, the undo call — and its audit event
 *
 * Delivery is at most once: a claim that exists is never executed again; one left `executing`
 * by a crash is an outcome nobody knows, for a human to settle.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DataSource, EntityManager } from 'typeorm';
import { type AuditKeyring, canonical, type Client, prepareEvent } from '@steward/audit';
import { holdsNul, inSpan, newId, SpanAttr, tracer } from '@steward/common';
import { argumentProblems, type ConnectorHub, ConnectorError, type ConnectorManifest, extractContext, finalizeCall, resolveTool, reversibleCall, type ToolCall, type ToolCallResult, toolDefinitionHash, undoCall, unknownMapping } from '@steward/connectors';
import { inOrg } from '@steward/db';
import { type ActionContext, type ActionType, authorize, type Decision, decide, EGRESS_BY_NATURE, egressType, isInternal, labelArguments, type Level, type PolicyPrincipal, rateLimitsFor, recordFacts, toFacts } from '@steward/policy';
import { type ClaimWriter, claimWriterFor } from './claims';
import { type ActionScope, actionScope, type CredentialBroker, type CredentialTarget, type PreparedCredential } from './credentials';
import { redeemApproval, type RedeemResult } from './approvals';
import type { ActivePolicy, PolicySource } from './policy-source';
import { openOutcomeUnknown } from './outcome-unknown';
import { release, type Reservation, reserve } from './rate-limits';

export interface GateDeps {
  ds: DataSource;
  redis: Redis;
  /** REDIS_PREFIX: the rate-limit windows are `<prefix>:rls:...` (default `steward`; the API and the worker of one deployment share them). */
  redisPrefix?: string;
  keyring: AuditKeyring;
  policies: PolicySource;
  /** The org's connectors, credentials wired per call (decrypted only for the call). */
  hub: ConnectorHub;
  /** The manifest of an installed connector (how its tools map to action types). */
  manifest: (connector: string) => ConnectorManifest | undefined;
  /** Where outcomes are written (in batches, after the call). */
  outcomes: OutcomeWriter;
  /** Credentials of the connectors that take one: decrypted for each action, the decrypt audited in its claim. */
  credentials?: { broker: CredentialBroker; target: (connector: string, orgId: string) => CredentialTarget | undefined };
  /** Where claims are written (default: the data source's shared batching writer). */
  claims?: ClaimWriter;
  /** Org and user contexts cached for a second (optional: without it every action reads them). */
  contexts?: ContextCache;
  /** Retries of a transient connector failure (reads and idempotent tools only): attempts in all (default 3), first delay (default 200 ms). */
  retry?: { attempts?: number; baseDelayMs?: number };
  now?: () => Date;
  /** Told about decisions, write-ahead commits and connector failures (Prometheus metrics of the API and the worker). */
  observer?: GateObserver;
}

/** What a process's metrics learn from the gate. Called synchronously; must not throw. */
export interface GateObserver {
  /** A decision was made (a duplicate claim is not one): its level, and the refusal when refused. */
  decided?(e: { level: Level; refusal: string | null; client: string }): void;
  /** The write-ahead commit (decision, claim and audit event in one transaction) took this long. */
  wroteAhead?(seconds: number): void;
  /** A connector call failed (after retries), with the connector error's code. */
  connectorFailed?(e: { code: string }): void;
}

export interface ActionRequest {
  orgId: string;
  /** The employee the agent acts for. */
  userId: string;
  /**
   * The claim: one action per task step, or per gateway action id. `approved` (the gateway's): when
   * the action is decided Watched, the key of the same person's identical call that already waits
   * with an approved, unexpired approval, if any — the action is then that claim, its approval
   * redeemed (once), instead of a new claim asking for a second approval. Asked only then, so that
   * no other call pays for the lookup.
   */
  claim: { taskId: string; step: number } | { gatewayKey: string; approved?: () => Promise<string | null> };
  connector: string;
  tool: string;
  args: Record<string, unknown>;
  /** The task has read untrusted content (web pages, outside mail, third-party tool output). */
  tainted: boolean;
  /** Labels of data the task read earlier ("confidential", "external", ...). */
  labels?: string[];
  workflow?: string | null;
  client: Client;
  /** The credential the call would use (bound into an approval); null where none. */
  credentialId?: string | null;
  /**
   * A task's lease (the worker's): the claim is made only if the task is still running under this
   * epoch and holder, checked in the claim's own transaction; otherwise `ClaimFenced` is thrown.
   */
  fence?: { epoch: number; holder: string };
  /** A call through the MCP gateway: its session and the MCP client (clientInfo), named in the audit events. */
  /** The MCP gateway's session and client (`oauthClientId`: the OAuth client the member authorised, when it used an OAuth token). */
  via?: { session: string; clientName: string; clientVersion: string; oauthClientId?: string };
  /** Progress the upstream reports while the call runs (the MCP gateway relays it to its client). */
  onProgress?: (p: { progress: number; total?: number; message?: string }) => void;
  /** How long the connector call may take (ms); default: the hub's limit. */
  timeoutMs?: number;
  /** The upstream closed the call's SSE stream before its answer (SEP-1699); the MCP gateway closes its client's likewise. */
  onStreamClosed?: () => void;
}

/** The task's lease was taken over before the claim: nothing was claimed or run. */
export class ClaimFenced extends Error {
  constructor() {
    super('the task is no longer held under this lease: nothing claimed');
    this.name = 'ClaimFenced';
  }
}

/** Why nothing ran. `workflow_not_permitted`: the task runs under a workflow the member may not (or no longer) run tasks under. `bad_arguments`: a remote tool's arguments do not fit the input schema its approved definition pins. The last four: an approval that was rejected, expired, already used, or for other arguments or another tool definition. */
export type Refusal = 'forbidden' | 'paused' | 'suspended' | 'no_policy' | 'not_authorized' | 'workflow_not_permitted' | 'bad_arguments' | 'rejected' | 'expired' | 'approval_used' | 'approval_mismatch';

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
  /** `detail`: what did not fit (bad_arguments), for the caller alone — its words come from the arguments, so it is kept nowhere. */
  | (Decided & { status: 'refused'; refusal: Refusal; detail?: string })
  | (Decided & { status: 'failed'; error: { code: string; message: string } })
  /**
   * The call of a write that cannot safely be made twice failed after it may have acted (no answer
   * in time, the connection lost, a server error): not run again, and not reported as failed — its
   * claim is `outcome_unknown`, with an approval of that kind for a person to settle (`approvalOpened`).
   */
  | (Decided & { status: 'outcome_unknown'; error: { code: string; message: string }; approvalOpened: boolean })
  /** The claim was made before: nothing ran again. `state` is what the first attempt left. */
  | { status: 'duplicate'; actionId: string; state: string };

/** Spans of the gate's steps (no-op unless the process registered a tracer provider): ids, kinds and levels, never arguments. */
const gateTracer = tracer('steward.gate');

const digest = (value: unknown) => createHash('sha256').update(canonical(value ?? null)).digest('hex');

/** What the decision event says, in words an OCSF/ECS consumer maps (denied → blocked). */
const DECISION_WORD: Record<Level, string> = { autonomous: 'allowed', batched: 'allowed_reversible', watched: 'watched_pending', forbidden: 'denied' };

export async function gateAction(deps: GateDeps, req: ActionRequest): Promise<GateResult> {
  const attributes = { [SpanAttr.OrgId]: req.orgId, 'steward.client': req.client, 'steward.connector': req.connector, 'steward.tool': req.tool, ...('taskId' in req.claim ? { [SpanAttr.TaskId]: req.claim.taskId, 'steward.step': req.claim.step } : {}) };
  const r = await inSpan(gateTracer, 'gate.action', attributes, async (span) => {
    const result = await gateActionOnce(deps, req);
    span.setAttributes({ [SpanAttr.ActionId]: result.actionId, 'steward.status': result.status, ...('level' in result ? { 'steward.level': result.level } : {}), ...(result.status === 'refused' ? { 'steward.refusal': result.refusal } : {}), ...(result.status === 'failed' ? { 'steward.error_code': result.error.code } : {}) });
    return result;
  });
  const o = deps.observer;
  if (o && r.status !== 'duplicate') {
    o.decided?.({ level: r.level, refusal: r.status === 'refused' ? r.refusal : null, client: req.client });
    if (r.status === 'failed' || r.status === 'outcome_unknown') o.connectorFailed?.({ code: r.error.code });
  }
  return r;
}

/** A manifest tool's definition hash, computed once per manifest entry (manifests are immutable once built). */
const specHashes = new WeakMap<object, string>();
function specHash(spec: ConnectorManifest['tools'][number]): string {
  let h = specHashes.get(spec);
  if (!h) {
    h = toolDefinitionHash({ name: spec.name, description: spec.description, inputSchema: spec.inputSchema as Record<string, unknown> });
    specHashes.set(spec, h);
  }
  return h;
}

async function gateActionOnce(deps: GateDeps, req: ActionRequest): Promise<GateResult> {
  const now = deps.now?.() ?? new Date();

  // 1. Resolve the tool to an action type.
  const manifest = deps.manifest(req.connector);
  const mapping = manifest ? resolveTool(manifest, req.tool) : unknownMapping(req.connector, req.tool);
  const spec = manifest?.tools.find((t) => t.name === req.tool);

  // 2. Label what the arguments name (paths, recipients, hosts, amounts); the org's own domains
  //    and the user's groups come with the write-ahead read below.
  const facts: ActionContext = extractContext(mapping, req.args);
  const actionId = newId();
  const argsDigest = digest(req.args);
  // What an approval is bound to besides the arguments: the tool's definition as the manifest pins it.
  const toolHash = spec ? specHash(spec) : null;
  const claim: { taskId: string; step: number; gatewayKey: null } | { taskId: null; step: null; gatewayKey: string } =
    'taskId' in req.claim ? { taskId: req.claim.taskId, step: req.claim.step, gatewayKey: null } : { taskId: null, step: null, gatewayKey: req.claim.gatewayKey };
  let approvedAsked = false;
  // A remote tool's arguments must fit the schema its approved definition pins: what the mapping
  // does not read must not reach the server either (refused, and recorded, like any refusal).
  const badArguments = manifest?.runtime.kind === 'remote' && spec ? argumentProblems(spec, req.args) : null;

  // 3. Decide on what the org and the user look like now (domains, groups, active policy: read
  //    fresh, or from a cache of at most a second — the write-ahead checks them again), after
  //    reserving the rate limits that apply (once per action; fails safe).
  // 4. Write ahead in ONE statement (steward_gate_claim): it reads the kill switch and the
  //    membership, checks the policy and groups the decision used, and inserts the claim with its
  //    audit event — or nothing. If it does not commit, nothing runs.
  const keys = perQuery(deps.ds, req.orgId);
  let reservation: Reservation | null = null;
  const credentialTarget = deps.credentials?.target(req.connector, req.orgId);
  let prepared: PreparedCredential | null = null;
  // The credential an approval is bound to: the one the action would run with (given, or the live one).
  const liveCredentialId = async () => req.credentialId ?? (credentialTarget && deps.credentials ? await deps.credentials.broker.liveCredentialId(credentialTarget, req.orgId, req.userId) : null);
  let w!: Written;
  /** The type the action is decided as (egressType: its arguments can make it data.egress_pii). */
  let type: ActionType = mapping.action;
  for (let attempt = 0; ; attempt++) {
    const decideStarted = performance.timeOrigin + performance.now();
    const workflow = req.workflow ?? null;
    const ctx = await (deps.contexts ? deps.contexts.get(deps.ds, req.orgId, req.userId, workflow) : readContext(deps.ds, req.orgId, req.userId, workflow));
    const policy = ctx?.policy ? await deps.policies.compiledFor(keys, req.orgId, ctx.policy) : null;
    const domains = ctx?.domains ?? [];
    // (A web read's URLs as the site receives them too: "jane%40customer.example" is an address.)
    const found = labelArguments(EGRESS_BY_NATURE.has(mapping.action) ? { args: req.args, decoded: decodedUrls(facts.resources) } : req.args, domains);
    // Customer personal data in a web read to a host outside the org goes to a third party: decided as data.egress_pii.
    type = egressType(mapping.action, found.findings, !facts.hosts?.length || facts.hosts.some((h) => !isInternal(h, domains)));
    const context: ActionContext = {
      ...facts,
      connector: req.connector,
      labels: [...new Set([...(facts.labels ?? []), ...found.labels, ...(req.labels ?? [])])].sort(),
      tainted: req.tainted,
      // A workflow the member may not run tasks under lends its rules to nothing: decided without it (and refused below).
      workflow: ctx?.workflowPermitted === false ? undefined : (req.workflow ?? undefined),
      at: now,
    };
    // Per claim: an action decided again (its approval redeemed, the same gateway call retried) takes no second slot.
    const unit = claim.taskId !== null ? `t:${claim.taskId}:${claim.step}` : `g:${claim.gatewayKey}`;
    reservation ??= policy ? await reserve(deps.redis, req.orgId, req.userId, rateLimitsFor(policy.compiled, type), now, 250, deps.redisPrefix, unit) : { exceeded: [], unavailable: false };
    context.rateExceeded = reservation.exceeded;
    const principal: PolicyPrincipal = { userId: req.userId, groupIds: ctx?.groups ?? [] };
    const d = decideOn(policy, principal, type, context, domains);
    // Redis down: every rate limit that applies counted as exceeded (fail safe). The reason says so,
    // and when that alone made the action Forbidden no violation is opened: an outage is nobody's act.
    let outage = false;
    if (reservation.unavailable && reservation.exceeded.length) {
      d.reason = `Rate-limit counters unavailable (Redis did not answer): each limit that applies counts as exceeded. ${d.reason}`;
      outage = d.level === 'forbidden' && decideOn(policy, principal, type, { ...context, rateExceeded: [] }, domains).level !== 'forbidden';
    }
    // Batched: reads run as they are; writes run in their reversible form, or wait like Watched.
    const reversible = d.level === 'batched' && !spec?.readOnly ? reversibleCall(mapping, req.args) : null;
    const level: Level = d.level === 'batched' && !spec?.readOnly && !reversible ? 'watched' : d.level;
    // Recorded whatever the level, so that a replay under another policy knows what Batched would do here.
    const noReversibleForm = !spec?.readOnly && (reversible ?? reversibleCall(mapping, req.args)) === null;
    // A workflow's rules are only for the members it is open to (its groups): for anyone else the
    // action is refused (the write-ahead checks this again) — as Forbidden, with its violation,
    // where the policy forbids it without the workflow.
    let refusal: Refusal | null = !ctx ? 'paused' : !policy ? 'no_policy' : level === 'forbidden' ? 'forbidden' : badArguments ? 'bad_arguments' : !ctx.workflowPermitted ? 'workflow_not_permitted' : !d.authorized ? 'not_authorized' : null;
    // What does not fit is told to the caller, not kept: its words come from the arguments (their property names).
    if (refusal === 'bad_arguments') d.reason = `Refused: the arguments do not fit the tool's approved definition. ${d.reason}`;
    if (refusal === 'workflow_not_permitted') d.reason = `Refused: the member may not run tasks under the workflow "${workflow}" (it is open to members of its groups only, or it no longer exists). ${d.reason}`;
    // 3 as a span: context read, rate-limit reservation, decision and CASL check (a child of gate.action).
    gateTracer
      .startSpan('gate.decide', {
        startTime: decideStarted,
        attributes: { [SpanAttr.OrgId]: req.orgId, 'steward.action_type': type, 'steward.level': level, 'steward.policy_version': policy?.version ?? 0, 'steward.rules_matched': d.ruleIds.length, 'steward.rate_limited': reservation.exceeded.length > 0, 'steward.tainted': req.tainted, 'steward.attempt': attempt },
      })
      .end();
    const claimOnce = (): Promise<string> => inSpan(gateTracer, 'gate.write_ahead', { [SpanAttr.OrgId]: req.orgId, [SpanAttr.ActionId]: actionId, 'steward.level': level }, async (span) => {
      const state = refusal ? 'refused' : level === 'watched' ? 'awaiting_approval' : 'executing';
      // The connector's credential, read ahead so that its decrypt is audited in the claim's commit.
      prepared = state === 'executing' && credentialTarget && deps.credentials ? await deps.credentials.broker.prepare(credentialTarget, req.orgId, req.userId) : null;
      const decryptEvent = prepared ? await deps.credentials!.broker.decryptEvent(prepared, { orgId: req.orgId, userId: req.userId, actionId, taskId: claim.taskId, client: req.client }, keys) : null;
      const event = await prepareEvent(keys, deps.keyring, {
        id: newId(),
        orgId: req.orgId,
        occurredAt: now,
        actor: { type: 'agent_task', id: claim.taskId },
        action: type,
        target: { type: 'Tool', id: null },
        level,
        decision: refusal ? (refusal === 'forbidden' ? 'denied' : `denied_${refusal}`) : DECISION_WORD[level],
        outcome: refusal ? 'denied' : 'success',
        policyVersion: policy?.version ?? null,
        task: claim.taskId,
        connector: req.connector,
        client: req.client,
        payload: {
          actionId, ...(req.via ? { mcp: req.via } : {}), tool: req.tool, argsDigest, ruleIds: d.ruleIds, tainted: req.tainted, labels: context.labels, reversible: reversible !== null, rateLimited: reservation!.exceeded, rateLimitsUnavailable: reservation!.unavailable,
          // What the decision was made on, the policy's own level, and whether a Batched decision would
          // wait like Watched (a write without a reversible form): a policy replay (libs/oversight) decides again from these.
          facts: recordFacts(toFacts(principal, type, context, { domains })), decided: d.level, ...(noReversibleForm ? { noReversibleForm: true } : {}),
        },
        // The arguments themselves, sealed under the employee's key (an erasure shreds them): whole (up
        // to 256 KiB) for a gateway call that waits for a person, whose approver reads them there (a
        // task's approver reads the task's transcript), else their first 4,000 characters.
        sensitive: { arguments: canonical(req.args).slice(0, state === 'awaiting_approval' && claim.gatewayKey !== null ? 262_144 : 4000), ...(context.recipients?.length ? { recipients: context.recipients } : {}) },
        subject: req.userId,
      });
      // Watched: the approval request (routed as the policy says) is written with the claim.
      const approval = state === 'awaiting_approval' ? { id: newId(), toolHash, credentialId: await liveCredentialId(), approverGroup: d.routing?.approverGroup ?? null, quorum: d.routing?.quorum ?? 1 } : null;
      // One commit for this claim and the others arriving meanwhile (claims.ts); each answered alone.
      const writeStarted = performance.now();
      const claimed = await (deps.claims ?? claimWriterFor(deps.ds)).claim({
        org: req.orgId, user: req.userId, id: actionId, task: claim.taskId, step: claim.step, gateway: claim.gatewayKey,
        connector: req.connector, tool: req.tool, type: type, level, rule_ids: d.ruleIds, reason: d.reason.slice(0, 1000),
        policy: policy?.id ?? null, policy_version: policy?.version ?? null, args_digest: argsDigest, tainted: req.tainted, labels: context.labels ?? [], reversible: reversible !== null, state, refusal,
        event_id: event.id, event_at: event.occurredAt, event: event.canonical, groups: ctx?.groups ?? [],
        // Every Forbidden attempt, a task's or an MCP client's, is opened for security to triage.
        approval, violation: refusal === 'forbidden' && !outage,
        extra: decryptEvent ? [decryptEvent] : null, cred_id: prepared?.row.id ?? null, cred_wrapped: prepared?.row.wrapped_key ?? null,
        // A worker's claim is fenced by its task lease in the same transaction (else 'fenced').
        fence_epoch: req.fence?.epoch ?? null, fence_holder: req.fence?.holder ?? null,
        // The workflow the decision assumed open to the member: checked again (else 'changed').
        workflow: ctx?.workflowPermitted === false ? null : workflow,
      });
      deps.observer?.wroteAhead?.((performance.now() - writeStarted) / 1000);
      span.setAttributes({ 'steward.state': state, 'steward.claim': claimed.split(':')[0]! });
      return claimed;
    });
    // Watched: the same call approved earlier (in another session of the same person) is that action, redeemed below.
    if (level === 'watched' && !refusal && claim.gatewayKey !== null && 'approved' in req.claim && req.claim.approved && !approvedAsked) {
      approvedAsked = true;
      const key = await req.claim.approved();
      if (key && key !== claim.gatewayKey) {
        // That approved action, already counted against the rate limits when it was decided: this
        // call's own slots are taken back, and it is decided again as that action (its unit), no second slot.
        claim.gatewayKey = key;
        if (reservation) await release(deps.redis, reservation);
        reservation = null;
        continue;
      }
    }
    let r = await claimOnce();
    if (r === 'fenced') throw new ClaimFenced();
    if (r === 'changed') {
      deps.contexts?.forget(req.orgId, req.userId);
      if (credentialTarget) deps.credentials?.broker.forget(req.orgId, credentialTarget.id);
      if (attempt >= 3) throw new Error('the org or its policy kept changing while deciding');
      continue;
    }
    if (r === 'paused' || r === 'suspended') {
      // Refused, and recorded as such (the decision event says why).
      refusal = r;
      r = await claimOnce();
      if (r === 'fenced') throw new ClaimFenced();
    }
    if (r.startsWith('duplicate:')) {
      const [, id, state] = r.split(':');
      if (state !== 'awaiting_approval') return { status: 'duplicate', actionId: id!, state: state! };
      // 5a. The claim waited for a human: redeem its approval against the decision just made.
      const decided: Decided = { actionId: id!, level, ruleIds: d.ruleIds, reason: d.reason, policyVersion: policy?.version ?? null };
      const redeemed: RedeemResult | 'fenced' = await inSpan(gateTracer, 'gate.redeem_approval', { [SpanAttr.OrgId]: req.orgId, [SpanAttr.ActionId]: id! }, async () => redeemApproval(deps.ds, deps.keyring, {
        orgId: req.orgId, userId: req.userId, actionId: id!, taskId: claim.taskId, connector: req.connector, tool: req.tool, actionType: type,
        argsDigest, toolHash, credentialId: await liveCredentialId(), policyVersion: policy?.version ?? null, client: req.client, now,
        // An approval satisfies Watched and nothing stricter: any refusal of the fresh decision (Forbidden, not authorised, no policy) stands.
        level: refusal ? 'forbidden' : level,
        routing: level === 'watched' ? { approverGroup: d.routing?.approverGroup ?? null, quorum: d.routing?.quorum ?? 1 } : null,
        fence: req.fence ?? null,
      }));
      if (redeemed === 'fenced') throw new ClaimFenced();
      if (redeemed === 'pending') return { ...decided, status: 'awaiting_approval' };
      if (redeemed !== 'executing') return { ...decided, status: 'refused', refusal: redeemed };
      // Approved: the call itself runs now (a person saw these arguments), once.
      w = { decided, refusal: null, state: 'executing', reversible: null };
      break;
    }
    w = {
      decided: { actionId, level, ruleIds: d.ruleIds, reason: d.reason, policyVersion: policy?.version ?? null },
      refusal,
      state: refusal ? 'refused' : level === 'watched' ? 'awaiting_approval' : 'executing',
      reversible,
      ...(refusal === 'bad_arguments' && badArguments ? { detail: badArguments } : {}),
    };
    break;
  }

  // 5. Act on the level.
  if (w.refusal) return { ...w.decided, status: 'refused', refusal: w.refusal, ...(w.detail ? { detail: w.detail } : {}) };
  if (w.state === 'awaiting_approval') return { ...w.decided, status: 'awaiting_approval' };

  // 6. Execute: the reversible form at Batched, the call itself otherwise.
  const call: ToolCall = w.reversible ?? { tool: req.tool, args: req.args };
  const started = Date.now();
  try {
    // The call runs in the action's scope: a credential is decrypted for it alone (credentials.ts).
    const scope: ActionScope = { orgId: req.orgId, userId: req.userId, actionId: w.decided.actionId, taskId: claim.taskId, client: req.client };
    const opened = prepared as PreparedCredential | null; // set by the claim that committed (the closure above)
    if (opened && w.decided.actionId === actionId) scope.prefetched = new Map([[opened.target.id, await deps.credentials!.broker.open(opened, req.orgId)]]);
    // A transient failure (unreachable, timeout, 5xx) is retried with backoff only where a second
    // call cannot act twice: reads, and tools whose upstream honours the idempotency key. Policy,
    // validation and credential failures are never retried.
    const safe = spec?.readOnly === true || spec?.idempotent === true;
    // 6 as a span: the connector call with its retries (a child of gate.action).
    const result = await inSpan(gateTracer, 'gate.execute', { [SpanAttr.OrgId]: req.orgId, [SpanAttr.ActionId]: w.decided.actionId, 'steward.connector': req.connector, 'steward.tool': call.tool, 'steward.reversible': w.reversible !== null }, () =>
      withRetry(
        () => actionScope.run(scope, () => deps.hub.callTool(req.connector, call.tool, call.args, { idempotencyKey: w.decided.actionId, ...(req.onProgress ? { onProgress: req.onProgress } : {}), ...(req.onStreamClosed ? { onStreamClosed: req.onStreamClosed } : {}), ...(req.timeoutMs ? { timeoutMs: req.timeoutMs } : {}) })),
        safe ? (deps.retry?.attempts ?? 3) : 1,
        deps.retry?.baseDelayMs ?? 200,
      ),
    );
    // A step that holds U+0000 (a file's previous content, say) cannot be stored (jsonb refuses it) nor put back faithfully
    // with a stand-in character: none is recorded, and the reviewer sees the action as one that cannot be undone.
    const undo = storable(w.reversible ? undoCall(mapping, w.reversible.args, result.structuredContent ?? {}) : null);
    // The step that makes it final once a reviewer accepts it (a draft becomes the sent message), where the connector has one.
    const finalize = storable(w.reversible ? finalizeCall(mapping, w.reversible.args, result.structuredContent ?? {}) : null);
    // 7. Outcome (written in batches; a crash before it leaves the claim `executing`: outcome unknown).
    deps.outcomes.add(req, w.decided.actionId, type, { state: 'succeeded', resultDigest: digest(result.structuredContent ?? result.content), bytes: result.bytes, ms: Date.now() - started, undo, finalize, errorCode: null });
    return { ...w.decided, status: 'executed', reversible: w.reversible !== null, result, undo };
  } catch (err) {
    const error = err instanceof ConnectorError ? { code: err.code, message: err.message } : { code: 'internal', message: 'the connector call failed' };
    // At most once: a write that may have acted is neither reported failed (the model would try
    // again) nor run again; a person settles whether it was carried out. So for a write whose
    // upstream honours the idempotency key once its retries are spent: the model's next try would
    // be another action, with another key.
    if (err instanceof ConnectorError && err.mayHaveActed && spec?.readOnly !== true) {
      const approvalOpened = await inOrg(deps.ds, { orgId: req.orgId }, (em) =>
        openOutcomeUnknown(em, deps.keyring, { orgId: req.orgId, actionId: w.decided.actionId, taskId: claim.taskId, client: req.client === 'mcp' ? 'mcp' : 'worker', ambiguous: true }),
      ).catch(() => false); // left `executing`: the outcome sweep sends it to a person later
      return { ...w.decided, status: 'outcome_unknown', error, approvalOpened };
    }
    deps.outcomes.add(req, w.decided.actionId, type, { state: 'failed', resultDigest: null, bytes: null, ms: Date.now() - started, undo: null, finalize: null, errorCode: error.code });
    return { ...w.decided, status: 'failed', error };
  }
}

async function withRetry<T>(call: () => Promise<T>, attempts: number, baseDelayMs: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= attempts || !(err instanceof ConnectorError) || !err.retryable) throw err;
      await new Promise((r) => setTimeout(r, baseDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5)));
    }
  }
}

interface Written {
  decided: Decided;
  refusal: Refusal | null;
  state: 'refused' | 'awaiting_approval' | 'executing';
  reversible: ToolCall | null;
  detail?: string;
}

/** What the decision needs to know of the org and the user. */
export interface GateContext {
  domains: string[];
  /** Sorted as PostgreSQL's "C" collation sorts them (the write-ahead compares them). */
  groups: string[];
  policy: { id: string; version: number; updated_at: Date } | null;
  /** The member may run tasks under the workflow asked about (true when none was). */
  workflowPermitted: boolean;
}

export async function readContext(ds: DataSource, orgId: string, userId: string, workflow: string | null = null): Promise<GateContext | null> {
  return inOrg(ds, { orgId, userId }, async (em) => {
    const [g]: { domains: string[]; groups: string[]; policy_id: string | null; version: number | null; updated_at: Date | null; workflow_permitted: boolean }[] = await em.query(
      `SELECT o.domains,
              ARRAY(SELECT gm.group_id::text FROM group_members gm WHERE gm.org_id = o.id AND gm.user_id = $2 ORDER BY gm.group_id::text COLLATE "C") AS groups,
              p.id AS policy_id, p.version, p.updated_at,
              ($3::varchar IS NULL OR steward_workflow_permitted(o.id, $2, $3)) AS workflow_permitted
         FROM orgs o LEFT JOIN policies p ON p.org_id = o.id AND p.status = 'active'
        WHERE o.id = $1`,
      [orgId, userId, workflow],
    );
    if (!g) return null;
    return { domains: g.domains, groups: g.groups, policy: g.policy_id ? { id: g.policy_id, version: g.version!, updated_at: g.updated_at! } : null, workflowPermitted: g.workflow_permitted };
  });
}

/**
 * Org and user contexts for at most `ttlMs` (default one second). Safe because the write-ahead
 * statement checks the policy and the groups again, and reads the kill switch and the membership
 * itself; a stale entry costs one retry, never a wrong decision.
 */
export class ContextCache {
  private readonly entries = new Map<string, { ctx: Promise<GateContext | null>; until: number }>();

  constructor(private readonly ttlMs = 1000) {}

  get(ds: DataSource, orgId: string, userId: string, workflow: string | null = null): Promise<GateContext | null> {
    const key = `${orgId}/${userId}/${workflow ?? ''}`;
    const hit = this.entries.get(key);
    if (hit && hit.until > Date.now()) return hit.ctx;
    const ctx = readContext(ds, orgId, userId, workflow);
    if (this.entries.size >= 10_000) this.entries.clear();
    this.entries.set(key, { ctx, until: Date.now() + this.ttlMs });
    ctx.catch(() => this.entries.delete(key));
    return ctx;
  }

  forget(orgId: string, userId: string): void {
    const prefix = `${orgId}/${userId}/`;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * URLs with their percent-escapes (and a query's "+") decoded, as the server reading them sees the
 * text. Tolerant: an escape that is not UTF-8 ("%FF") or a lone "%" leaves the rest decoded (a
 * server decodes each parameter on its own).
 */
function decodedUrls(urls: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (const u of urls ?? []) {
    if (!u.includes('%') && !u.includes('+')) continue;
    out.push(u.replace(/\+/g, ' ').replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => utf8.decode(Buffer.from(run.replace(/%/g, ''), 'hex'))));
  }
  return out;
}

/**
 * An EntityManager-shaped handle whose every query runs in a transaction of its own with the org
 * set (for the audit keyring and the policy source, which query only on a cache miss: a key they
 * create is committed at once, so nothing rolled back stays cached).
 */
function perQuery(ds: DataSource, orgId: string): EntityManager {
  return { query: (sql: string, params?: unknown[]) => inOrg(ds, { orgId }, (em) => em.query(sql, params)) } as unknown as EntityManager;
}

/** The decision and its CASL authorisation (the product's contract: every action is checked against CASL before it runs). */
function decideOn(policy: ActivePolicy | null, principal: PolicyPrincipal, action: Decision['action'], context: ActionContext, domains: string[]): Decision & { authorized: boolean } {
  if (!policy) return { action, level: 'forbidden', ruleIds: ['no_active_policy'], reason: 'Forbidden: the org has no active policy', routing: null, obligations: [], authorized: false };
  const d = decide(policy.compiled, principal, action, context, { domains });
  const authorized = d.level === 'forbidden' || authorize(policy.ability, toFacts(principal, action, context, { domains }), d.level);
  return { ...d, authorized };
}

export interface Outcome {
  state: 'succeeded' | 'failed';
  resultDigest: string | null;
  bytes: number | null;
  ms: number;
  undo: ToolCall | null;
  /** The call that makes a Batched action's reversible form final when a reviewer accepts it. */
  finalize?: ToolCall | null;
  errorCode: string | null;
}

/** The call as it can be stored (jsonb), or null when a string in it holds U+0000. */
function storable(call: ToolCall | null): ToolCall | null {
  return call && holdsNul(call) ? null : call;
}

interface PendingOutcome {
  req: ActionRequest;
  actionId: string;
  action: string;
  o: Outcome;
  at: Date;
}

/**
 * Writes outcomes in the background, a batch in one transaction and one durable commit for many
 * actions of any orgs, so the outcome costs the action no extra commit. A process that dies before a
 * batch is written leaves those claims `executing`: outcomes nobody knows, for a human to settle —
 * never re-run. `flush()` waits until everything added so far is written.
 */
export class OutcomeWriter {
  private pending: PendingOutcome[] = [];
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failed: unknown = null;

  constructor(
    private readonly ds: DataSource,
    private readonly keyring: AuditKeyring,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly delayMs = 5,
  ) {}

  add(req: ActionRequest, actionId: string, action: string, o: Outcome): void {
    this.pending.push({ req, actionId, action, o, at: new Date() });
    this.timer ??= setTimeout(() => {
      this.timer = null;
      void this.drain().catch((err) => {
        // Kept for the next flush(): its caller must not go on as if these outcomes were written.
        this.failed ??= err;
        this.onError(err);
      });
    }, this.delayMs);
  }

  /** Writes everything added so far; rejects if any outcome added since the last flush was not written. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    let failed: unknown = null;
    await this.drain().catch((err: unknown) => (failed = err));
    failed ??= this.failed;
    this.failed = null;
    if (failed) throw failed;
  }

  private async drain(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
    if (!this.pending.length) return;
    // At most 1,000 a statement (the rest go in the next, at once).
    const batch = this.pending.splice(0, 1000);
    this.running = this.write(batch).finally(() => {
      this.running = null;
    });
    await this.running;
    if (this.pending.length) await this.drain();
  }

  /** One statement and one commit for the whole batch, whatever orgs it spans (steward_gate_outcome_batch: each row under its own org). */
  private async write(batch: PendingOutcome[]): Promise<void> {
    const rows = [];
    for (const { req, actionId, action, o, at } of batch) {
      // Outcome events carry nothing sealed: no key is looked up.
      const e = await prepareEvent(perQuery(this.ds, req.orgId), this.keyring, {
        id: newId(),
        orgId: req.orgId,
        occurredAt: at,
        actor: { type: 'agent_task', id: 'taskId' in req.claim ? req.claim.taskId : null },
        action,
        target: { type: 'Tool', id: null },
        decision: 'executed',
        outcome: o.state === 'succeeded' ? 'success' : 'failure',
        task: 'taskId' in req.claim ? req.claim.taskId : null,
        connector: req.connector,
        client: req.client,
        payload: { actionId, ...(req.via ? { mcp: req.via } : {}), tool: req.tool, resultDigest: o.resultDigest, bytes: o.bytes, ms: o.ms, error: o.errorCode, undo: o.undo ? o.undo.tool : null },
      });
      rows.push({ org: req.orgId, id: actionId, state: o.state, digest: o.resultDigest, bytes: o.bytes, ms: o.ms, undo: o.undo, fin: o.finalize ?? null, err: o.errorCode, at, event_id: e.id, event: e.canonical });
    }
    try {
      await this.writeRows(rows);
    } catch (err) {
      if (rows.length === 1) throw err;
      // One row the database refuses must not take the others with it (they are other actions, of other orgs too):
      // each alone, and only the refused ones stay `executing` (outcomes nobody knows, for a person).
      let failed: unknown = null;
      for (const row of rows) await this.writeRows([row]).catch((e: unknown) => (failed ??= e));
      if (failed) throw failed;
    }
  }

  private async writeRows(rows: unknown[]): Promise<void> {
    const [{ n }]: { n: number }[] = await this.ds.query('SELECT steward_gate_outcome_batch($1::jsonb) AS n', [JSON.stringify(rows)]);
    if (n !== rows.length) throw new Error('the outcome batch wrote a different number of outcomes');
  }
}
