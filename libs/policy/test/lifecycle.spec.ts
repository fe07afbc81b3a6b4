import { diffPolicies } from '../src/diff';
import { compilePolicy } from '../src/engine';
import { sanctionFor } from '../src/sanctions';
import { seedPolicy } from '../src/seed';
import { simulate } from '../src/simulate';

const ORG = { domains: ['acme.example'] };
const me = { userId: 'u1', groupIds: [] };

describe('diffPolicies', () => {
  it('reports baseline changes by action type and rule changes by id and field', () => {
    const a = seedPolicy();
    const b = seedPolicy();
    b.baseline['file.read'] = 'batched';
    b.rules = b.rules.filter((r) => r.id !== 'org.tainted-outbound');
    b.rules[0] = { ...b.rules[0], level: 'forbidden' };
    b.rateLimits[0] = { ...b.rateLimits[0], max: 10 };
    b.forbiddenAreas.push({ id: 'fa.git', actions: ['git.push'], reason: 'no pushes' });
    expect(diffPolicies(a, b)).toEqual([
      { path: 'baseline.file.read', kind: 'changed', before: 'autonomous', after: 'batched' },
      { path: 'rules[org.calendar-invites-others].level', kind: 'changed', before: 'watched', after: 'forbidden' },
      { path: 'rules[org.tainted-outbound]', kind: 'removed', before: a.rules.find((r) => r.id === 'org.tainted-outbound') },
      { path: 'rateLimits[rl.file-delete].max', kind: 'changed', before: 20, after: 10 },
      { path: 'forbiddenAreas[fa.git]', kind: 'added', after: { id: 'fa.git', actions: ['git.push'], reason: 'no pushes' } },
    ]);
    expect(diffPolicies(a, a)).toEqual([]);
  });
});

describe('simulate', () => {
  it('decides each action under both versions and says what changed', () => {
    const draft = seedPolicy();
    draft.baseline['file.create'] = 'watched';
    const result = simulate(compilePolicy(seedPolicy()), compilePolicy(draft), [
      { principal: me, action: 'file.create', context: {} },
      { principal: me, action: 'file.read', context: {} },
    ], ORG);
    expect(result.summary).toEqual({ total: 2, changed: 1, stricter: 1, looser: 0 });
    expect(result.results[0]).toMatchObject({ changed: true, before: { level: 'batched' }, after: { level: 'watched' } });
  });
});

describe('sanctionFor', () => {
  const now = new Date('2026-11-21T12:00:00Z');
  const ago = (days: number) => ({ confirmedAt: new Date(now.getTime() - days * 86_400_000) });
  it('follows the ladder: warning, suspension, disciplinary review', () => {
    expect(sanctionFor([], now)).toBe('none');
    expect(sanctionFor([ago(3)], now)).toBe('warning');
    expect(sanctionFor([ago(3), ago(40)], now)).toBe('suspension');
    expect(sanctionFor([ago(3), ago(40), ago(100)], now)).toBe('disciplinary_review');
  });
  it('counts only violations inside the window', () => {
    expect(sanctionFor([ago(3), ago(400)], now, 365)).toBe('warning');
    expect(sanctionFor([ago(3), ago(40)], now, 30)).toBe('warning');
  });
});
