/**
 * Deterministic generators for the policy benchmark (seeded PRNG, no fast-check, so that a run
 * can produce millions of cases cheaply and every run sees the same ones).
 *
 * - `realisticWorld` / `realisticPolicy(world, n, seed)` / `realisticCase(...)`: an org with
 *   20 groups, 300 members (each in 1–3 groups), 25 workflows; N rules spread over the four
 *   scopes (org 15 %, group 35 %, workflow 20 %, user 30 %) on the catalog's action types, with
 *   conditions that fit each action family (path globs for files, recipients for mail, hosts for
 *   web/SaaS, amounts for payments, invitees for calendar) plus labels, taint, connectors and
 *   business-hour windows in three time zones; forbidden areas, rate limits and approval routes.
 *   Actions are drawn with realistic weights and contexts that match those conditions often.
 *   The globs used here are all ones Cedar's `like` can express exactly (see policy-cedar.ts).
 * - `densePolicy` / `denseCase`: small pools (like libs/policy/test/gen.ts) so that random
 *   conditions match random actions often, with the whole glob language ("?", several "*"),
 *   random baselines and overlapping rules — the adversarial half of the differential runs.
 */
import type { ActionContext, ActionType, Conditions, Level, OrgInfo, PolicyDocument, PolicyPrincipal, Rule } from '@steward/policy';

export type Rng = () => number;

/** mulberry32: tiny, fast, good enough for test data. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const int = (r: Rng, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const chance = (r: Rng, p: number): boolean => r() < p;
/** Between min and max distinct elements, in pool order. */
export function some<T>(r: Rng, xs: readonly T[], min: number, max: number): T[] {
  const n = Math.min(xs.length, int(r, min, max));
  const idx = xs.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => xs[i]);
}
function weighted<T extends string>(r: Rng, table: Record<T, number>): T {
  const entries = Object.entries(table) as [T, number][];
  let x = r() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of entries) {
    x -= w;
    if (x < 0) return k;
  }
  return entries[entries.length - 1][0];
}

const LEVEL_ORDER: Level[] = ['autonomous', 'batched', 'watched', 'forbidden'];
const FLOOR: Partial<Record<string, Level>> = { 'email.send': 'watched', 'payment.execute': 'forbidden' };
function atLeastFloors(l: Level, actions: readonly string[]): Level {
  return actions.reduce<Level>((acc, a) => (FLOOR[a] && LEVEL_ORDER.indexOf(FLOOR[a]!) > LEVEL_ORDER.indexOf(acc) ? FLOOR[a]! : acc), l);
}

