import { AppError } from '@steward/common';
import { Slots } from './slots';

describe('Slots (concurrent exports per org and per process)', () => {
  it('refuses past the org\'s limit or the process\'s with 429 and takes nothing; a slot given back frees it, once', () => {
    const slots = new Slots('audit exports', 2, 3);
    const a1 = slots.take('org-a');
    const a2 = slots.take('org-a');
    let refused: unknown;
    try {
      slots.take('org-a');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited', detail: expect.stringContaining('2 audit exports of this org') });
    expect(slots.running('org-a')).toBe(2);
    // Another org has its own, up to the process's limit.
    const b1 = slots.take('org-b');
    expect(() => slots.take('org-c')).toThrow(/runs 3 audit exports at once/);
    expect(slots.running()).toBe(3);
    a1();
    a1(); // (given back once only)
    expect(slots.running('org-a')).toBe(1);
    const a3 = slots.take('org-a');
    for (const give of [a2, a3, b1]) give();
    expect({ a: slots.running('org-a'), b: slots.running('org-b'), all: slots.running() }).toEqual({ a: 0, b: 0, all: 0 });
  });
});
