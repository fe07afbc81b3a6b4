import fc from 'fast-check';
import { ACTION_TYPES, type ActionType, floorOf, type Level, rank } from '../src/catalog';
import { compileAbility, caslLevel } from '../src/casl';
import { validatePolicy, type PolicyDocument } from '../src/document';
import { compileConditions, compilePolicy, decide, decideFacts, explain } from '../src/engine';
import { SPLIT_MAX, toFacts } from '../src/facts';
import { seedPolicy } from '../src/seed';
import { action, context, GROUPS, ORG, policy, principal } from './gen';
import { referenceDecide } from './reference';

const RUNS = { numRuns: 400 };

function raisedOnly(doc: PolicyDocument, a: ActionType, f: ReturnType<typeof toFacts>): Level {
  // The part of a decision no scope can lower: the org's guards, floor, forbidden areas, exceeded limits.
  let l: Level = floorOf(a) ?? 'autonomous';
  for (const g of doc.rules) if (g.guard && g.actions.includes(a) && compileConditions(g.when)(f) && rank(g.level) > rank(l)) l = g.level;
  if (doc.forbiddenAreas.some((x) => x.actions.includes(a) && compileConditions(x.when)(f))) l = 'forbidden';
  for (const lim of doc.rateLimits) if (lim.actions.includes(a) && f.rateExceeded.includes(lim.id) && rank(lim.then) > rank(l)) l = lim.then;
  return l;
}
const max = (a: Level, b: Level): Level => (rank(a) >= rank(b) ? a : b);


