import { eachOrgAtOnce } from './delivery';

describe('eachOrgAtOnce (notices of different orgs side by side, each org in order)', () => {
  const notice = (org: string, n: number) => ({ org_id: org, id: `${org}-${n}` });

  it("runs each org's notices in order, at most the given number of orgs at once", async () => {
    const order: string[] = [];
    let running = 0;
    let most = 0;
    await eachOrgAtOnce(
      ['a', 'b', 'c', 'd'].flatMap((org) => [notice(org, 1), notice(org, 2)]),
      async (n) => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 5));
        order.push(n.id);
        running--;
      },
      2,
    );
    expect(most).toBe(2);
    expect(order).toHaveLength(8);
    for (const org of ['a', 'b', 'c', 'd']) expect(order.indexOf(`${org}-1`)).toBeLessThan(order.indexOf(`${org}-2`));
  });

  it('a notice that fails stops no other: every lane runs to its end, then the first failure is reported', async () => {
    const done: string[] = [];
    let settled = false;
    const pass = eachOrgAtOnce(
      [notice('a', 1), notice('a', 2), notice('b', 1), notice('c', 1), notice('c', 2)],
      async (n) => {
        if (n.id === 'a-1') throw new Error('database went away');
        await new Promise((r) => setTimeout(r, 10));
        done.push(n.id);
      },
      2,
    ).finally(() => (settled = true));
    await expect(pass).rejects.toThrow('database went away');
    // Nothing still running once the pass has failed.
    expect(settled).toBe(true);
    expect(done.sort()).toEqual(['a-2', 'b-1', 'c-1', 'c-2']);
  });
});
