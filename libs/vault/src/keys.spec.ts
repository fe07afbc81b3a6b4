import { ConfigKeyProvider, gcmOpen, gcmSeal, newDataKey, rewrap } from './keys';

const v1 = `v1:${Buffer.alloc(32, 1).toString('base64')}`;
const v2 = `v2:${Buffer.alloc(32, 2).toString('base64')}`;

describe('vault keys', () => {
  it('wraps data keys bound to their owner, and rotates by re-wrapping', async () => {
    const old = new ConfigKeyProvider(v1);
    const dk = newDataKey();
    const wrapped = await old.wrap(dk, 'org/1/audit/2026-11');
    expect(wrapped.startsWith('v1.')).toBe(true);
    await expect(old.unwrap(wrapped, 'org/2/audit/2026-11')).rejects.toThrow();
    const rotated = new ConfigKeyProvider(`${v1},${v2}`);
    const again = await rewrap(rotated, wrapped, 'org/1/audit/2026-11');
    expect(again.startsWith('v2.')).toBe(true);
    expect((await rotated.unwrap(again, 'org/1/audit/2026-11')).equals(dk)).toBe(true);
    expect((await rotated.unwrap(wrapped, 'org/1/audit/2026-11')).equals(dk)).toBe(true);
    await expect(new ConfigKeyProvider(v2).unwrap(wrapped, 'org/1/audit/2026-11')).rejects.toThrow(/unknown key-encryption key version "v1"/);
  });

  it('seals data with AES-256-GCM and refuses a changed ciphertext or owner', () => {
    const dk = newDataKey();
    const sealed = gcmSeal(dk, Buffer.from('recipient@customer.example'), 'event/9');
    expect(gcmOpen(dk, sealed, 'event/9').toString()).toBe('recipient@customer.example');
    expect(() => gcmOpen(dk, sealed, 'event/8')).toThrow();
    sealed[sealed.length - 1] ^= 1;
    expect(() => gcmOpen(dk, sealed, 'event/9')).toThrow();
  });

  it('refuses a malformed master key', () => {
    expect(() => new ConfigKeyProvider('v1:short')).toThrow(/32 bytes/);
    // A key pasted without its version: the error names its position, never the key.
    const raw = Buffer.alloc(32, 7).toString('base64');
    expect(() => new ConfigKeyProvider(`v1:${Buffer.alloc(32, 1).toString('base64')},${raw}`)).toThrow(/^key-encryption key 2 of 2: expected/);
    expect(() => new ConfigKeyProvider(raw)).toThrow(expect.objectContaining({ message: expect.not.stringContaining(raw.slice(0, 12)) }));
  });

  it('refuses two keys under one version label (the later would silently stand for both)', () => {
    const a = Buffer.alloc(32, 1).toString('base64');
    const b = Buffer.alloc(32, 2).toString('base64');
    expect(() => new ConfigKeyProvider(`v1:${a},v1:${b}`)).toThrow(/^key-encryption key 2 of 2: version v1 is given twice/);
    expect(() => new ConfigKeyProvider(`v1:${a},v2:${b}`)).not.toThrow();
  });
});
