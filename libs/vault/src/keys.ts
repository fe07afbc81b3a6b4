import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * The one key hierarchy: versioned key-encryption keys (KEKs) wrap random data keys;
 * data is sealed with AES-256-GCM under a data key, with an AAD binding every
 * ciphertext to its owner (org, record ids, purpose).
 */
export interface KeyProvider {
  /** The KEK version new wraps use. */
  currentVersion(): string;
  /** Wraps a data key under the current KEK; the result names its version. */
  wrap(dataKey: Buffer, aad: string): Promise<string>;
  unwrap(wrapped: string, aad: string): Promise<Buffer>;
}

const IV = 12;

export function gcmSeal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]);
}

export function gcmOpen(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < IV + 16) throw new Error('sealed value is too short');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(sealed.subarray(IV, IV + 16));
  return Buffer.concat([decipher.update(sealed.subarray(IV + 16)), decipher.final()]);
}

/** KEKs from configuration: "v1:<base64 32 bytes>,v2:..."; the last one wraps new keys. */
export class ConfigKeyProvider implements KeyProvider {
  private readonly keks = new Map<string, Buffer>();
  private readonly current: string;

  constructor(masterKey: string) {
    const parts = masterKey.split(',').map((p) => p.trim()).filter(Boolean);
    if (!parts.length) throw new Error('no key-encryption key configured');
    for (const [i, part] of parts.entries()) {
      const [version, material] = part.split(':', 2);
      const key = Buffer.from((material ?? '').replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      // Named by position, never by its text: a malformed entry may be key material itself.
      if (!/^v\d+$/.test(version) || key.length !== 32) throw new Error(`key-encryption key ${i + 1} of ${parts.length}: expected "vN:<32 bytes base64>"`);
      if (this.keks.has(version)) throw new Error(`key-encryption key ${i + 1} of ${parts.length}: version ${version} is given twice (each key needs its own label)`);
      this.keks.set(version, key);
    }
    this.current = parts[parts.length - 1].split(':', 1)[0];
  }

  currentVersion(): string {
    return this.current;
  }

  async wrap(dataKey: Buffer, aad: string): Promise<string> {
    return `${this.current}.${gcmSeal(this.keks.get(this.current)!, dataKey, `kek|${aad}`).toString('base64url')}`;
  }

  async unwrap(wrapped: string, aad: string): Promise<Buffer> {
    const dot = wrapped.indexOf('.');
    const kek = this.keks.get(wrapped.slice(0, dot));
    if (dot < 0 || !kek) throw new Error(`wrapped key uses an unknown key-encryption key version "${wrapped.slice(0, dot)}"`);
    return gcmOpen(kek, Buffer.from(wrapped.slice(dot + 1), 'base64url'), `kek|${aad}`);
  }
}

/** A fresh random 256-bit data key. */
export function newDataKey(): Buffer {
  return randomBytes(32);
}

/** Re-wraps a data key under the provider's current KEK (rotation); the data itself is untouched. */
export async function rewrap(provider: KeyProvider, wrapped: string, aad: string): Promise<string> {
  if (wrapped.startsWith(`${provider.currentVersion()}.`)) return wrapped;
  const key = await provider.unwrap(wrapped, aad);
  try {
    return await provider.wrap(key, aad);
  } finally {
    key.fill(0);
  }
}
