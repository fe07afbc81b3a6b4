/**
 * A naive reference evaluator, written from the README's resolution rules and nothing
 * else: no precompilation, no shared helpers with the engine (its own glob matcher, its
 * own recipient and clock logic). Slow on purpose; used only to check decide().
 */
import type { PolicyDocument } from '../src/document';

type Level = 'autonomous' | 'batched' | 'watched' | 'forbidden';
const ORDER: Level[] = ['autonomous', 'batched', 'watched', 'forbidden'];
const worse = (a: Level, b: Level): Level => (ORDER.indexOf(a) >= ORDER.indexOf(b) ? a : b);

const DEFAULTS: Record<string, Level> = {
  'file.read': 'autonomous', 'file.create': 'batched', 'file.update': 'batched', 'file.delete': 'watched',
  'email.read': 'batched', 'email.draft': 'batched', 'email.send': 'watched', 'drive.read': 'autonomous',
  'drive.create': 'batched', 'drive.update': 'watched', 'chat.send': 'watched', 'calendar.create': 'batched',
  'web.read': 'autonomous', 'saas.read': 'autonomous', 'saas.write': 'watched', 'git.push': 'watched',
  'payment.execute': 'forbidden', 'hr.write': 'forbidden', 'contract.send': 'forbidden', 'data.egress_pii': 'forbidden',
  'model.invoke': 'autonomous', unknown: 'watched',
};
const FLOORS: Record<string, Level> = { 'email.send': 'watched', 'payment.execute': 'forbidden', unknown: 'watched' };

export interface RefInput {
  userId: string;
  groups: string[];
  email?: string;
  action: string;
  workflow?: string;
  connector?: string;
  resources?: string[];
  hosts?: string[];
  recipients?: string[];
  /** The action reaches people outside the org whatever its recipients: they count as external. */
  outside?: boolean;
  attendees?: string[];
  amount?: number;
  labels?: string[];
  tainted?: boolean;
  at: Date;
  rateExceeded?: string[];
  orgDomains: string[];
  /** Decided for this one recipient domain alone (the recipients' scope still theirs all). */
  onlyDomain?: string;
}

/** Glob match by recursion: "**" any run, "*" any run without "/", "?" one non-"/". */
function globMatch(glob: string, text: string): boolean {
  if (glob === '') return text === '';
  if (glob.startsWith('**')) {
    for (let i = 0; i <= text.length; i++) if (globMatch(glob.slice(2), text.slice(i))) return true;
    return false;
  }
  if (glob[0] === '*') {
    for (let i = 0; i <= text.length; i++) {
      if (i > 0 && text[i - 1] === '/') break;
      if (globMatch(glob.slice(1), text.slice(i))) return true;
    }
    return false;
  }
  if (text === '') return false;
  if (glob[0] === '?') return text[0] !== '/' && globMatch(glob.slice(1), text.slice(1));
  return glob[0] === text[0] && globMatch(glob.slice(1), text.slice(1));
}

function internal(address: string, domains: string[]): boolean {
  const d = address.split('@').pop()!.toLowerCase();
  return domains.some((x) => d === x || d.endsWith('.' + x));
}

function clock(at: Date, timeZone: string): { day: number; minute: number } {
  const local = new Date(at.toLocaleString('en-US', { timeZone }));
  const day = local.getDay() === 0 ? 7 : local.getDay();
  return { day, minute: local.getHours() * 60 + local.getMinutes() };
}

type When = NonNullable<PolicyDocument['rules'][number]['when']>;

function conditionsHold(when: When | undefined, x: RefInput): boolean {
  if (!when) return true;
  if (when.connectors && !(x.connector && when.connectors.includes(x.connector))) return false;
  if (when.resources && !(x.resources ?? []).some((r) => when.resources!.some((g) => globMatch(g, r)))) return false;
  if (when.hosts && !(x.hosts ?? []).some((h) => when.hosts!.some((g) => globMatch(g.toLowerCase(), h.toLowerCase())))) return false;
  if (when.recipients && x.outside === true) {
    if (when.recipients === 'internal') return false;
  } else if (when.recipients) {
    const rs = x.recipients ?? [];
    if (rs.length === 0) return false;
    const allInside = rs.every((r) => internal(r, x.orgDomains));
    if (when.recipients === 'internal' && !allInside) return false;
    if (when.recipients === 'external' && allInside) return false;
  }
  const domains = x.onlyDomain !== undefined ? [x.onlyDomain] : (x.recipients ?? []).map((r) => r.split('@').pop()!.toLowerCase());
  // A domain or any of its subdomains.
  if (when.recipientDomains && !domains.some((d) => when.recipientDomains!.map((w) => w.toLowerCase()).some((w) => d === w || d.endsWith(`.${w}`)))) return false;
  if (when.invitesOthers !== undefined) {
    const others = (x.attendees ?? []).filter((a) => a.toLowerCase() !== (x.email ?? '').toLowerCase());
    if ((others.length > 0) !== when.invitesOthers) return false;
  }
  if (when.labels && !(x.labels ?? []).some((l) => when.labels!.includes(l))) return false;
  if (when.tainted !== undefined && (x.tainted === true) !== when.tainted) return false;
  if (when.amountAbove !== undefined && !(typeof x.amount === 'number' && x.amount > when.amountAbove)) return false;
  if (when.timeWindow) {
    const w = when.timeWindow;
    const { day, minute } = clock(x.at, w.timeZone);
    const [fh, fm] = w.from.split(':').map(Number);
    const [th, tm] = w.to.split(':').map(Number);
    const from = fh * 60 + fm;
    const to = th * 60 + tm;
    let inside = w.days.includes(day) && (from < to ? minute >= from && minute < to : minute >= from || minute < to);
    if (w.outside) inside = !inside;
    if (!inside) return false;
  }
  return true;
}

