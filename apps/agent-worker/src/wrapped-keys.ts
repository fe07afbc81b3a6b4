import { AUDIT_WRAPPED_KEY_SOURCES } from '@steward/audit';
import type { SecretBox } from '@steward/common';
import { TASK_WRAPPED_KEY_SOURCES } from '@steward/jobs';
import { kekSealedSources, VAULT_WRAPPED_KEY_SOURCES, type WrappedKeySource } from '@steward/vault';

/**
 * Everything the key-encryption key protects in an org's data, for its rotation: the worker's
 * re-wrap job moves each to the newest version and `vault:status` counts what each version still
 * protects (users' TOTP secrets, which belong to no org, are handled beside these). One list, so
 * that the two cannot disagree; `wrapped-keys.int-spec.ts` checks it against the schema.
 */
export function wrappedKeySources(box: SecretBox): WrappedKeySource[] {
  return [...VAULT_WRAPPED_KEY_SOURCES, ...AUDIT_WRAPPED_KEY_SOURCES, ...TASK_WRAPPED_KEY_SOURCES, ...kekSealedSources(box)];
}
