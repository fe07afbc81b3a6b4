import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Small AES-256-GCM envelope under the configured key-encryption key versions
 * (STEWARD_MASTER_KEY). The AAD binds a ciphertext to its owner (org, record id,
 * purpose), so a ciphertext copied onto another row does not decrypt.
 * Format: "<version>.<iv b64url>.<tag b64url>.<ciphertext b64url>".
 */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  private readonly current: string;

  constructor(masterKey: string) {
    const parts = masterKey.split(',').map((p) => p.trim());
    for (const part of parts) {
      const [version, material] = part.split(':', 2);
      const key = Buffer.from(material.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      if (key.length !== 32) throw new Error(`STEWARD_MASTER_KEY ${version}: the key must be 32 bytes`);
      if (this.keys.has(version)) throw new Error(`STEWARD_MASTER_KEY ${version}: the version is given twice (each key needs its own label)`);
      this.keys.set(version, key);
    }
    this.current = parts[parts.length - 1].split(':', 1)[0];
  }

  /** The version new values are sealed under (the last one configured). */
  get currentVersion(): string {
    return this.current;
  }

  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.current)!, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [this.current, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  open(sealed: string, aad: string): string {
    const [version, iv, tag, ct] = sealed.split('.');
    const key = this.keys.get(version);
    if (!key || !iv || !tag || ct === undefined) throw new Error('sealed value is malformed or its key version is unknown');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }
}

/** The AAD of a user's sealed TOTP secret (bound to the user). */
export const totpAad = (userId: string): string => `users/${userId}/totp`;

/** The AAD of an org's sealed OpenID Connect client secret (bound to the org). */
export const ssoClientSecretAad = (orgId: string): string => `sso-client-secret|${orgId}`;
