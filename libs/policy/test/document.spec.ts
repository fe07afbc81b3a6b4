import { validatePolicy } from '../src/document';
import { seedPolicy } from '../src/seed';

const GROUP = '0195a000-0000-7000-8000-000000000001';

describe('validatePolicy', () => {
  it('accepts the seed policy', () => {
    expect(validatePolicy(seedPolicy(), { groups: new Set(), workflows: new Set() })).toMatchObject({ ok: true });
  });

  it('lists every problem of an invalid document at once', () => {
    const doc = seedPolicy();
    doc.baseline['email.send'] = 'batched';
    doc.baseline['mail.teleport'] = 'autonomous';
    // A tool nobody mapped is at least Watched (it could be anything): never let run alone.
    doc.baseline.unknown = 'autonomous';
    doc.rules.push(
      { id: 'bad-action', scope: { type: 'org' }, actions: ['file.shred'], level: 'watched', reason: 'x' },
      { id: 'bad-glob', scope: { type: 'org' }, actions: ['file.read'], level: 'watched', when: { resources: ['/a/***/b', '/x/[ab]'] }, reason: 'x' },
      { id: 'below-floor', scope: { type: 'user', id: GROUP }, actions: ['payment.execute'], level: 'watched', reason: 'x' },
      { id: 'no-group', scope: { type: 'group', id: GROUP }, actions: ['file.read'], level: 'watched', reason: 'x' },
      { id: 'bad-tz', scope: { type: 'org' }, actions: ['file.read'], level: 'watched', when: { timeWindow: { days: [1], from: '09:00', to: '17:00', timeZone: 'Mars/Olympus' } }, reason: 'x' },
      { id: 'bad-action', scope: { type: 'org' }, actions: ['file.read'], level: 'watched', reason: 'duplicate id' },
    );
    doc.approvals.push({ id: 'route', actions: ['email.send'], approverGroup: GROUP, quorum: 2 });
    const result = validatePolicy(doc, { groups: new Set(), workflows: new Set() });
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^baseline\.email\.send: .*floor/),
        'baseline.mail.teleport: unknown action type "mail.teleport"',
        expect.stringMatching(/^baseline\.unknown: .*floor|^baseline\.unknown: .*below watched/),
        'rules.4.actions.0: unknown action type "file.shred"',
        expect.stringMatching(/^rules\.5\.when\.resources\.0: bad glob/),
        expect.stringMatching(/^rules\.5\.when\.resources\.1: bad glob/),
        expect.stringMatching(/^rules\.6\.level: payment\.execute can never be below forbidden/),
        `rules.7.scope.id: no group ${GROUP} in this org`,
        'rules.8.when.timeWindow.timeZone: unknown time zone "Mars/Olympus"',
        expect.stringMatching(/^rules\.9\.id: id "bad-action" is already used/),
        `approvals.0.approverGroup: no group ${GROUP} in this org`,
      ]),
    );
    expect(problems).toHaveLength(11);
  });

  it('takes a guard only as a whole-org rule, without obligations', () => {
    const doc = seedPolicy();
    doc.rules.push(
      { id: 'group-guard', scope: { type: 'group', id: GROUP }, actions: ['chat.send'], level: 'watched', reason: 'x', guard: true },
      { id: 'guard-obligations', scope: { type: 'org' }, actions: ['file.update'], level: 'batched', reason: 'x', guard: true, obligations: ['keep_undo_copy'] },
      { id: 'org-guard', scope: { type: 'org' }, actions: ['chat.send'], level: 'watched', when: { labels: ['confidential'] }, reason: 'confidential data is never posted on its own', guard: true },
    );
    const result = validatePolicy(doc, { groups: new Set([GROUP]), workflows: new Set() });
    expect(result.ok ? [] : result.problems).toEqual([
      { path: 'rules.4.guard', message: 'only a whole-org rule can be a guard (it holds over every group, workflow and person)' },
      { path: 'rules.5.obligations', message: 'a guard only raises the level; obligations come with the rules that decide' },
    ]);
    expect(validatePolicy({ ...doc, rules: doc.rules.filter((r) => r.id !== 'group-guard' && r.id !== 'guard-obligations') }, { groups: new Set([GROUP]) })).toMatchObject({ ok: true });
  });

  it('refuses a rate limit of 0 and unknown fields through the schema', () => {
    const doc = seedPolicy() as unknown as Record<string, unknown>;
    (doc.rateLimits as Record<string, unknown>[])[0].max = 0;
    doc.extra = true;
    const result = validatePolicy(doc);
    expect(result.ok).toBe(false);
    const paths = result.ok ? [] : result.problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['rateLimits.0.max', '(document)']));
  });
});