describe('decide(): properties', () => {
  it('generates only valid policies (sanity of the generator)', () => {
    fc.assert(fc.property(policy, (doc) => validatePolicy(doc).ok), RUNS);
  });

  it('never decides below the floor of the action type', () => {
    fc.assert(
      fc.property(policy, principal, action, context, (doc, p, a, c) => {
        const floor = floorOf(a);
        return !floor || rank(decide(compilePolicy(doc), p, a, c, ORG).level) >= rank(floor);
      }),
      RUNS,
    );
  });

  it('never lets anything override a forbidden area', () => {
    fc.assert(
      fc.property(policy, principal, action, context, fc.constantFrom<Level>('autonomous', 'batched'), (doc, p, a, c, loose) => {
        // Even with a user rule asking for the loosest level.
        const withUser: PolicyDocument = { ...doc, rules: [...doc.rules, { id: 'zz.user', scope: { type: 'user', id: p.userId }, actions: [a], level: max(loose, floorOf(a) ?? 'autonomous'), reason: 'x' }] };
        const f = toFacts(p, a, c, ORG);
        const inArea = doc.forbiddenAreas.some((x) => x.actions.includes(a) && compileConditions(x.when)(f));
        return !inArea || decide(compilePolicy(withUser), p, a, c, ORG).level === 'forbidden';
      }),
      RUNS,
    );
  });

  it('lets a more specific matching scope beat a less specific one, and falls through a non-matching scope', () => {
    fc.assert(
      fc.property(policy, principal, action, context, fc.constantFrom<Level>('autonomous', 'batched', 'watched', 'forbidden'), (doc, p, a, c, wanted) => {
        const l = max(wanted, floorOf(a) ?? 'autonomous');
        const f = toFacts(p, a, c, ORG);
        const userRule = { id: 'zz.user', scope: { type: 'user' as const, id: p.userId }, actions: [a], level: l, reason: 'user' };
        const matching = decide(compilePolicy({ ...doc, rules: [...doc.rules.filter((r) => !(r.scope.type === 'user' && r.scope.id === p.userId)), userRule] }), p, a, c, ORG);
        const expected = max(l, raisedOnly(doc, a, f));
        const before = decide(compilePolicy(doc), p, a, c, ORG);
        const notMatching = decide(compilePolicy({ ...doc, rules: [...doc.rules, { ...userRule, when: { connectors: ['no-such-connector'] } }] }), p, a, c, ORG);
        const otherUser = decide(compilePolicy({ ...doc, rules: [...doc.rules, { ...userRule, scope: { type: 'user', id: '0195b000-0000-7000-8000-00000000abcd' } }] }), p, a, c, ORG);
        return matching.level === expected && matching.ruleIds[0] === 'zz.user' && notMatching.level === before.level && otherUser.level === before.level;
      }),
      RUNS,
    );
  });

  it("holds the org's guards over every more specific scope, and never lowers a level with one", () => {
    fc.assert(
      fc.property(policy, principal, action, context, fc.constantFrom<Level>('autonomous', 'batched', 'watched', 'forbidden'), (doc, p, a, c, g) => {
        const before = decide(compilePolicy(doc), p, a, c, ORG);
        const guard = { id: 'zz.guard', scope: { type: 'org' as const }, actions: [a], level: g, reason: 'guard', guard: true };
        // A person's own rule that would lower it: the guard still holds.
        const lowering = { id: 'zz.user', scope: { type: 'user' as const, id: p.userId }, actions: [a], level: floorOf(a) ?? ('autonomous' as Level), reason: 'user' };
        const guarded = decide(compilePolicy({ ...doc, rules: [...doc.rules, guard, lowering] }), p, a, c, ORG);
        const alone = decide(compilePolicy({ ...doc, rules: [...doc.rules, guard] }), p, a, c, ORG);
        return rank(guarded.level) >= rank(g) && rank(alone.level) === Math.max(rank(before.level), rank(g)) && (rank(g) <= rank(before.level) || alone.ruleIds.includes('zz.guard'));
      }),
      RUNS,
    );
  });

  it('lets the most restrictive of the user\'s groups win', () => {
    fc.assert(
      fc.property(fc.subarray(GROUPS, { minLength: 2 }), fc.array(fc.constantFrom<Level>('autonomous', 'batched', 'watched', 'forbidden'), { minLength: 2, maxLength: 3 }), action, context, (groups, levels, a, c) => {
        const rules = groups.map((g, i) => ({ id: `g${i}`, scope: { type: 'group' as const, id: g }, actions: [a], level: max(levels[i % levels.length], floorOf(a) ?? 'autonomous'), reason: `group ${i}` }));
        const doc: PolicyDocument = { baseline: {}, rules, rateLimits: [], approvals: [], forbiddenAreas: [] };
        const d = decide(compilePolicy(doc), { userId: 'u', groupIds: groups }, a, { ...c, rateExceeded: [] }, ORG);
        return d.level === rules.map((r) => r.level).reduce(max);
      }),
      RUNS,
    );
  });

  it('never depends on the order of rules within a scope', () => {
    fc.assert(
      fc.property(policy, principal, action, context, fc.func(fc.integer()), (doc, p, a, c, key) => {
        const shuffled = { ...doc, rules: [...doc.rules].sort((x, y) => key(x.id) - key(y.id)), forbiddenAreas: [...doc.forbiddenAreas].reverse(), rateLimits: [...doc.rateLimits].reverse() };
        const one = decide(compilePolicy(doc), p, a, c, ORG);
        const two = decide(compilePolicy(shuffled), p, a, c, ORG);
        return JSON.stringify(one) === JSON.stringify(two);
      }),
      RUNS,
    );
  });

  it('always gives at least one rule id and a readable reason', () => {
    fc.assert(
      fc.property(policy, principal, action, context, (doc, p, a, c) => {
        const d = decide(compilePolicy(doc), p, a, c, ORG);
        return d.ruleIds.length >= 1 && d.reason.length > 10 && d.reason.toLowerCase().startsWith(d.level);
      }),
      RUNS,
    );
  });
});

