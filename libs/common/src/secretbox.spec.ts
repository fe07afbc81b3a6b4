import { SecretBox } from './secretbox';

const k1 = `v1:${Buffer.alloc(32, 1).toString('base64')}`;
const k2 = `v2:${Buffer.alloc(32, 2).toString('base64')}`;

describe('SecretBox', () => {
  it('round-trips and binds the ciphertext to its owner (AAD)', () => {
    const box = new SecretBox(k1);
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'users/1/totp');
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(box.open(sealed, 'users/1/totp')).toBe('JBSWY3DPEHPK3PXP');
    expect(() => box.open(sealed, 'users/2/totp')).toThrow();
  });

  it('encrypts with the newest key version and still opens older ones', () => {
    const old = new SecretBox(k1).seal('secret', 'a');
    const rotated = new SecretBox(`${k1},${k2}`);
    expect(rotated.seal('secret', 'a').startsWith('v2.')).toBe(true);
    expect(rotated.open(old, 'a')).toBe('secret');
  });
});
