import { canonical } from './event';
import { withoutNul } from './record';

describe('withoutNul', () => {
  it('turns every NUL into U+FFFD and leaves a literal backslash-u0000 text alone', () => {
    const value = { a: 'x\u0000y', b: ['\u0000', 'plain \\u0000 text', '\\\u0000'], c: 'é\u2028' };
    const out = withoutNul(canonical(value));
    expect(JSON.parse(out)).toEqual({ a: 'x\ufffdy', b: ['\ufffd', 'plain \\u0000 text', '\\\ufffd'], c: 'é\u2028' });
    expect(out).toBe(canonical(JSON.parse(out)));
  });

  it('returns text without NUL as it is', () => {
    const json = canonical({ a: 'no nul here', b: '\\u0000 as text' });
    expect(withoutNul(json)).toBe(json);
  });
});
