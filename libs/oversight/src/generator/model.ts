import type { ActionType, Level, PolicyDocument } from '@steward/policy';
import { seedPolicy } from '@steward/policy';
import { Rng } from './random';

/** The org the generator simulates: teams with their work, people with their habits. */

export interface TeamSpec {
  key: string;
  name: string;
  share: number;
  /** Action type → weight of the team's typical day. */
  mix: Partial<Record<ActionType, number>>;
  /** The SaaS this team reads and writes. */
  saas: string[];
  /** The workflow its tasks mostly run under. */
  workflow: string;
}

export const TEAMS: TeamSpec[] = [
  { key: 'strategy', name: 'Strategy', share: 0.08, workflow: 'weekly-exec-brief', saas: ['factset', 'msci'], mix: { 'model.invoke': 0.6, 'drive.read': 6, 'file.read': 3, 'web.read': 4, 'saas.read': 4, 'drive.create': 1, 'drive.update': 1.5, 'chat.send': 1, 'email.read': 2, 'email.draft': 0.5, 'file.create': 0.6, 'file.delete': 0.2 } },
  { key: 'legal', name: 'Legal', share: 0.1, workflow: 'legal-triage', saas: ['docusign', 'legalzoom'], mix: { 'model.invoke': 0.6, 'saas.read': 5, 'drive.read': 4, 'file.read': 2, 'email.read': 3, 'email.send': 0.8, 'chat.send': 1.2, 'drive.update': 1, 'file.update': 0.8, 'web.read': 1, 'file.delete': 0.2 } },
  { key: 'finance', name: 'Finance', share: 0.14, workflow: 'expense-categorisation', saas: ['factset', 'salesforce'], mix: { 'model.invoke': 0.6, 'file.read': 6, 'file.create': 2, 'file.update': 2, 'drive.read': 3, 'saas.read': 2, 'email.read': 2, 'email.send': 0.5, 'file.delete': 0.4, 'payment.execute': 0.004 } },
  { key: 'ir', name: 'Investor relations', share: 0.06, workflow: 'ir-faq-refresh', saas: ['factset'], mix: { 'model.invoke': 0.6, 'drive.read': 8, 'file.read': 2, 'drive.update': 1.5, 'drive.create': 1, 'email.read': 1.5, 'email.draft': 1, 'saas.read': 2, 'web.read': 1 } },
  { key: 'sales', name: 'Sales', share: 0.2, workflow: 'crm-hygiene', saas: ['salesforce', 'apollo', 'clay', 'outreach'], mix: { 'model.invoke': 0.6, 'saas.read': 6, 'saas.write': 1.2, 'email.read': 3, 'email.draft': 1.5, 'email.send': 1, 'calendar.create': 1, 'web.read': 2, 'chat.send': 1 } },
  { key: 'marketing', name: 'Marketing', share: 0.12, workflow: 'media-mentions', saas: ['apollo', 'clay'], mix: { 'model.invoke': 0.6, 'web.read': 6, 'drive.read': 3, 'drive.create': 1.5, 'drive.update': 1.5, 'chat.send': 1.5, 'email.read': 1, 'saas.read': 1, 'file.delete': 0.3 } },
  { key: 'ceo-office', name: 'CEO office', share: 0.04, workflow: 'board-deck-check', saas: ['factset'], mix: { 'model.invoke': 0.6, 'drive.read': 5, 'file.read': 2, 'email.read': 3, 'email.draft': 1, 'calendar.create': 1.5, 'chat.send': 1, 'web.read': 2 } },
  { key: 'compliance', name: 'Compliance', share: 0.06, workflow: 'regulatory-memo', saas: ['msci', 'legalzoom'], mix: { 'model.invoke': 0.6, 'web.read': 4, 'drive.read': 4, 'file.read': 2, 'drive.create': 1, 'email.read': 2, 'saas.read': 2 } },
  { key: 'hr', name: 'People', share: 0.05, workflow: 'onboarding-packs', saas: ['salesforce'], mix: { 'model.invoke': 0.6, 'drive.read': 4, 'file.read': 2, 'email.read': 2, 'email.draft': 1, 'calendar.create': 2, 'drive.create': 1, 'hr.write': 0.004 } },
  { key: 'research', name: 'Research', share: 0.15, workflow: 'analyst-qa-drafts', saas: ['factset', 'msci'], mix: { 'model.invoke': 0.6, 'web.read': 5, 'saas.read': 5, 'drive.read': 4, 'drive.update': 1.2, 'file.read': 3, 'file.create': 1, 'chat.send': 0.8, 'file.delete': 0.3 } },
];