describe('differential', () => {
  const CASES = 10_000;
  const samples = fc.sample(fc.tuple(policy, fc.array(fc.tuple(principal, action, context), { minLength: 10, maxLength: 10 })), { numRuns: CASES / 10, seed: 20261121 });

  it(`decide() agrees with the naive reference evaluator on ${CASES} random cases`, () => {
    const mismatches: string[] = [];
    for (const [doc, cases] of samples) {
      const compiled = compilePolicy(doc);
      for (const [p, a, c] of cases) {
        const d = decide(compiled, p, a, c, ORG);
        const r = referenceDecide(doc, { ...c, at: c.at as Date, userId: p.userId, groups: p.groupIds, email: p.email, action: a, orgDomains: ORG.domains });
        if (d.level !== r.level || d.ruleIds.join() !== r.ruleIds.join()) mismatches.push(JSON.stringify({ doc, p, a, c, d, r }).slice(0, 2000));
      }
    }
    expect(mismatches.slice(0, 3)).toEqual([]);
  });

  it(`decide() returns exactly explain()'s decision (without its steps) on ${CASES} random cases`, () => {
    // decide() has its own fast path; explain() is the plain evaluation, step by step.
    const mismatches: string[] = [];
    for (const [doc, cases] of samples) {
      const compiled = compilePolicy(doc);
      for (const [p, a, c] of cases) {
        const d = decide(compiled, p, a, c, ORG);
        const { steps, ...e } = explain(compiled, p, a, c, ORG);
        void steps;
        const viaFacts = decideFacts(compiled, toFacts(p, a, c, ORG));
        if (JSON.stringify(d) !== JSON.stringify(e) || JSON.stringify(viaFacts) !== JSON.stringify(e)) mismatches.push(JSON.stringify({ doc, p, a, c, d, e, viaFacts }).slice(0, 3000));
      }
    }
    expect(mismatches.slice(0, 3)).toEqual([]);
  });

  it(`the compiled evaluator and the CASL check never disagree on ${CASES} random cases`, () => {
    const mismatches: string[] = [];
    for (const [doc, cases] of samples) {
      const compiled = compilePolicy(doc);
      const ability = compileAbility(doc);
      for (const [p, a, c] of cases) {
        const f = toFacts(p, a, c, ORG);
        const d = decide(compiled, p, a, c, ORG);
        const viaCasl = caslLevel(ability, f);
        if (d.level !== viaCasl) mismatches.push(JSON.stringify({ doc, p, a, c, d: d.level, casl: viaCasl }).slice(0, 2000));
      }
    }
    expect(mismatches.slice(0, 3)).toEqual([]);
  });
});

