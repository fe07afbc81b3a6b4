import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/** Signs checkpoints. A KMS-backed signer implements the same three members. */
export interface CheckpointSigner {
  keyId: string;
  publicKeyPem: string;
  sign(data: Buffer): Promise<string>;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function keyIdOf(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: 'der', type: 'spki' });
  return `ed25519:${createHash('sha256').update(raw).digest('hex').slice(0, 16)}`;
}

/** Ed25519 from a 32-byte seed (base64), as configured in STEWARD_AUDIT_SIGNING_KEY. */
export class Ed25519Signer implements CheckpointSigner {
  private readonly key: KeyObject;
  readonly keyId: string;
  readonly publicKeyPem: string;

  constructor(seedBase64: string) {
    const seed = Buffer.from(seedBase64.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (seed.length !== 32) throw new Error('the audit signing key must be a 32-byte Ed25519 seed in base64');
    this.key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    const pub = createPublicKey(this.key);
    this.keyId = keyIdOf(pub);
    this.publicKeyPem = pub.export({ format: 'pem', type: 'spki' }).toString();
  }

  async sign(data: Buffer): Promise<string> {
    return sign(null, data, this.key).toString('base64');
  }
}

/** Checks a signature with a public key the auditor holds (never one taken from the audited server). */
export function verifySignature(publicKeyPem: string, data: Buffer, signature: string): boolean {
  try {
    return verify(null, data, createPublicKey(publicKeyPem), Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