/** The connector each action type runs through (saas.* take the team's SaaS). */
export const CONNECTOR: Partial<Record<ActionType, string>> = {
  'file.read': 'files',
  'file.create': 'files',
  'file.update': 'files',
  'file.delete': 'files',
  'email.read': 'gmail',
  'email.draft': 'gmail',
  'email.send': 'gmail',
  'drive.read': 'google-drive',
  'drive.create': 'google-drive',
  'drive.update': 'google-drive',
  'chat.send': 'slack',
  'calendar.create': 'google-calendar',
  'web.read': 'web',
  'payment.execute': 'stripe',
  'hr.write': 'workday',
  'model.invoke': 'anthropic',
};

export const TOOL: Partial<Record<ActionType, string>> = {
  'file.read': 'read_file',
  'file.create': 'write_file',
  'file.update': 'edit_file',
  'file.delete': 'delete_file',
  'email.read': 'gmail.search',
  'email.draft': 'gmail.create_draft',
  'email.send': 'gmail.send',
  'drive.read': 'drive.get',
  'drive.create': 'drive.create',
  'drive.update': 'drive.update',
  'chat.send': 'slack.post_message',
  'calendar.create': 'calendar.create_event',
  'web.read': 'fetch',
  'saas.read': 'query',
  'saas.write': 'publish',
  'payment.execute': 'stripe.charge',
  'hr.write': 'workday.update',
  'model.invoke': 'messages.create',
};

/** Reads run as they are at Batched; these writes have no reversible form (Batched waits like Watched). */
export const READ_ONLY = new Set<ActionType>(['file.read', 'email.read', 'drive.read', 'web.read', 'saas.read']);
export const NO_REVERSIBLE_FORM = new Set<ActionType>(['saas.write', 'chat.send', 'email.send', 'payment.execute', 'hr.write', 'contract.send']);

export const SAAS_HOST: Record<string, string> = {
  factset: 'api.factset.com',
  msci: 'api.msci.com',
  docusign: 'eu.docusign.net',
  legalzoom: 'api.legalzoom.com',
  salesforce: 'acme.my.salesforce.com',
  apollo: 'api.apollo.io',
  clay: 'api.clay.com',
  outreach: 'api.outreach.io',
  wordpress: 'blog.acme-corp.example',
};

export const ORG_DOMAIN = 'acme-corp.example';
export const EXTERNAL_DOMAINS = ['client-one.example', 'partner.example', 'lawfirm.example', 'bank.example', 'gmail.com'];

export interface Person {
  id: string;
  index: number;
  email: string;
  name: string;
  /** Team index per day (a person may move once). */
  team: number;
  movesTo: number | null;
  movesOn: number | null;
  joinsOn: number;
  activity: number;
  /** Centre and spread of the working day, local hours. */
  centre: number;
  spread: number;
  weekendWorker: boolean;
  /** Personal weighting of each action type (habits). */
  habit: Partial<Record<ActionType, number>>;
  vacations: [number, number][];
  /** Median model cost of a task, micro-dollars. */
  costPerTask: number;
  approver: boolean;
  /** Approver's typical latency factor. */
  approverPace: number;
}

export function teamOf(p: Person, day: number): number {
  return p.movesOn !== null && day >= p.movesOn ? p.movesTo! : p.team;
}

