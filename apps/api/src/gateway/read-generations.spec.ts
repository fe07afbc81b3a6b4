import { ReadGenerations } from './read-generations';

describe('ReadGenerations: the per-session count of identical calls, bounded', () => {
  it('a call that ran gets a new generation; a call that did not keeps its own (a retry is the same action)', () => {
    const g = new ReadGenerations();
    expect(g.of('read a')).toBe('0');
    expect(g.of('read a')).toBe('0');
    g.bump('read a');
    expect(g.of('read a')).toBe('1');
    expect(g.of('read b')).toBe('0');
  });

  it('past its bound it starts again under a new epoch: memory stays bounded, and no key an earlier call used comes back', () => {
    const g = new ReadGenerations(2);
    const used = new Set<string>();
    const run = (base: string) => {
      const key = `${base}\n${g.of(base)}`;
      expect(used.has(key)).toBe(false);
      used.add(key);
      g.bump(base);
    };
    for (let i = 0; i < 50; i++) run(`read ${i % 7}`);
    expect(g.size).toBeLessThanOrEqual(2);
  });
});
