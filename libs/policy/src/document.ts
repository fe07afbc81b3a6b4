import { z } from 'zod';
import { ACTION_TYPE_NAMES, type ActionType, floorOf, LEVELS, rank, type Level } from './catalog';
import { globProblem } from './glob';

/**
 * A policy document: one version of an org's Trust Level policy. Validated with a
 * schema, then against the catalog and the org's groups and workflows; an invalid
 * document is refused with every problem listed.
 */
const Id = z
  .string()
  .min(1)
  .max(80)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" or "-"');
const Uuid = z.uuid();
const Level = z.enum(LEVELS);
const ActionName = z.string().max(40);
const Glob = z.string().min(1).max(300);
const Label = z.string().min(1).max(60).regex(/^[a-z0-9_.:-]+$/, 'lower-case label such as "pii" or "confidential"');
const Time = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM (24 h)');

export const TimeWindowSchema = z.strictObject({
  /** ISO weekdays, 1 = Monday … 7 = Sunday. */
  days: z.array(z.int().min(1).max(7)).min(1).max(7),
  from: Time,
  to: Time,
  /** IANA time zone the window is in. */
  timeZone: z.string().min(1).max(64),
  /** Match outside the window instead of inside it. */
  outside: z.boolean().optional(),
});

export const ConditionsSchema = z.strictObject({
  connectors: z.array(z.string().min(1).max(80)).min(1).max(50).optional(),
  /** Any resource (path, URL, id) matching any glob. */
  resources: z.array(Glob).min(1).max(50).optional(),
  hosts: z.array(Glob).min(1).max(50).optional(),
  /** "external": some recipient outside the org's domains; "internal": all inside. */
  recipients: z.enum(['internal', 'external']).optional(),
  recipientDomains: z.array(z.string().min(1).max(253)).min(1).max(50).optional(),
  /** The event invites someone other than the user. */
  invitesOthers: z.boolean().optional(),
  labels: z.array(Label).min(1).max(20).optional(),
  /** The task has read untrusted content. */
  tainted: z.boolean().optional(),
  /** Amount strictly above this. */
  amountAbove: z.number().min(0).max(1e15).optional(),
  timeWindow: TimeWindowSchema.optional(),
});
export type Conditions = z.infer<typeof ConditionsSchema>;

export const ScopeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('org') }),
  z.strictObject({ type: z.literal('group'), id: Uuid }),
  z.strictObject({ type: z.literal('workflow'), id: Id }),
  z.strictObject({ type: z.literal('user'), id: Uuid }),
]);
export type Scope = z.infer<typeof ScopeSchema>;

export const RuleSchema = z.strictObject({
  id: Id,
  scope: ScopeSchema,
  actions: z.array(ActionName).min(1).max(30),
  level: Level,
  when: ConditionsSchema.optional(),
  reason: z.string().min(1).max(300),
  obligations: z.array(z.enum(['keep_undo_copy', 'redact_personal_data', 'reversible_form'])).max(3).optional(),
  /**
   * An org rule that only raises: applied after the scopes, so that no group, workflow or person
   * rule lowers what it sets (the org's guard rails, e.g. a task that read untrusted content never
   * sends on its own); it never lowers a level either.
   */
  guard: z.boolean().optional(),
});
export type Rule = z.infer<typeof RuleSchema>;

export const RateLimitSchema = z.strictObject({
  id: Id,
  actions: z.array(ActionName).min(1).max(30),
  /** Reservations allowed per window; the next one raises the level. */
  max: z.int().min(1).max(1_000_000),
  per: z.enum(['minute', 'hour', 'day']),
  /** Whose count: each user's, or the whole org's. */
  by: z.enum(['user', 'org']),
  then: z.enum(['batched', 'watched', 'forbidden']),
  reason: z.string().min(1).max(300),
});
export type RateLimit = z.infer<typeof RateLimitSchema>;