/** The active policy of the generated org: the seed plus team rules (each condition kind in use). */
export function generatedPolicy(groups: Record<string, string>): PolicyDocument {
  const doc = seedPolicy();
  doc.rules.push(
    {
      id: 'grp.sales-crm-writes',
      scope: { type: 'group', id: groups.sales },
      actions: ['saas.write'],
      level: 'batched',
      when: { hosts: ['*.salesforce.com'] },
      reason: 'CRM updates by sales are reviewed in batches',
    },
    {
      id: 'grp.finance-files',
      scope: { type: 'group', id: groups.finance },
      actions: ['file.delete'],
      level: 'batched',
      when: { resources: ['/finance/scratch/**'] },
      reason: 'scratch files of finance are restorable',
    },
  );
  return doc;
}

/**
 * The draft with planted changes, and for each change the rule that predicts, from an event's
 * recorded inputs alone (not from the engine), whether its decision changes.
 */
export interface PlantedChange {
  id: string;
  description: string;
  predicts: (e: { user: string; groups: string[]; workflow: string | null; action: ActionType; level: Level; tainted: boolean }) => boolean;
}

export function plantedDraft(active: PolicyDocument, groups: Record<string, string>, deleter: string): { draft: PolicyDocument; changes: PlantedChange[] } {
  const draft: PolicyDocument = JSON.parse(JSON.stringify(active));
  draft.rules.push(
    { id: 'planted.user-no-deletes', scope: { type: 'user', id: deleter }, actions: ['file.delete'], level: 'forbidden', reason: 'deletions off for this user' },
    { id: 'planted.legal-saas-watched', scope: { type: 'workflow', id: 'legal-triage' }, actions: ['saas.read'], level: 'watched', reason: 'contract reads are approved' },
    { id: 'planted.research-drive-batched', scope: { type: 'group', id: groups.research }, actions: ['drive.update'], level: 'batched', reason: 'research drive edits reviewed in batches' },
  );
  const changes: PlantedChange[] = [
    { id: 'planted.user-no-deletes', description: 'one user may no longer delete files', predicts: (e) => e.user === deleter && e.action === 'file.delete' && e.level !== 'forbidden' },
    { id: 'planted.legal-saas-watched', description: 'SaaS reads in the legal triage workflow need approval', predicts: (e) => e.workflow === 'legal-triage' && e.action === 'saas.read' && e.level !== 'watched' },
    {
      id: 'planted.research-drive-batched',
      description: 'drive edits by research are Batched instead of Watched (a tainted task\'s stay Watched: the seed\'s guard)',
      predicts: (e) => e.groups.includes(groups.research) && e.action === 'drive.update' && !e.tainted && e.level !== 'batched' && e.level !== 'forbidden',
    },
  ];
  return { draft, changes };
}

export function makePeople(rng: Rng, count: number, days: number, idAt: (ms: number) => string, startMs: number): Person[] {
  const shares = TEAMS.map((t) => t.share);
  const people: Person[] = [];
  for (let i = 0; i < count; i++) {
    const team = TEAMS.indexOf(rng.weighted(TEAMS, shares));
    const habit: Partial<Record<ActionType, number>> = {};
    for (const [a, w] of Object.entries(TEAMS[team].mix)) habit[a as ActionType] = (w as number) * rng.logNormal(1, 0.35);
    const moves = rng.chance(0.1);
    const vacations: [number, number][] = [];
    for (let v = rng.int(1, 3); v > 0; v--) {
      const from = rng.int(0, days - 10);
      vacations.push([from, from + rng.int(5, 12)]);
    }
    people.push({
      id: idAt(startMs - 400 * 86_400_000 + i * 1000),
      index: i,
      email: `user${String(i).padStart(3, '0')}.${idAt(startMs).slice(-6)}@${ORG_DOMAIN}`,
      name: `User ${i}`,
      team,
      movesTo: moves ? (team + rng.int(1, TEAMS.length)) % TEAMS.length : null,
      movesOn: moves ? rng.int(30, days - 30) : null,
      joinsOn: rng.chance(0.06) ? rng.int(10, days - 40) : 0,
      activity: rng.logNormal(1, 0.45),
      centre: rng.normal(13, 1.1),
      spread: 1.6 + rng.next() * 1.2,
      weekendWorker: rng.chance(0.08),
      habit,
      vacations,
      costPerTask: rng.logNormal(40_000, 0.5),
      approver: i % 25 === 3,
      approverPace: rng.logNormal(1, 0.5),
    });
  }
  return people;
}
