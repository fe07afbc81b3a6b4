import { checkTotp } from './totp';

// RFC 6238 appendix B: SHA-1 secret "12345678901234567890" (base32 below);
// at T = 59 s the 8-digit code is 94287082, so the 6-digit one is 287082.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('checkTotp', () => {
  it('accepts the RFC 6238 test vector and returns its time step', async () => {
    expect(await checkTotp(RFC_SECRET, '287082', 59_000)).toBe(1);
  });

  it('accepts one step of drift, not two', async () => {
    expect(await checkTotp(RFC_SECRET, '287082', 59_000 + 30_000)).toBe(1);
    expect(await checkTotp(RFC_SECRET, '287082', 59_000 + 61_000)).toBeNull();
  });

  it('refuses a wrong or malformed code', async () => {
    expect(await checkTotp(RFC_SECRET, '287083', 59_000)).toBeNull();
    expect(await checkTotp(RFC_SECRET, '28708', 59_000)).toBeNull();
    expect(await checkTotp(RFC_SECRET, 'abcdef', 59_000)).toBeNull();
  });
});