export const ApprovalRouteSchema = z.strictObject({
  id: Id,
  actions: z.array(ActionName).min(1).max(30),
  /** The group whose members decide. */
  approverGroup: Uuid,
  quorum: z.int().min(1).max(2),
});
export type ApprovalRoute = z.infer<typeof ApprovalRouteSchema>;

export const ForbiddenAreaSchema = z.strictObject({
  id: Id,
  actions: z.array(ActionName).min(1).max(30),
  when: ConditionsSchema.optional(),
  reason: z.string().min(1).max(300),
});
export type ForbiddenArea = z.infer<typeof ForbiddenAreaSchema>;

export const PolicyDocumentSchema = z.strictObject({
  /** The org baseline: a level per action type (missing ones take the catalog default). */
  baseline: z.record(ActionName, Level),
  rules: z.array(RuleSchema).max(2000),
  rateLimits: z.array(RateLimitSchema).max(200),
  approvals: z.array(ApprovalRouteSchema).max(200),
  forbiddenAreas: z.array(ForbiddenAreaSchema).max(200),
});
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;

export interface PolicyProblem {
  path: string;
  message: string;
}

export interface ValidationContext {
  /** Group ids of the org (rules and approval routes may only name these). */
  groups?: ReadonlySet<string>;
  /** Workflow keys of the org. */
  workflows?: ReadonlySet<string>;
  /** User ids of the org's members. */
  users?: ReadonlySet<string>;
}

function checkActions(actions: string[], path: string, problems: PolicyProblem[]): void {
  actions.forEach((a, i) => {
    if (!ACTION_TYPE_NAMES.includes(a as ActionType)) problems.push({ path: `${path}.${i}`, message: `unknown action type "${a}"` });
  });
}

function checkConditions(when: Conditions | undefined, path: string, problems: PolicyProblem[]): void {
  if (!when) return;
  for (const key of ['resources', 'hosts'] as const) {
    when[key]?.forEach((g, i) => {
      const problem = globProblem(g);
      if (problem) problems.push({ path: `${path}.${key}.${i}`, message: problem });
    });
  }
  if (when.timeWindow) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: when.timeWindow.timeZone });
    } catch {
      problems.push({ path: `${path}.timeWindow.timeZone`, message: `unknown time zone "${when.timeWindow.timeZone}"` });
    }
    if (when.timeWindow.from === when.timeWindow.to) problems.push({ path: `${path}.timeWindow`, message: 'the window is empty (from = to)' });
  }
}

/**
 * Validates a document: its shape, then every reference and rule against the catalog
 * and the org. Returns the parsed document, or every problem found.
 */
export function validatePolicy(input: unknown, ctx: ValidationContext = {}): { ok: true; document: PolicyDocument } | { ok: false; problems: PolicyProblem[] } {
  const parsed = PolicyDocumentSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => ({
      path: i.path.map(String).join('.') || '(document)',
      message: i.code === 'unrecognized_keys' ? `unknown field(s): ${i.keys.join(', ')}` : i.message,
    }));
    // Also report what the checks below find in the parts that are well-formed, so that
    // one round trip lists every problem.
    const seen = new Set(problems.map((p) => p.path));
    for (const extra of semanticProblems(lenient(input), ctx)) if (!seen.has(extra.path)) problems.push(extra);
    return { ok: false, problems };
  }
  const problems = semanticProblems(parsed.data, ctx);
  return problems.length ? { ok: false, problems } : { ok: true, document: parsed.data };
}