const uuid = (prefix: string, i: number) => `${prefix}-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;

// ---------------------------------------------------------------------------------------------
// Realistic
// ---------------------------------------------------------------------------------------------

export interface World {
  org: OrgInfo;
  groups: string[];
  users: PolicyPrincipal[];
  /** Members that some user-scoped rule names (drawn more often as principals). */
  powerUsers: PolicyPrincipal[];
  workflows: string[];
}

const WORKFLOWS = [
  'weekly-brief', 'contract-triage', 'invoice-intake', 'board-pack', 'sales-followup', 'recruiting-screen',
  'expense-review', 'release-notes', 'incident-summary', 'vendor-onboarding', 'customer-renewal', 'press-monitor',
  'meeting-notes', 'kpi-report', 'security-review', 'hr-onboarding', 'payroll-check', 'market-research',
  'due-diligence', 'support-escalation', 'content-calendar', 'grant-writing', 'audit-prep', 'tax-filing', 'okr-review',
];

export function realisticWorld(seed = 1): World {
  const r = rng(seed);
  const groups = Array.from({ length: 20 }, (_, i) => uuid('0195a000', i + 1));
  const users = Array.from({ length: 300 }, (_, i) => ({
    userId: uuid('0195b000', i + 1),
    groupIds: some(r, groups, 1, 3),
    email: `user${i + 1}@acme.example`,
  }));
  return { org: { domains: ['acme.example', 'acme-corp.example'] }, groups, users, powerUsers: users.slice(0, 40), workflows: WORKFLOWS };
}

/** How often each action type is asked for (model calls and reads dominate). */
const TRAFFIC: Record<ActionType, number> = {
  'file.read': 10, 'file.create': 5, 'file.update': 6, 'file.delete': 2, 'email.read': 8, 'email.draft': 5,
  'email.send': 5, 'drive.read': 7, 'drive.create': 3, 'drive.update': 3, 'chat.send': 5, 'calendar.create': 3,
  'web.read': 8, 'saas.read': 5, 'saas.write': 2, 'git.push': 2, 'payment.execute': 1, 'hr.write': 0.5,
  'contract.send': 0.5, 'data.egress_pii': 0.5, 'model.invoke': 10, unknown: 1,
};
/** Rules are written more often about risky actions than their traffic share says. */
const RULED: Record<ActionType, number> = {
  'file.read': 4, 'file.create': 5, 'file.update': 6, 'file.delete': 6, 'email.read': 4, 'email.draft': 6,
  'email.send': 8, 'drive.read': 4, 'drive.create': 4, 'drive.update': 5, 'chat.send': 6, 'calendar.create': 4,
  'web.read': 5, 'saas.read': 4, 'saas.write': 6, 'git.push': 5, 'payment.execute': 2, 'hr.write': 2,
  'contract.send': 2, 'data.egress_pii': 2, 'model.invoke': 4, unknown: 3,
};
const FAMILY_OF = (a: string) => a.split('.')[0];

const CONNECTORS: Record<string, string[]> = {
  file: ['local-fs', 'gdrive'], email: ['gmail', 'outlook'], drive: ['gdrive', 'onedrive'], chat: ['slack', 'teams'],
  calendar: ['gcal', 'outlook'], web: ['fetch', 'search'], saas: ['salesforce', 'factset', 'wordpress', 'hubspot'],
  git: ['github', 'gitlab'], payment: ['stripe'], hr: ['workday'], contract: ['docusign'], data: ['segment'],
  model: ['anthropic'], unknown: ['mcp-misc', 'mcp-legacy'],
};
/** Path globs: only forms Cedar can express exactly (one "*" segment, "**" runs, "**" + "/*suffix"). */
const RES_GLOBS = [
  '/finance/**', '/hr/**', '/legal/contracts/**', '/tmp/**', '/home/*/notes.txt', '/projects/*/README.md', '**/*.pdf',
  '**/*.xlsx', 'gdrive://shared/board/**', 'gdrive://shared/*/budget.xlsx', '/finance/*.csv', 'https://intranet.acme.example/**',
];
const RESOURCES = [
  '/finance/2026/q1.xlsx', '/finance/ledger.csv', '/hr/reviews/ann.docx', '/legal/contracts/acme-nda.pdf', '/tmp/build.log',
  '/home/ann/notes.txt', '/home/bob/notes.txt', '/home/bob/todo.md', '/projects/steward/README.md', '/projects/steward/src/main.ts',
  '/docs/handbook.pdf', 'gdrive://shared/board/minutes-2026-03.docx', 'gdrive://shared/sales/budget.xlsx',
  'gdrive://shared/sales/pipeline.xlsx', 'https://intranet.acme.example/wiki/onboarding', '/home/cy/photos/cat.png',
];
const HOST_GLOBS = ['*.salesforce.com', 'api.factset.com', '**.acme.example', '*.wordpress.com', 'pastebin.com', '*.ru', 'api.openai.com', '**.gov'];
const HOSTS = [
  'acme.my.salesforce.com', 'api.factset.com', 'files.acme.example', 'blog.wordpress.com', 'pastebin.com', 'news.example.ru',
  'api.openai.com', 'www.sec.gov', 'en.wikipedia.org', 'Docs.Acme.Example',
];
const INTERNAL = ['ann@acme.example', 'bob@acme.example', 'cy@sub.acme.example', 'dee@acme-corp.example', 'ed@acme.example'];
const EXTERNAL = ['jane@partner.example', 'raj@bigclient.example', 'someone@gmail.com', 'li@supplier.example', 'Max@Partner.Example'];
const RECIPIENT_DOMAINS = ['partner.example', 'bigclient.example', 'gmail.com', 'supplier.example'];
const LABELS = ['pii', 'confidential', 'financial', 'customer-data'];
const ZONES = ['Europe/Berlin', 'Asia/Tokyo', 'America/New_York'];
const OUTBOUND: ActionType[] = [
  'file.create', 'file.update', 'file.delete', 'email.draft', 'email.send', 'drive.create', 'drive.update', 'chat.send',
  'calendar.create', 'saas.write', 'git.push', 'payment.execute', 'hr.write', 'contract.send', 'data.egress_pii', 'model.invoke', 'unknown',
];
const ACTION_LIST = Object.keys(TRAFFIC) as ActionType[];

function ruleActions(r: Rng): ActionType[] {
  const first = weighted(r, RULED);
  const out = new Set<ActionType>([first]);
  if (chance(r, 0.4)) {
    const family = ACTION_LIST.filter((a) => FAMILY_OF(a) === FAMILY_OF(first));
    for (const a of some(r, family, 1, 2)) out.add(a);
  }
  if (chance(r, 0.15)) out.add(weighted(r, RULED));
  return [...out];
}

function timeWindow(r: Rng): NonNullable<Conditions['timeWindow']> {
  const business = chance(r, 0.7);
  return business
    ? { days: [1, 2, 3, 4, 5], from: pick(r, ['08:00', '09:00']), to: pick(r, ['17:00', '18:00', '19:30']), timeZone: pick(r, ZONES), outside: chance(r, 0.6) }
    : { days: some(r, [1, 2, 3, 4, 5, 6, 7], 1, 7), from: pick(r, ['22:00', '20:00']), to: pick(r, ['06:00', '07:00']), timeZone: pick(r, ZONES), ...(chance(r, 0.3) ? { outside: true } : {}) };
}

function realisticConditions(r: Rng, actions: ActionType[]): Conditions | undefined {
  if (chance(r, 0.3)) return undefined;
  const family = FAMILY_OF(actions[0]);
  const candidates: (keyof Conditions)[] = ['labels', 'tainted', 'timeWindow', 'connectors'];
  if (['file', 'drive'].includes(family)) candidates.push('resources', 'resources', 'resources');
  if (['email', 'contract'].includes(family) || actions[0] === 'payment.execute') candidates.push('recipients', 'recipients', 'recipientDomains');
  if (family === 'calendar') candidates.push('invitesOthers', 'invitesOthers', 'recipients');
  if (['web', 'saas', 'data'].includes(family)) candidates.push('hosts', 'hosts', 'hosts');
  if (family === 'payment') candidates.push('amountAbove', 'amountAbove');
  const when: Conditions = {};
  const n = int(r, 1, 3);
  for (let i = 0; i < n; i++) {
    const k = pick(r, candidates);
    if (k in when) continue;
    switch (k) {
      case 'labels':
        when.labels = some(r, LABELS, 1, 2);
        break;
      case 'tainted':
        when.tainted = chance(r, 0.8);
        break;
      case 'timeWindow':
        when.timeWindow = timeWindow(r);
        break;
      case 'connectors':
        when.connectors = some(r, CONNECTORS[family] ?? CONNECTORS.unknown, 1, 2);
        break;
      case 'resources':
        when.resources = some(r, RES_GLOBS, 1, 3);
        break;
      case 'recipients':
        when.recipients = chance(r, 0.7) ? 'external' : 'internal';
        break;
      case 'recipientDomains':
        when.recipientDomains = some(r, RECIPIENT_DOMAINS, 1, 2);
        break;
      case 'invitesOthers':
        when.invitesOthers = chance(r, 0.8);
        break;
      case 'hosts':
        when.hosts = some(r, HOST_GLOBS, 1, 3);
        break;
      case 'amountAbove':
        when.amountAbove = pick(r, [0, 100, 1000, 10000]);
        break;
    }
  }
  return when;
}

const REASONS = ['finance files are sensitive', 'keep a human on mail to clients', 'night-time changes need review', 'team wants drafts batched', 'trusted workflow', 'new joiner', 'regulator asked for it', 'low risk'];

/** A realistic N-rule policy for `world` (validate it with validatePolicy before use). */
export function realisticPolicy(world: World, n: number, seed: number): PolicyDocument {
  const r = rng(seed);
  const baseline: Record<string, Level> = {};
  for (const a of some(r, ACTION_LIST, 3, 8)) baseline[a] = atLeastFloors(weighted(r, { autonomous: 2, batched: 3, watched: 3, forbidden: 1 }), [a]);
  const rules: Rule[] = [];
  for (let i = 0; i < n; i++) {
    const tier = weighted(r, { org: 15, group: 35, workflow: 20, user: 30 });
    const scope: Rule['scope'] =
      tier === 'org'
        ? { type: 'org' }
        : tier === 'group'
          ? { type: 'group', id: pick(r, world.groups) }
          : tier === 'workflow'
            ? { type: 'workflow', id: pick(r, world.workflows) }
            : { type: 'user', id: pick(r, world.powerUsers).userId };
    const actions = ruleActions(r);
    const when = realisticConditions(r, actions);
    const level = atLeastFloors(weighted(r, { autonomous: 25, batched: 35, watched: 30, forbidden: 10 }), actions);
    rules.push({
      id: `${tier}.${FAMILY_OF(actions[0])}-${String(i).padStart(4, '0')}`,
      scope,
      actions,
      level,
      ...(when ? { when } : {}),
      reason: pick(r, REASONS),
      ...(chance(r, 0.1) ? { obligations: ['keep_undo_copy' as const] } : {}),
    });
  }
  const nAux = Math.max(2, Math.round(n / 25));
  const forbiddenAreas: PolicyDocument['forbiddenAreas'] = [];
  for (let i = 0; i < nAux; i++) {
    const kind = int(r, 0, 4);
    // Unconditional areas only on what is off-limits anyway (payments, HR, contracts, PII egress).
    const actions = kind === 4 ? some(r, ['payment.execute', 'hr.write', 'contract.send', 'data.egress_pii'] as ActionType[], 1, 2) : some(r, OUTBOUND, 1, 2);
    const when: Conditions | undefined =
      kind === 0
        ? { labels: ['pii'], recipients: 'external' }
        : kind === 1
          ? { resources: ['/hr/**', '/legal/contracts/**'].slice(0, int(r, 1, 2)) }
          : kind === 2
            ? { hosts: ['pastebin.com', '*.ru'] }
            : kind === 3
              ? { tainted: true, labels: ['confidential', 'customer-data'] }
              : undefined;
    forbiddenAreas.push({ id: `fa-${i}`, actions, ...(when ? { when } : {}), reason: `forbidden area ${i}` });
  }
  const rateLimits: PolicyDocument['rateLimits'] = [];
  for (let i = 0; i < nAux; i++) {
    rateLimits.push({
      id: `rl-${i}`,
      actions: some(r, OUTBOUND, 1, 2),
      max: pick(r, [10, 20, 50, 100]),
      per: pick(r, ['minute', 'hour', 'day'] as const),
      by: pick(r, ['user', 'org'] as const),
      then: pick(r, ['batched', 'watched', 'forbidden'] as const),
      reason: `rate limit ${i}`,
    });
  }
  const approvals: PolicyDocument['approvals'] = [0, 1, 2].map((i) => ({ id: `ap-${i}`, actions: some(r, OUTBOUND, 1, 3), approverGroup: pick(r, world.groups), quorum: int(r, 1, 2) }));
  return { baseline, rules, rateLimits, approvals, forbiddenAreas };
}

export interface Case {
  principal: PolicyPrincipal;
  action: ActionType;
  context: ActionContext;
}

const T0 = Date.UTC(2026, 2, 2); // a Monday
const TWO_WEEKS = 14 * 24 * 3600 * 1000;

/** One realistic action by a member of `world` under `doc` (for rate-limit ids). */
export function realisticCase(r: Rng, world: World, doc: PolicyDocument): Case {
  const principal = chance(r, 0.3) ? pick(r, world.powerUsers) : pick(r, world.users);
  const action = weighted(r, TRAFFIC);
  const family = FAMILY_OF(action);
  const ctx: ActionContext = { at: new Date(T0 + Math.floor(r() * TWO_WEEKS)) };
  if (chance(r, 0.9)) ctx.connector = pick(r, CONNECTORS[family] ?? CONNECTORS.unknown);
  if (['file', 'drive', 'git'].includes(family)) ctx.resources = some(r, RESOURCES, 1, 3);
  if (['web', 'saas', 'data'].includes(family)) ctx.hosts = some(r, HOSTS, 1, 2);
  if (['email', 'contract', 'payment'].includes(family)) {
    const k = int(r, 1, 4);
    ctx.recipients = Array.from({ length: k }, () => (chance(r, 0.65) ? pick(r, INTERNAL) : pick(r, EXTERNAL)));
  }
  if (family === 'calendar') ctx.attendees = chance(r, 0.4) ? [principal.email!] : [principal.email!, ...some(r, [...INTERNAL, ...EXTERNAL], 1, 3)];
  if (family === 'payment') ctx.amount = pick(r, [20, 99, 150, 999, 2500, 50000]);
  const labels = LABELS.filter((_, i) => chance(r, [0.2, 0.15, 0.1, 0.05][i]));
  if (labels.length) ctx.labels = labels;
  if (chance(r, 0.15)) ctx.tainted = true;
  if (chance(r, 0.4)) ctx.workflow = pick(r, world.workflows);
  if (chance(r, 0.05)) {
    const limits = doc.rateLimits.filter((l) => l.actions.includes(action));
    if (limits.length) ctx.rateExceeded = [pick(r, limits).id];
  }
  return { principal, action, context: ctx };
}

// ---------------------------------------------------------------------------------------------
// Dense (adversarial): small pools, the whole glob language
// ---------------------------------------------------------------------------------------------

const D_GROUPS = ['0195a000-0000-7000-8000-000000000001', '0195a000-0000-7000-8000-000000000002', '0195a000-0000-7000-8000-000000000003'];
const D_USERS = ['0195b000-0000-7000-8000-000000000001', '0195b000-0000-7000-8000-000000000002'];
const D_OUTSIDER = '0195b000-0000-7000-8000-0000000000ff';
const D_WORKFLOWS = ['weekly-brief', 'contract-triage'];
const D_ACTIONS: ActionType[] = ['file.delete', 'file.update', 'email.send', 'email.draft', 'calendar.create', 'web.read', 'payment.execute', 'model.invoke', 'saas.write', 'unknown'];
export const DENSE_ORG: OrgInfo = { domains: ['acme.example'] };
const D_RESOURCES = ['/tmp/x.log', '/finance/q1.xlsx', '/home/ann/doc.txt', 'https://intranet/a', '/finance/2026/plan.txt', '/a/b/c/d.txt'];
const D_GLOBS = ['/tmp/**', '/finance/*', '**/*.txt', '/home/*/doc.txt', '**', '/finance/????/*', 'https://*/a', '/*/*/*/*.txt', '**/b/**', '*'];
const D_HOSTS = ['api.example.com', 'evil.test', 'files.acme.example', 'API.Example.com'];
const D_HOST_GLOBS = ['*.example.com', 'evil.test', '**.acme.example', '*.EXAMPLE.com', '?vil.test'];
const D_RECIPIENTS = ['ann@acme.example', 'bob@partner.example', 'cy@sub.acme.example', 'Dee@ACME.example'];
const D_LABELS = ['pii', 'confidential'];
const D_LEVELS: Level[] = ['autonomous', 'batched', 'watched', 'forbidden'];

function denseConditions(r: Rng): Conditions | undefined {
  if (chance(r, 0.25)) return undefined;
  const when: Conditions = {};
  const keys = some(r, ['connectors', 'resources', 'hosts', 'recipients', 'recipientDomains', 'invitesOthers', 'labels', 'tainted', 'amountAbove', 'timeWindow'] as const, 1, 3);
  for (const k of keys) {
    if (k === 'connectors') when.connectors = some(r, ['gmail', 'drive', 'slack'], 1, 2);
    if (k === 'resources') when.resources = some(r, D_GLOBS, 1, 3);
    if (k === 'hosts') when.hosts = some(r, D_HOST_GLOBS, 1, 2);
    if (k === 'recipients') when.recipients = pick(r, ['internal', 'external'] as const);
    if (k === 'recipientDomains') when.recipientDomains = some(r, ['partner.example', 'acme.example', 'ACME.example'], 1, 2);
    if (k === 'invitesOthers') when.invitesOthers = chance(r, 0.5);
    if (k === 'labels') when.labels = some(r, D_LABELS, 1, 2);
    if (k === 'tainted') when.tainted = chance(r, 0.5);
    if (k === 'amountAbove') when.amountAbove = pick(r, [0, 100, 1000, 99.5]);
    if (k === 'timeWindow')
      when.timeWindow = {
        days: some(r, [1, 2, 3, 4, 5, 6, 7], 1, 7),
        from: pick(r, ['06:00', '09:00', '17:00', '22:30', '00:00']),
        to: pick(r, ['08:00', '12:00', '18:00', '23:59', '06:30']),
        timeZone: pick(r, ['UTC', 'Asia/Tokyo', 'America/New_York', 'Asia/Kolkata']),
        outside: chance(r, 0.5),
      };
  }
  if (when.timeWindow && when.timeWindow.from === when.timeWindow.to) when.timeWindow.to = '23:59';
  return when;
}

/** An adversarial policy with up to `maxRules` rules. */
export function densePolicy(r: Rng, maxRules: number): PolicyDocument {
  const baseline: Record<string, Level> = {};
  for (const a of some(r, D_ACTIONS, 0, 6)) baseline[a] = atLeastFloors(pick(r, D_LEVELS), [a]);
  const n = int(r, 0, maxRules);
  const rules: Rule[] = [];
  for (let i = 0; i < n; i++) {
    const t = int(r, 0, 3);
    const scope: Rule['scope'] = t === 0 ? { type: 'org' } : t === 1 ? { type: 'group', id: pick(r, D_GROUPS) } : t === 2 ? { type: 'workflow', id: pick(r, D_WORKFLOWS) } : { type: 'user', id: pick(r, D_USERS) };
    const actions = some(r, D_ACTIONS, 1, 4);
    const when = denseConditions(r);
    rules.push({ id: `r${String(i).padStart(3, '0')}`, scope, actions, level: atLeastFloors(pick(r, D_LEVELS), actions), ...(when ? { when } : {}), reason: `rule ${i}` });
  }
  const rateLimits = Array.from({ length: int(r, 0, 3) }, (_, i) => ({
    id: `rl${i}`,
    actions: some(r, D_ACTIONS, 1, 4),
    max: 10,
    per: 'hour' as const,
    by: 'user' as const,
    then: pick(r, ['batched', 'watched', 'forbidden'] as const),
    reason: `limit ${i}`,
  }));
  const forbiddenAreas = Array.from({ length: int(r, 0, 2) }, (_, i) => {
    const when = chance(r, 0.7) ? denseConditions(r) : undefined;
    return { id: `fa${i}`, actions: some(r, D_ACTIONS, 1, 3), ...(when ? { when } : {}), reason: `area ${i}` };
  });
  return { baseline, rules, rateLimits, approvals: [], forbiddenAreas };
}

export function denseCase(r: Rng): Case {
  const principal: PolicyPrincipal = { userId: pick(r, [...D_USERS, D_OUTSIDER]), groupIds: some(r, D_GROUPS, 0, 3), email: 'ann@acme.example' };
  const context: ActionContext = { at: new Date(Date.UTC(2026, 10, 16) + Math.floor(r() * 7 * 24 * 3600 * 1000)) };
  if (chance(r, 0.7)) context.connector = pick(r, ['gmail', 'drive', 'slack', 'web']);
  if (chance(r, 0.7)) context.resources = some(r, D_RESOURCES, 0, 3);
  if (chance(r, 0.7)) context.hosts = some(r, D_HOSTS, 0, 2);
  if (chance(r, 0.7)) context.recipients = some(r, D_RECIPIENTS, 1, 3);
  if (chance(r, 0.7)) context.attendees = some(r, ['ann@acme.example', 'bob@partner.example', 'ANN@acme.example'], 0, 2);
  if (chance(r, 0.7)) context.amount = pick(r, [0, 50, 99.5, 100, 100.01, 5000]);
  if (chance(r, 0.7)) context.labels = some(r, D_LABELS, 0, 2);
  if (chance(r, 0.7)) context.tainted = chance(r, 0.5);
  if (chance(r, 0.7)) context.workflow = pick(r, D_WORKFLOWS);
  if (chance(r, 0.7)) context.rateExceeded = some(r, ['rl0', 'rl1', 'rl2'], 0, 3);
  return { principal, action: pick(r, D_ACTIONS), context };
}

// ---------------------------------------------------------------------------------------------
// ~10 KB of realistic tool arguments
// ---------------------------------------------------------------------------------------------

const FIRST = ['Anna', 'Bernd', 'Chiara', 'Daniel', 'Emiko', 'Farid', 'Greta', 'Hiro', 'Ines', 'Jonas', 'Keiko', 'Lars'];
const LAST = ['Schmidt', 'Rossi', 'Tanaka', 'Okafor', 'Novak', 'Garcia', 'Müller', 'Sato', 'Dubois', 'Jensen'];
const WORDS = (
  'the quarterly numbers look solid but we should revisit the forecast for the next period before the board meeting ' +
  'please find attached the revised draft of the agreement together with the notes from our call on tuesday and let me know ' +
  'if anything is unclear we agreed to move the delivery date by two weeks and to split the invoice into three parts'
).split(' ');

function sentence(r: Rng): string {
  const n = int(r, 8, 20);
  const w = Array.from({ length: n }, () => pick(r, WORDS));
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  return w.join(' ') + '.';
}

/**
 * Arguments of one tool call, JSON-serialised size ~10 KB: an outgoing mail (body with names,
 * external addresses, a phone number, sometimes a card number or an IBAN), a CRM export, or a
 * document update. Returns the args and the action type they belong to.
 */
export function tenKbArguments(r: Rng): { action: ActionType; args: Record<string, unknown> } {
  const person = () => `${pick(r, FIRST)} ${pick(r, LAST)}`;
  const kind = int(r, 0, 2);
  const target = 10 * 1024;
  if (kind === 0) {
    const paras: string[] = [`Dear ${person()},`];
    const extras = [
      `You can reach me on +44 20 7946 ${int(r, 1000, 9999)} or at ${pick(r, ['jane.doe', 'raj', 'li.wei'])}@partner.example.`,
      chance(r, 0.5) ? 'Card on file: 4111 1111 1111 1111 (exp 12/28).' : 'Please wire the deposit to DE89 3704 0044 0532 0130 00.',
      `Copying ${person()} (${pick(r, ['ann', 'bob', 'ed'])}@acme.example) for the numbers.`,
    ];
    let body = paras.join('\n\n');
    let i = 0;
    while (JSON.stringify(body).length < target - 600) {
      body += '\n\n' + Array.from({ length: int(r, 3, 6) }, () => sentence(r)).join(' ');
      if (i < extras.length && chance(r, 0.3)) body += ' ' + extras[i++];
    }
    while (i < extras.length) body += ' ' + extras[i++];
    body += `\n\nBest regards,\n${person()}\nAcme Corp`;
    const args = { to: ['jane.doe@partner.example'], cc: ['bob@acme.example', 'raj@bigclient.example'], subject: 'Revised agreement and next steps', body };
    return { action: 'email.send', args: pad(args, target) };
  }
  if (kind === 1) {
    const records: Record<string, unknown>[] = [];
    const args = { object: 'Contact', operation: 'upsert', records };
    while (JSON.stringify(args).length < target - 400) {
      const name = person();
      records.push({
        Name: name,
        Email: `${name.split(' ')[0].toLowerCase()}.${int(r, 1, 99)}@${pick(r, ['bigclient.example', 'supplier.example', 'acme.example'])}`,
        Phone: chance(r, 0.3) ? `+1 (415) 555-${int(r, 1000, 9999)}` : '',
        Company: pick(r, ['Big Client Ltd', 'Supplier GmbH', 'Acme']),
        Stage: pick(r, ['Prospect', 'Qualified', 'Closed Won']),
        Notes: sentence(r),
      });
    }
    return { action: 'saas.write', args: pad(args, target) };
  }
  const sections: { heading: string; text: string }[] = [];
  const args = { path: '/projects/steward/board-update.md', mode: 'overwrite', sections };
  while (JSON.stringify(args).length < target - 500) sections.push({ heading: sentence(r).slice(0, 40), text: Array.from({ length: int(r, 2, 5) }, () => sentence(r)).join(' ') });
  sections.push({ heading: 'Contacts', text: `Questions to ${person()}, ${pick(r, ['ann', 'ed'])}@acme.example, 030 1234 5678.` });
  return { action: 'file.update', args: pad(args, target) };
}

/** Tops the arguments up to `target` bytes of JSON with more prose (a "footer" field). */
function pad(args: Record<string, unknown>, target: number): Record<string, unknown> {
  const missing = target - JSON.stringify(args).length - 13;
  if (missing <= 0) return args;
  let footer = '';
  while (footer.length < missing) footer += ' ' + WORDS[footer.length % WORDS.length];
  return { ...args, footer: footer.slice(0, missing) };
}