describe('an action that names several resources, hosts, recipients or labels', () => {
  const me = { userId: 'u1', groupIds: [], email: 'ann@acme.example' };
  const doc = (rules: PolicyDocument['rules'], forbiddenAreas: PolicyDocument['forbiddenAreas'] = []): PolicyDocument => ({ ...seedPolicy(), baseline: { 'file.update': 'watched', 'email.draft': 'watched' }, rules, forbiddenAreas });

  it('is as restricted as the most restricted of them alone: a move out of a Watched folder into an Autonomous one is Watched', () => {
    const p = compilePolicy(doc([{ id: 'public-free', scope: { type: 'org' }, actions: ['file.update'], level: 'autonomous', when: { resources: ['/public/**'] }, reason: 'the public folder is free to change' }]));
    expect(decide(p, me, 'file.update', { resources: ['/finance/q3-forecast.xlsx', '/public/q3-forecast.xlsx'] }, ORG)).toMatchObject({ level: 'watched', ruleIds: ['baseline.file.update'] });
    expect(decide(p, me, 'file.update', { resources: ['/public/q3-forecast.xlsx', '/finance/q3-forecast.xlsx'] }, ORG)).toMatchObject({ level: 'watched', ruleIds: ['baseline.file.update'] });
    // Every path in the folder the rule was written for: it applies.
    expect(decide(p, me, 'file.update', { resources: ['/public/a.md', '/public/b.md'] }, ORG)).toMatchObject({ level: 'autonomous', ruleIds: ['public-free'] });
    expect(explain(p, me, 'file.update', { resources: ['/public/a.md', '/finance/b.md'] }, ORG)).toMatchObject({ level: 'watched', ruleIds: ['baseline.file.update'] });
  });

  it('a rule for one partner domain does not free a draft that also goes to another; a rule or area that raises still applies on one value', () => {
    const p = compilePolicy(
      doc(
        [
          { id: 'partner-drafts', scope: { type: 'org' }, actions: ['email.draft'], level: 'autonomous', when: { recipientDomains: ['partner.example'] }, reason: 'drafts to the partner are routine' },
          { id: 'press-watched', scope: { type: 'org' }, actions: ['file.update'], level: 'forbidden', when: { resources: ['/press/**'] }, reason: 'press releases are never changed by agents' },
        ],
        [{ id: 'no-hr', actions: ['file.update'], when: { resources: ['/hr/**'] }, reason: 'HR files are off limits' }],
      ),
    );
    expect(decide(p, me, 'email.draft', { recipients: ['kim@partner.example'] }, ORG).level).toBe('autonomous');
    expect(decide(p, me, 'email.draft', { recipients: ['kim@partner.example', 'x@evil.example'] }, ORG).level).toBe('watched');
    expect(decide(p, me, 'file.update', { resources: ['/notes/a.md', '/press/release.md'] }, ORG)).toMatchObject({ level: 'forbidden', ruleIds: ['press-watched'] });
    expect(decide(p, me, 'file.update', { resources: ['/notes/a.md', '/hr/salaries.xlsx'] }, ORG)).toMatchObject({ level: 'forbidden', ruleIds: ['baseline.file.update', 'no-hr'] });
  });

  it('a domain a policy names covers its subdomains: an area forbidding mail to a competitor is not passed by one of its mail hosts', () => {
    const p = compilePolicy(doc([], [{ id: 'no-competitor', actions: ['email.draft'], when: { recipientDomains: ['competitor.example'] }, reason: 'never write to the competitor' }]));
    for (const to of ['ceo@competitor.example', 'ceo@mail.competitor.example', 'ceo@a.b.competitor.example']) {
      expect({ to, level: decide(p, me, 'email.draft', { recipients: [to] }, ORG).level }).toEqual({ to, level: 'forbidden' });
    }
    // A name that only ends the same way is another domain.
    expect(decide(p, me, 'email.draft', { recipients: ['ceo@notcompetitor.example'] }, ORG).level).toBe('watched');
  });

  it('reads the domains a policy names as facts name them: any case, a trailing dot, international names in their ASCII form', () => {
    const p = compilePolicy(
      doc(
        [
          { id: 'no-books-mail', scope: { type: 'org' }, actions: ['email.draft'], level: 'forbidden', when: { recipientDomains: ['Bücher.DE.'] }, reason: 'not to the competitor' },
          { id: 'no-books-web', scope: { type: 'org' }, actions: ['web.read'], level: 'forbidden', when: { hosts: ['*.Bücher.de.', 'Competitor.Example.'] }, reason: 'not the competitor' },
        ],
        [],
      ),
    );
    // Facts as connectors write them (lower case, punycode, no trailing dot).
    expect(decide(p, me, 'email.draft', { recipients: ['kim@xn--bcher-kva.de'] }, ORG)).toMatchObject({ level: 'forbidden', ruleIds: ['no-books-mail'] });
    // ... and as an agent may write them (Unicode, a trailing dot): the same domain, no way around the rule.
    for (const to of ['kim@bücher.de', 'kim@BÜCHER.de.', 'kim@shop.bücher.de']) expect({ to, d: decide(p, me, 'email.draft', { recipients: [to] }, ORG) }).toMatchObject({ to, d: { level: 'forbidden', ruleIds: ['no-books-mail'] } });
    // CASL's check reads the policy's domains the same way: a rule that frees drafts to an international domain is honoured by both.
    const free = compilePolicy(doc([{ id: 'books-free', scope: { type: 'org' }, actions: ['email.draft'], level: 'autonomous', when: { recipientDomains: ['Bücher.de'] }, reason: 'drafts to the partner are routine' }]));
    expect(decide(free, me, 'email.draft', { recipients: ['kim@bücher.de'] }, ORG)).toMatchObject({ level: 'autonomous', ruleIds: ['books-free'] });
    expect(caslLevel(compileAbility(doc([{ id: 'books-free', scope: { type: 'org' }, actions: ['email.draft'], level: 'autonomous', when: { recipientDomains: ['Bücher.de'] }, reason: 'drafts to the partner are routine' }])), toFacts(me, 'email.draft', { recipients: ['kim@bücher.de'] }, ORG))).toBe('autonomous');
    expect(decide(p, me, 'web.read', { hosts: ['shop.xn--bcher-kva.de'] }, ORG)).toMatchObject({ level: 'forbidden', ruleIds: ['no-books-web'] });
    expect(decide(p, me, 'web.read', { hosts: ['competitor.example'] }, ORG)).toMatchObject({ level: 'forbidden', ruleIds: ['no-books-web'] });
    expect(decide(p, me, 'web.read', { hosts: ['docs.example'] }, ORG).level).toBe('autonomous');
  });

  it('keeps the data-protecting obligations of every value it may run for, whatever level stands', () => {
    const p = compilePolicy(
      doc([
        { id: 'drafts-a', scope: { type: 'org' }, actions: ['file.update'], level: 'batched', when: { resources: ['/drafts/a/**'] }, reason: 'drafts', obligations: ['keep_undo_copy'] },
        { id: 'drafts-b', scope: { type: 'org' }, actions: ['file.update'], level: 'batched', when: { resources: ['/drafts/b/**'] }, reason: 'drafts', obligations: ['redact_personal_data'] },
      ]),
    );
    const d = decide(p, me, 'file.update', { resources: ['/drafts/b/x.md', '/drafts/a/y.md'] }, ORG);
    expect(d).toMatchObject({ level: 'batched', ruleIds: ['drafts-a'] });
    expect(d.obligations).toEqual(['keep_undo_copy', 'redact_personal_data']);
    // Personal data freed for the model only if redacted; confidential work Batched: both labels, Batched and still redacted.
    const model = compilePolicy({
      ...seedPolicy(),
      rules: [
        { id: 'pii-redacted', scope: { type: 'group', id: '0195a000-0000-7000-8000-000000000001' }, actions: ['model.invoke'], level: 'autonomous', when: { labels: ['pii'] }, reason: 'personal data goes out redacted', obligations: ['redact_personal_data'] },
        { id: 'confidential-batched', scope: { type: 'org' }, actions: ['model.invoke'], level: 'batched', when: { labels: ['confidential'] }, reason: 'confidential work is reviewed' },
      ],
    });
    const both = decide(model, { ...me, groupIds: ['0195a000-0000-7000-8000-000000000001'] }, 'model.invoke', { labels: ['confidential', 'pii'] }, ORG);
    expect(both).toMatchObject({ level: 'batched', ruleIds: ['confidential-batched'] });
    expect(both.obligations).toContain('redact_personal_data');
  });

  it(`past ${SPLIT_MAX} combinations to decide one by one, the action is refused, and the CASL check agrees`, () => {
    // 16 rules on each of three lists, each freeing one value: 17 values a list tell apart 17³ = 4,913 combinations.
    const rules: PolicyDocument['rules'] = [];
    for (let i = 0; i < 16; i++) {
      rules.push({ id: `r${i}`, scope: { type: 'org' }, actions: ['saas.write'], level: 'autonomous', when: { resources: [`/r${i}/**`] }, reason: 'r' });
      rules.push({ id: `h${i}`, scope: { type: 'org' }, actions: ['saas.write'], level: 'autonomous', when: { hosts: [`h${i}.example`] }, reason: 'h' });
      rules.push({ id: `d${i}`, scope: { type: 'org' }, actions: ['saas.write'], level: 'autonomous', when: { recipientDomains: [`d${i}.example`] }, reason: 'd' });
    }
    const d = doc(rules);
    const p = compilePolicy(d);
    const ability = compileAbility(d);
    const ctx = (n: number) => ({
      resources: Array.from({ length: n }, (_, i) => `/r${i}/x`),
      hosts: Array.from({ length: n }, (_, i) => `h${i}.example`),
      recipients: Array.from({ length: n }, (_, i) => `a@d${i}.example`),
    });
    // 16³ = 4,096: each combination decided, each one freed by its rules.
    expect(decide(p, me, 'saas.write', ctx(16), ORG).level).toBe('autonomous');
    expect(caslLevel(ability, toFacts(me, 'saas.write', ctx(16), ORG))).toBe('autonomous');
    const over = decide(p, me, 'saas.write', ctx(17), ORG);
    expect(over.level).toBe('forbidden');
    expect(over.ruleIds).toContain('split_limit');
    expect(over.reason).toMatch(/^Forbidden: the action names more than 4096 combinations/);
    expect(caslLevel(ability, toFacts(me, 'saas.write', ctx(17), ORG))).toBe('forbidden');
    // Values no condition tells apart count once: a thousand paths under one folder are one decision.
    const many = { resources: Array.from({ length: 1000 }, (_, i) => `/r0/file-${i}.md`), hosts: ctx(16).hosts, recipients: ctx(16).recipients };
    expect(decide(p, me, 'saas.write', many, ORG).level).toBe('autonomous');
    expect(caslLevel(ability, toFacts(me, 'saas.write', many, ORG))).toBe('autonomous');
  });
});

