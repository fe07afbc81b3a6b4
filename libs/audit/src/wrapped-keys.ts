import type { WrappedKeySource } from '@steward/vault';

/**
 * The audit trail's data keys wrapped by the key-encryption key, for KEK rotation
 * (`rewrapAll` in libs/vault): month and per-person keys (their AAD, as in keyring.ts) and the
 * SIEM sinks' HEC token keys (as in siem.ts). Destroyed keys (wrapped NULL) are skipped.
 */
export const AUDIT_WRAPPED_KEY_SOURCES: WrappedKeySource[] = [
  {
    name: 'audit_keys',
    table: 'audit_keys',
    keyColumns: [
      ['month', 'date'],
      ['subject', 'text'],
      ['generation', 'integer'],
    ],
    wrappedColumn: 'wrapped',
    aad: (orgId, r) => (r.subject === '' && String(r.generation) === '0' ? `audit/${orgId}/${r.month}` : `audit/${orgId}/${r.month}/${r.subject}/${r.generation}`),
  },
  {
    name: 'audit_siem_sinks',
    table: 'audit_siem_sinks',
    keyColumns: [['id', 'uuid']],
    wrappedColumn: 'token_wrapped_key',
    aad: (orgId, r) => `audit-siem-sink|${orgId}|${r.id}`,
  },
];
