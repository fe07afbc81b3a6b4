// The same policy in Cedar (@cedar-policy/cedar-wasm 4.x), rendered from the deny statements of
// policy-ir.ts:
//
//   permit (principal, action, resource);
//   forbid (principal, action in [Action::"RunAutonomous", Action::"RunBatched"],
//           resource == ActionType::"email.draft")
//   when   { principal in Group::"…" && context.recipientScope == "external" }
//   unless { (principal == User::"…" && context.tainted) || (context.workflow == "…") };
//
// Entities: the principal is User::"<id>" whose parents are Group::"<id>" for each of its groups
// (so a group scope is `principal in Group::…`); the resource is ActionType::"<type>"; the
// actions are RunAutonomous / RunBatched / RunWatched. The level is found by asking for
// autonomous, then batched, then watched (first allow wins; none → forbidden) with
// `statefulIsAuthorized` on a preparsed policy set.
//
// Context (built from the same normalised facts decide() computes, with toFacts):
//   workflow, connector (strings, "" when absent), recipientScope, recipientDomains (set),
//   invitesOthers, tainted (bools), labels, rateExceeded (sets), hasAmount + amount (Long),
//   clk<i>d / clk<i>m: ISO weekday and minute of the day in the i-th time zone of the policy
//   (Cedar has no IANA time zones; CASL's form gets the same precomputed clocks),
//   res / hosts: records {r0, r1, …} / {h0, …} of the action's resources and hosts.
//
// Limits of Cedar that shape the translation (caveats; checked, never silently wrong):
// - Cedar has no quantifier over a set, so "some resource matches some glob" is written per
//   slot: (context.res has r0 && context.res.r0 like …) || (context.res has r1 && …) … for up to
//   MAX_SLOTS resources/hosts; a request with more throws.
// - `like` has one wildcard, `*`, which also matches "/". Globs are translated only where the
//   result is exact: "**" → "*"; one single "*" (P*S) → like "P*S" && !(like "P*/*S");
//   X**/*L (L without "/") → like "X*/*L". Anything else ("?", other mixes of "*") throws;
//   the realistic generator only uses translatable globs.
// - Cedar numbers are 64-bit integers: amounts and thresholds must be integers (else throws).
import type { Conditions, Facts, Level, PolicyDocument } from '@steward/policy';
import { localClock, minutesOf } from '@steward/policy';
import { type Deny, denyStatements, type Pred, timeZonesOf } from './policy-ir';

// The package's CommonJS build (exports "./nodejs"): the wasm is loaded synchronously from the package.
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

export const MAX_SLOTS = 3;
const ACTION: Record<string, string> = { autonomous: 'RunAutonomous', batched: 'RunBatched', watched: 'RunWatched' };