describe('the seed policy', () => {
  // ARCHITECTURE.md, "Trust levels and the default policy", row by row.
  const TABLE: [string, Level][] = [
    ['file.read', 'autonomous'],
    ['file.create', 'batched'],
    ['file.update', 'batched'],
    ['file.delete', 'watched'],
    ['email.read', 'batched'],
    ['email.draft', 'batched'],
    ['email.send', 'watched'],
    ['drive.read', 'autonomous'],
    ['drive.create', 'batched'],
    ['drive.update', 'watched'],
    ['chat.send', 'watched'],
    ['calendar.create', 'batched'],
    ['web.read', 'autonomous'],
    ['saas.read', 'autonomous'],
    ['saas.write', 'watched'],
    ['git.push', 'watched'],
    ['payment.execute', 'forbidden'],
    ['hr.write', 'forbidden'],
    ['contract.send', 'forbidden'],
    ['data.egress_pii', 'forbidden'],
  ];
  const seed = compilePolicy(seedPolicy());
  const me = { userId: 'u1', groupIds: [], email: 'ann@acme.example' };

  it.each(TABLE)('decides %s as %s for a plain call', (a, level) => {
    expect(decide(seed, me, a as ActionType, { recipients: ['bob@acme.example'], attendees: ['ann@acme.example'] }, ORG).level).toBe(level);
  });

  it('covers every row of the catalog but model.invoke and unknown, and keeps the floors', () => {
    expect(Object.keys(ACTION_TYPES).filter((a) => !TABLE.some(([t]) => t === a)).sort()).toEqual(['model.invoke', 'unknown']);
    expect(ACTION_TYPES['email.send']).toMatchObject({ floor: 'watched' });
    expect(ACTION_TYPES['payment.execute']).toMatchObject({ floor: 'forbidden' });
    expect(decide(seed, me, 'unknown', {}, ORG).level).toBe('watched');
  });

  it('forbids personal data posted to a channel shared outside the org, as to outside recipients', () => {
    expect(decide(seed, me, 'chat.send', { labels: ['pii'], outside: true }, ORG)).toMatchObject({ level: 'forbidden', ruleIds: expect.arrayContaining(['fa.pii-external-write']) });
    expect(decide(seed, me, 'chat.send', { labels: ['pii'] }, ORG).level).not.toBe('forbidden');
    expect(decide(seed, me, 'chat.send', { outside: true }, ORG).level).not.toBe('forbidden');
    // Outside whatever the addresses say.
    expect(decide(seed, me, 'saas.write', { labels: ['pii'], recipients: ['bob@acme.example'], outside: true }, ORG).level).toBe('forbidden');
  });

  it('watches a calendar event that invites others, and external mail drafts', () => {
    expect(decide(seed, me, 'calendar.create', { attendees: ['ann@acme.example', 'bob@partner.example'] }, ORG)).toMatchObject({ level: 'watched', ruleIds: ['org.calendar-invites-others'] });
    const d = decide(seed, me, 'email.draft', { recipients: ['bob@partner.example'] }, ORG);
    expect(d.reason).toBe('Watched: email to an external domain (rule org.email-external)');
  });

  it('forbids file.delete for the rest of the hour once the limit is exceeded, and explains why', () => {
    const e = explain(seed, me, 'file.delete', { rateExceeded: ['rl.file-delete'] }, ORG);
    expect(e.level).toBe('forbidden');
    expect(e.ruleIds).toEqual(['baseline.file.delete', 'rl.file-delete']);
    expect(e.steps.map((s) => s.stage)).toEqual(['base', 'user', 'workflow', 'group', 'org', 'rate_limit']);
  });

  it('routes Watched actions to approvers and attaches obligations', () => {
    expect(decide(seed, me, 'email.send', { recipients: ['bob@acme.example'] }, ORG).routing).toEqual({ routeId: null, approverGroup: null, quorum: 1 });
    expect(decide(seed, me, 'file.update', {}, ORG).obligations).toEqual(['keep_undo_copy']);
    expect(decide(seed, me, 'model.invoke', { labels: ['pii'] }, ORG).obligations).toEqual(['redact_personal_data']);
    expect(decide(seed, me, 'payment.execute', {}, ORG).routing).toBeNull();
  });
});
