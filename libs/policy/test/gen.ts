import fc from 'fast-check';
import { type Level, LEVELS, rank } from '../src/catalog';
import type { Conditions, PolicyDocument, Rule } from '../src/document';
import type { ActionContext, OrgInfo, PolicyPrincipal } from '../src/facts';

/** Small pools so that random conditions match random actions often. */
export const GROUPS = ['0195a000-0000-7000-8000-000000000001', '0195a000-0000-7000-8000-000000000002', '0195a000-0000-7000-8000-000000000003'];
export const USERS = ['0195b000-0000-7000-8000-000000000001', '0195b000-0000-7000-8000-000000000002'];
export const WORKFLOWS = ['weekly-brief', 'contract-triage'];
export const ACTIONS = ['file.delete', 'file.update', 'email.send', 'email.draft', 'calendar.create', 'web.read', 'payment.execute', 'model.invoke', 'saas.write', 'unknown'] as const;
export const ORG: OrgInfo = { domains: ['acme.example'] };
const RESOURCES = ['/tmp/x.log', '/finance/q1.xlsx', '/home/ann/doc.txt', 'https://intranet/a', '/finance/2026/plan.txt'];
const GLOBS = ['/tmp/**', '/finance/*', '**/*.txt', '/home/*/doc.txt', '**', '/finance/????/*', 'https://*/a'];
const HOSTS = ['api.example.com', 'evil.test', 'files.acme.example'];
const HOST_GLOBS = ['*.example.com', 'evil.test', '**.acme.example'];
const RECIPIENTS = ['ann@acme.example', 'bob@partner.example', 'cy@sub.acme.example'];
const LABELS = ['pii', 'confidential'];
const FLOOR: Partial<Record<string, Level>> = { 'email.send': 'watched', 'payment.execute': 'forbidden', unknown: 'watched' };

const level = fc.constantFrom(...LEVELS);
const sub = <T>(xs: readonly T[]) => fc.subarray([...xs], { minLength: 1 });

export const conditions: fc.Arbitrary<Conditions> = fc.record(
  {
    connectors: sub(['gmail', 'drive', 'slack']),
    resources: sub(GLOBS),
    hosts: sub(HOST_GLOBS),
    recipients: fc.constantFrom('internal' as const, 'external' as const),
    recipientDomains: sub(['partner.example', 'acme.example']),
    invitesOthers: fc.boolean(),
    labels: sub(LABELS),
    tainted: fc.boolean(),
    amountAbove: fc.constantFrom(0, 100, 1000),
    timeWindow: fc.record({
      days: sub([1, 2, 3, 4, 5, 6, 7]),
      from: fc.constantFrom('06:00', '09:00', '17:00', '22:30'),
      to: fc.constantFrom('08:00', '12:00', '18:00', '23:59'),
      timeZone: fc.constantFrom('UTC', 'Asia/Tokyo', 'America/New_York'),
      outside: fc.boolean(),
    }),
  },
  { requiredKeys: [] },
);

function atLeastFloors(l: Level, actions: readonly string[]): Level {
  return actions.reduce((acc, a) => (FLOOR[a] && rank(FLOOR[a]!) > rank(acc) ? FLOOR[a]! : acc), l);
}

const scope = fc.oneof(
  fc.constant({ type: 'org' as const }),
  fc.constantFrom(...GROUPS).map((id) => ({ type: 'group' as const, id })),
  fc.constantFrom(...WORKFLOWS).map((id) => ({ type: 'workflow' as const, id })),
  fc.constantFrom(...USERS).map((id) => ({ type: 'user' as const, id })),
);

const ruleBody = fc.record({
  scope,
  actions: sub(ACTIONS),
  level,
  when: fc.option(conditions, { nil: undefined, freq: 3 }),
  /** Made a guard when its scope is the org (one in three of those). */
  guard: fc.integer({ min: 0, max: 2 }).map((n) => n === 0),
});

export const policy: fc.Arbitrary<PolicyDocument> = fc
  .record({
    baseline: fc.dictionary(fc.constantFrom(...ACTIONS), level, { maxKeys: 6 }),
    rules: fc.array(ruleBody, { maxLength: 14 }),
    limits: fc.array(fc.record({ actions: sub(ACTIONS), then: fc.constantFrom('batched' as const, 'watched' as const, 'forbidden' as const) }), { maxLength: 3 }),
    areas: fc.array(fc.record({ actions: sub(ACTIONS), when: fc.option(conditions, { nil: undefined }) }), { maxLength: 2 }),
  })
  .map(({ baseline, rules, limits, areas }) => {
    const base: Record<string, Level> = {};
    for (const [a, l] of Object.entries(baseline)) base[a] = atLeastFloors(l, [a]);
    return {
      baseline: base,
      rules: rules.map((r, i): Rule => ({
        id: `r${String(i).padStart(2, '0')}`,
        scope: r.scope,
        actions: r.actions,
        level: atLeastFloors(r.level, r.actions),
        ...(r.when && Object.keys(r.when).length ? { when: r.when } : {}),
        reason: `rule ${i}`,
        ...(r.guard && r.scope.type === 'org' ? { guard: true } : {}),
      })),
      rateLimits: limits.map((l, i) => ({ id: `rl${i}`, actions: l.actions, max: 10, per: 'hour' as const, by: 'user' as const, then: l.then, reason: `limit ${i}` })),
      approvals: [],
      forbiddenAreas: areas.map((a, i) => ({ id: `fa${i}`, actions: a.actions, ...(a.when && Object.keys(a.when).length ? { when: a.when } : {}), reason: `area ${i}` })),
    };
  });

export const principal: fc.Arbitrary<PolicyPrincipal> = fc.record({
  userId: fc.constantFrom(...USERS, '0195b000-0000-7000-8000-0000000000ff'),
  groupIds: fc.subarray(GROUPS),
  email: fc.constant('ann@acme.example'),
});

export const context: fc.Arbitrary<ActionContext> = fc.record(
  {
    connector: fc.constantFrom('gmail', 'drive', 'slack', 'web'),
    resources: fc.subarray(RESOURCES),
    hosts: fc.subarray(HOSTS),
    recipients: fc.subarray(RECIPIENTS, { minLength: 1 }),
    outside: fc.boolean(),
    attendees: fc.subarray(['ann@acme.example', 'bob@partner.example']),
    amount: fc.constantFrom(0, 50, 100, 5000),
    labels: fc.subarray(LABELS),
    tainted: fc.boolean(),
    at: fc.integer({ min: Date.UTC(2026, 10, 16), max: Date.UTC(2026, 10, 23) }).map((t) => new Date(t)),
    workflow: fc.constantFrom(...WORKFLOWS),
    rateExceeded: fc.subarray(['rl0', 'rl1', 'rl2']),
  },
  { requiredKeys: ['at'] },
);

export const action = fc.constantFrom(...ACTIONS);