/**
 * An action naming several resources, hosts, recipient domains or labels (in a dimension some rule
 * of the action has a condition on): decided for every combination of one value of each, the most
 * restrictive level standing; among decisions at that level, the one whose rule ids come first.
 */
export function referenceDecide(doc: PolicyDocument, x: RefInput): { level: Level; ruleIds: string[] } {
  const rules = doc.rules.filter((r) => r.actions.includes(x.action));
  const on = (key: 'resources' | 'hosts' | 'recipientDomains' | 'labels') => rules.some((r) => r.when?.[key] !== undefined);
  let inputs: RefInput[] = [x];
  const split = (values: string[], set: (y: RefInput, v: string) => RefInput) => {
    if (new Set(values).size > 1) inputs = inputs.flatMap((y) => values.map((v) => set(y, v)));
  };
  if (on('resources')) split(x.resources ?? [], (y, v) => ({ ...y, resources: [v] }));
  if (on('hosts')) split(x.hosts ?? [], (y, v) => ({ ...y, hosts: [v] }));
  if (on('recipientDomains')) split([...new Set((x.recipients ?? []).map((r) => r.split('@').pop()!.toLowerCase()))], (y, v) => ({ ...y, onlyDomain: v }));
  if (on('labels')) split(x.labels ?? [], (y, v) => ({ ...y, labels: [v] }));
  let best: { level: Level; ruleIds: string[] } | null = null;
  for (const y of inputs) {
    const d = decideOnce(doc, y);
    if (!best || ORDER.indexOf(d.level) > ORDER.indexOf(best.level) || (d.level === best.level && d.ruleIds.join('\u0000') < best.ruleIds.join('\u0000'))) best = d;
  }
  return best!;
}

function decideOnce(doc: PolicyDocument, x: RefInput): { level: Level; ruleIds: string[] } {
  let level: Level = (doc.baseline[x.action] as Level) ?? DEFAULTS[x.action];
  let ids: string[] = [doc.baseline[x.action] ? `baseline.${x.action}` : `catalog.${x.action}`];
  const scopes: ((r: PolicyDocument['rules'][number]) => boolean)[] = [
    (r) => r.scope.type === 'user' && r.scope.id === x.userId,
    (r) => r.scope.type === 'workflow' && r.scope.id === x.workflow,
    (r) => r.scope.type === 'group' && x.groups.includes(r.scope.id),
    (r) => r.scope.type === 'org' && !r.guard,
  ];
  for (const inScope of scopes) {
    const matching = doc.rules.filter((r) => inScope(r) && r.actions.includes(x.action) && conditionsHold(r.when, x));
    if (matching.length === 0) continue;
    const top = matching.map((r) => r.level).reduce(worse);
    level = top;
    ids = matching.filter((r) => r.level === top).map((r) => r.id).sort();
    break;
  }
  const extra: string[] = [];
  // Guards: whole-org rules that only raise, after the scopes (the most restrictive matching ones, ids sorted).
  const guards = doc.rules.filter((r) => r.guard && r.actions.includes(x.action) && conditionsHold(r.when, x));
  if (guards.length) {
    const top = guards.map((r) => r.level).reduce(worse);
    if (ORDER.indexOf(top) > ORDER.indexOf(level)) {
      level = top;
      extra.push(...guards.filter((r) => r.level === top).map((r) => r.id).sort());
    }
  }
  const floor = FLOORS[x.action];
  if (floor && ORDER.indexOf(floor) > ORDER.indexOf(level)) {
    level = floor;
    extra.push(`floor.${x.action}`);
  }
  const areas = doc.forbiddenAreas.filter((a) => a.actions.includes(x.action) && conditionsHold(a.when, x)).map((a) => a.id).sort();
  if (areas.length) {
    level = 'forbidden';
    extra.push(...areas);
  }
  const limits = doc.rateLimits.filter((l) => l.actions.includes(x.action) && (x.rateExceeded ?? []).includes(l.id)).sort((a, b) => a.id.localeCompare(b.id));
  for (const l of limits) {
    level = worse(level, l.then);
    extra.push(l.id);
  }
  return { level, ruleIds: [...ids, ...extra] };
}