/** The well-formed parts of a document that failed the schema, with the rest emptied. */
function lenient(input: unknown): PolicyDocument {
  const obj = (input && typeof input === 'object' ? input : {}) as Record<string, unknown>;
  // Sparse arrays keep each entry at its own index, so problem paths stay right.
  const list = <T>(key: string, schema: z.ZodType<T>): T[] => {
    const out: T[] = [];
    (Array.isArray(obj[key]) ? (obj[key] as unknown[]) : []).forEach((x, i) => {
      const r = schema.safeParse(x);
      if (r.success) out[i] = r.data;
    });
    return out;
  };
  const baseline: Record<string, Level> = {};
  if (obj.baseline && typeof obj.baseline === 'object') {
    for (const [k, v] of Object.entries(obj.baseline as Record<string, unknown>)) if ((LEVELS as readonly unknown[]).includes(v)) baseline[k] = v as Level;
  }
  return {
    baseline,
    rules: list('rules', RuleSchema),
    rateLimits: list('rateLimits', RateLimitSchema),
    approvals: list('approvals', ApprovalRouteSchema),
    forbiddenAreas: list('forbiddenAreas', ForbiddenAreaSchema),
  };
}

function semanticProblems(doc: PolicyDocument, ctx: ValidationContext): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const [action, level] of Object.entries(doc.baseline)) {
    if (!ACTION_TYPE_NAMES.includes(action as ActionType)) {
      problems.push({ path: `baseline.${action}`, message: `unknown action type "${action}"` });
      continue;
    }
    const floor = floorOf(action as ActionType);
    if (floor && rank(level as Level) < rank(floor)) {
      problems.push({ path: `baseline.${action}`, message: `${action} can never be below ${floor} (its floor); "${level}" contradicts it` });
    }
  }
  const ids = new Map<string, string>();
  const unique = (id: string, path: string) => {
    const seen = ids.get(id);
    if (seen) problems.push({ path: `${path}.id`, message: `id "${id}" is already used at ${seen}` });
    else ids.set(id, path);
  };
  doc.rules.forEach((r, i) => {
    const path = `rules.${i}`;
    unique(r.id, path);
    checkActions(r.actions, `${path}.actions`, problems);
    checkConditions(r.when, `${path}.when`, problems);
    for (const a of r.actions) {
      const floor = ACTION_TYPE_NAMES.includes(a as ActionType) ? floorOf(a as ActionType) : undefined;
      if (floor && rank(r.level) < rank(floor)) {
        problems.push({ path: `${path}.level`, message: `${a} can never be below ${floor} (its floor); "${r.level}" contradicts it` });
      }
    }
    if (r.guard && r.scope.type !== 'org') problems.push({ path: `${path}.guard`, message: 'only a whole-org rule can be a guard (it holds over every group, workflow and person)' });
    if (r.guard && r.obligations?.length) problems.push({ path: `${path}.obligations`, message: 'a guard only raises the level; obligations come with the rules that decide' });
    if (r.scope.type === 'group' && ctx.groups && !ctx.groups.has(r.scope.id)) problems.push({ path: `${path}.scope.id`, message: `no group ${r.scope.id} in this org` });
    if (r.scope.type === 'workflow' && ctx.workflows && !ctx.workflows.has(r.scope.id)) problems.push({ path: `${path}.scope.id`, message: `no workflow "${r.scope.id}" in this org` });
    if (r.scope.type === 'user' && ctx.users && !ctx.users.has(r.scope.id)) problems.push({ path: `${path}.scope.id`, message: `no member ${r.scope.id} in this org` });
  });
  doc.rateLimits.forEach((r, i) => {
    unique(r.id, `rateLimits.${i}`);
    checkActions(r.actions, `rateLimits.${i}.actions`, problems);
  });
  doc.approvals.forEach((r, i) => {
    unique(r.id, `approvals.${i}`);
    checkActions(r.actions, `approvals.${i}.actions`, problems);
    if (ctx.groups && !ctx.groups.has(r.approverGroup)) problems.push({ path: `approvals.${i}.approverGroup`, message: `no group ${r.approverGroup} in this org` });
  });
  doc.forbiddenAreas.forEach((r, i) => {
    unique(r.id, `forbiddenAreas.${i}`);
    checkActions(r.actions, `forbiddenAreas.${i}.actions`, problems);
    checkConditions(r.when, `forbiddenAreas.${i}.when`, problems);
  });
  return problems;
}
