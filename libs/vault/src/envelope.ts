import { gcmOpen, gcmSeal, type KeyProvider, newDataKey } from './keys';

/**
 * One secret under its own random data key: the secret is sealed with AES-256-GCM under the data
 * key, and the data key is wrapped by the current key-encryption key; both with the same AAD,
 * which binds the ciphertext to its owner (a sealed value copied onto another row does not open).
 */
export interface SealedSecret {
  sealed: Buffer;
  wrappedKey: string;
}

export async function sealSecret(keys: KeyProvider, plaintext: string | Buffer, aad: string): Promise<SealedSecret> {
  const dataKey = newDataKey();
  try {
    const sealed = gcmSeal(dataKey, Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext, 'utf8'), aad);
    return { sealed, wrappedKey: await keys.wrap(dataKey, aad) };
  } finally {
    dataKey.fill(0);
  }
}

export async function openSecret(keys: KeyProvider, secret: SealedSecret, aad: string): Promise<Buffer> {
  const dataKey = await keys.unwrap(secret.wrappedKey, aad);
  try {
    return gcmOpen(dataKey, secret.sealed, aad);
  } finally {
    dataKey.fill(0);
  }
}

/** The KEK version a wrapped key names ("v2" of "v2.<...>"). */
export function kekVersionOf(wrapped: string): string {
  const dot = wrapped.indexOf('.');
  return dot < 0 ? '' : wrapped.slice(0, dot);
}

/**
 * AAD of a connector credential: org, connector and credential ids and — binding 2, the
 * credentials table's `aad_version` — its owner (the user it belongs to, or the org), so that a
 * sealed credential whose owner is changed in the database (another user's id written into
 * `user_id`) no longer opens. Binding 1, of credentials sealed before, names no owner; the
 * worker's key job seals those again under binding 2 (`rebindCredentials`).
 */
export const CREDENTIAL_BINDING = 2;
export const credentialAad = (orgId: string, connectorId: string, credentialId: string, owner: string | null, binding: number = CREDENTIAL_BINDING): string =>
  binding === 1 ? `credential|${orgId}|${connectorId}|${credentialId}` : `credential|${orgId}|${connectorId}|${credentialId}|owner:${owner ?? 'org'}`;
/** AAD of a pending OAuth authorisation's PKCE verifier. */
/** A channel secret of the org's incident escalation (webhook signing secret, SMTP password, Slack webhook URL). */
export const incidentSecretAad = (orgId: string, name: string): string => `incident-secret|${orgId}|${name}`;

export const oauthStateAad = (orgId: string, stateId: string): string => `oauth-state|${orgId}|${stateId}`;