const str = (s: string) => JSON.stringify(s); // Cedar string literals use the same escapes for our inputs
function likePattern(literalAndStars: string[]): string {
  // Elements are literals or "*" (wildcard); literal "*" and "\" are escaped.
  return '"' + literalAndStars.map((p) => (p === '*' ? '*' : p.replace(/[\\"]/g, '\\$&').replace(/\*/g, '\\*'))).join('') + '"';
}

type Tok = { w: '*' | '**' | '?' } | { lit: string };
function tokens(glob: string): Tok[] {
  const out: Tok[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      out.push({ w: '**' });
      i++;
    } else if (c === '*' || c === '?') out.push({ w: c });
    else if (out.length && 'lit' in out[out.length - 1]) (out[out.length - 1] as { lit: string }).lit += c;
    else out.push({ lit: c });
  }
  return out;
}

/** A Cedar boolean expression: does `subject` (a String expression) match the glob, exactly? */
export function globToCedar(glob: string, subject: string): string {
  const t = tokens(glob);
  const singles = t.filter((x) => 'w' in x && x.w === '*').length;
  const doubles = t.filter((x) => 'w' in x && x.w === '**').length;
  if (t.some((x) => 'w' in x && x.w === '?')) throw new Error(`glob "${glob}" has "?", which Cedar's like cannot express`);
  const parts = (ts: Tok[]) => ts.map((x) => ('lit' in x ? x.lit : '*'));
  if (singles === 0) return `${subject} like ${likePattern(parts(t))}`;
  if (singles === 1 && doubles === 0) {
    const i = t.findIndex((x) => 'w' in x);
    const withSlash = [...parts(t.slice(0, i)), '*', '/', '*', ...parts(t.slice(i + 1))];
    return `(${subject} like ${likePattern(parts(t))} && !(${subject} like ${likePattern(withSlash)}))`;
  }
  // X**/*L: the "*" segment can always be taken after the last "/", so like "X*/*L" is exact.
  const shape = t.map((x) => ('w' in x ? x.w : 'L')).join(' ');
  if (singles === 1 && doubles === 1 && (shape === '** L * L' || shape === 'L ** L * L' || shape === '** L *' || shape === 'L ** L *')) {
    const lits = t.filter((x): x is { lit: string } => 'lit' in x).map((x) => x.lit);
    const [x, slash, l] = shape.startsWith('L') ? [lits[0], lits[1], lits[2] ?? ''] : ['', lits[0], lits[1] ?? ''];
    if (slash === '/' && !l.includes('/')) return `${subject} like ${likePattern([...(x ? [x] : []), '*', '/', '*', ...(l ? [l] : [])])}`;
  }
  throw new Error(`glob "${glob}" cannot be expressed exactly with Cedar's like`);
}

function anySlot(record: string, prefix: string, globs: string[]): string {
  const slots = Array.from({ length: MAX_SLOTS }, (_, i) => {
    const v = `${record}.${prefix}${i}`;
    return `(${record} has ${prefix}${i} && (${globs.map((g) => globToCedar(g, v)).join(' || ')}))`;
  });
  return `(${slots.join(' || ')})`;
}

function int(n: number, what: string): string {
  if (!Number.isSafeInteger(n)) throw new Error(`${what} ${n} is not an integer; Cedar has only Long`);
  return String(n);
}

function conditions(when: Conditions | undefined, zones: string[]): string[] {
  if (!when) return [];
  const out: string[] = [];
  if (when.connectors) out.push(`[${when.connectors.map(str).join(', ')}].contains(context.connector)`);
  if (when.resources) out.push(anySlot('context.res', 'r', when.resources));
  if (when.hosts) out.push(anySlot('context.hosts', 'h', when.hosts.map((h) => h.toLowerCase())));
  if (when.recipients) out.push(`context.recipientScope == ${str(when.recipients)}`);
  if (when.recipientDomains) out.push(`context.recipientDomains.containsAny([${when.recipientDomains.map((d) => str(d.toLowerCase())).join(', ')}])`);
  if (when.invitesOthers !== undefined) out.push(when.invitesOthers ? 'context.invitesOthers' : '!context.invitesOthers');
  if (when.labels) out.push(`context.labels.containsAny([${when.labels.map(str).join(', ')}])`);
  if (when.tainted !== undefined) out.push(when.tainted ? 'context.tainted' : '!context.tainted');
  if (when.amountAbove !== undefined) out.push(`(context.hasAmount && context.amount > ${int(when.amountAbove, 'amountAbove')})`);
  if (when.timeWindow) {
    const w = when.timeWindow;
    const i = zones.indexOf(w.timeZone);
    const d = `context.clk${i}d`;
    const m = `context.clk${i}m`;
    const from = minutesOf(w.from);
    const to = minutesOf(w.to);
    const inTime = from < to ? `(${m} >= ${from} && ${m} < ${to})` : `(${m} >= ${from} || ${m} < ${to})`;
    const inside = `([${w.days.join(', ')}].contains(${d}) && ${inTime})`;
    out.push(w.outside ? `!${inside}` : inside);
  }
  return out;
}

function predicate(p: Pred, zones: string[]): string {
  const scope =
    p.scope.type === 'group'
      ? [`principal in Group::${str(p.scope.id)}`]
      : p.scope.type === 'workflow'
        ? [`context.workflow == ${str(p.scope.id)}`]
        : p.scope.type === 'user'
          ? [`principal == User::${str(p.scope.id)}`]
          : [];
  const all = [...scope, ...conditions(p.when, zones)];
  return all.length ? all.join(' && ') : 'true';
}

function render(d: Deny, zones: string[]): string {
  const head = `forbid (principal, action in [${d.levels.map((l) => `Action::${str(ACTION[l])}`).join(', ')}], resource == ActionType::${str(d.action)})`;
  const when = [...(d.when ? [`(${d.when.map((p) => `(${predicate(p, zones)})`).join(' || ')})`] : []), ...(d.rateLimit ? [`context.rateExceeded.contains(${str(d.rateLimit)})`] : [])];
  const unless = d.unless.map((p) => `(${predicate(p, zones)})`);
  return `// ${d.origin}\n${head}${when.length ? `\nwhen { ${when.join(' && ')} }` : ''}${unless.length ? `\nunless { ${unless.join(' || ')} }` : ''};`;
}

export interface CedarPolicy {
  id: string;
  text: string;
  zones: string[];
  statements: number;
}

let nextId = 0;
/** Translates and preparses the document; throws if Cedar refuses it. */
export function compileCedar(doc: PolicyDocument): CedarPolicy {
  const zones = timeZonesOf(doc);
  const statements = denyStatements(doc);
  const text = ['permit (principal, action, resource);', ...statements.map((d) => render(d, zones))].join('\n\n');
  const id = `bench-${nextId++}`;
  const parsed = cedar.preparsePolicySet(id, { staticPolicies: text });
  if (parsed.type !== 'success') throw new Error(`Cedar refused the policy: ${parsed.errors.map((e) => e.message).join('; ')}`);
  return { id, text, zones, statements: statements.length + 1 };
}

/** A policy set that permits everything, with the same context: the cost of one call to Cedar. */
export function cedarPermitAll(like: CedarPolicy): CedarPolicy {
  const id = `bench-${nextId++}`;
  const text = 'permit (principal, action, resource);';
  const parsed = cedar.preparsePolicySet(id, { staticPolicies: text });
  if (parsed.type !== 'success') throw new Error('Cedar refused a permit-all policy');
  return { id, text, zones: like.zones, statements: 1 };
}

type CedarValue = string | number | boolean | string[] | Record<string, string>;

/** The request context from the normalised facts. */
export function cedarContext(p: CedarPolicy, f: Facts): Record<string, CedarValue> {
  if (f.resources.length > MAX_SLOTS || f.hosts.length > MAX_SLOTS) throw new Error(`more than ${MAX_SLOTS} resources/hosts: the Cedar translation has ${MAX_SLOTS} slots`);
  const res: Record<string, string> = {};
  for (let i = 0; i < f.resources.length; i++) res[`r${i}`] = f.resources[i];
  const hosts: Record<string, string> = {};
  for (let i = 0; i < f.hosts.length; i++) hosts[`h${i}`] = f.hosts[i];
  const ctx: Record<string, CedarValue> = {
    workflow: f.workflow ?? '',
    connector: f.connector ?? '',
    res,
    hosts,
    recipientScope: f.recipientScope,
    recipientDomains: f.recipientDomains,
    invitesOthers: f.invitesOthers,
    labels: f.labels,
    tainted: f.tainted,
    hasAmount: f.amount !== null,
    amount: f.amount === null ? 0 : Number(int(f.amount, 'amount')),
    rateExceeded: f.rateExceeded,
  };
  for (let i = 0; i < p.zones.length; i++) {
    const { day, minute } = localClock(f.at, p.zones[i]);
    ctx[`clk${i}d`] = day;
    ctx[`clk${i}m`] = minute;
  }
  return ctx;
}

export interface CedarOptions {
  /** Fail on evaluation errors (a forbid whose condition errors is skipped by Cedar). */
  strict?: boolean;
}

const ASK: readonly ('autonomous' | 'batched' | 'watched')[] = ['autonomous', 'batched', 'watched'];
const ACTION_UID = ASK.map((l) => ({ type: 'Action', id: ACTION[l] }));

function failed(what: string, detail: unknown): never {
  throw new Error(`${what}: ${JSON.stringify(detail).slice(0, 500)}`);
}

// Run with --no-turbo-inline-js-wasm-calls (scripts/bench.mjs does): Node 20's V8 otherwise aborts
// when a GC inside the wasm call lazily deoptimises this function.

/** The level Cedar decides: ask autonomous, batched, watched in order; none allowed = forbidden. */
export function cedarLevel(p: CedarPolicy, f: Facts, opts: CedarOptions = {}): Level {
  const principal = { type: 'User', id: f.userId };
  const resource = { type: 'ActionType', id: f.type };
  const parents: { type: string; id: string }[] = [];
  for (let i = 0; i < f.groups.length; i++) parents.push({ type: 'Group', id: f.groups[i] });
  const entities = [{ uid: principal, attrs: {}, parents }];
  const context = cedarContext(p, f);
  for (let k = 0; k < ASK.length; k++) {
    const answer = cedar.statefulIsAuthorized({ principal, action: ACTION_UID[k], resource, context, entities, preparsedPolicySetId: p.id });
    if (answer.type !== 'success') failed('Cedar failed', answer.errors);
    if (opts.strict && answer.response.diagnostics.errors.length) failed('Cedar evaluation errors', answer.response.diagnostics.errors);
    if (answer.response.decision === 'allow') return ASK[k];
  }
  return 'forbidden';
}

export const cedarVersion = (): string => cedar.getCedarVersion();
