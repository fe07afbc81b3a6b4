import { z } from 'zod';
import { Timestamp, Uuid } from '../core/schemas';

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/).max(64);

export const VerifyBody = z.strictObject({
  /** The auditor's copy of the checkpoint public key (PEM). Without it the server's own key is used, and the answer says so. */
  publicKeyPem: z.string().min(40).max(2000).regex(/^-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----\s*$/, 'a PEM public key').optional(),
});

export const VerifyView = z.strictObject({
  ok: z.boolean(),
  checked: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  lastSeq: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  lastHash: Hex64,
  firstBadSeq: z.int().min(0).max(Number.MAX_SAFE_INTEGER).nullable(),
  reason: z.string().max(1000).nullable(),
  checkpointsVerified: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  publicKey: z.enum(['given', 'server']),
});

export const CheckpointView = z.strictObject({
  seq: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  hash: Hex64,
  at: Timestamp,
  kid: z.string().max(80),
  statement: z.string().max(1000),
  signature: z.string().max(200),
});
export const CheckpointList = z.strictObject({ items: z.array(CheckpointView).max(1000) });
export const CheckpointNow = z.strictObject({ sealed: z.int().min(0).max(Number.MAX_SAFE_INTEGER), checkpoint: CheckpointView.nullable() });

export const PublicKeyView = z.strictObject({ kid: z.string().max(80), publicKeyPem: z.string().max(2000), algorithm: z.literal('Ed25519') });

export const ExportQuery = z.strictObject({
  fromSeq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  toSeq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  gzip: z.enum(['true', 'false']).optional(),
  /** ndjson (exact canonical bytes; what the offline verifier checks), csv, cef, or ocsf / ecs (one JSON event per line). */
  format: z.enum(['ndjson', 'csv', 'cef', 'ocsf', 'ecs']).default('ndjson'),
});
export const ManifestQuery = ExportQuery.omit({ gzip: true, format: true });
export const ManifestView = z.strictObject({
  format: z.literal('steward-audit-ndjson/1'),
  org: z.uuid(),
  fromSeq: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  toSeq: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  count: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  prevHash: Hex64,
  firstHash: Hex64.nullable(),
  lastHash: Hex64.nullable(),
  checkpoints: z.array(CheckpointView.extend({ org: z.uuid() })).max(100_000),
  exportedAt: Timestamp,
  /** The key that signed this manifest (the audit signing key, as for checkpoints). */
  kid: z.string().max(100),
  /**
   * The entries of the range whose events retention purged (their month's partition dropped), by
   * month: their seq runs (the export writes them with a `null` event) and how many entries the month
   * held when dropped (null: not recorded). The offline verifier takes a `null` event only there.
   */
  purged: z
    .array(z.strictObject({ month: z.string().regex(/^\d{4}-\d{2}-01$/), held: z.int().min(0).nullable(), runs: z.array(z.tuple([z.int().min(1), z.int().min(1)])).max(10_000) }))
    .max(10_000),
  /** What the signature covers, as canonical JSON: the org, the range, the count, the hash before the range, both end hashes (so every entry of the export) and the purged runs. */
  statement: z.string().max(1_000_000),
  /** base64 Ed25519 signature over the statement. */
  signature: z.string().max(200),
});

export const ErasureView = z.strictObject({
  id: Uuid,
  /** The erased person (a member's user id). */
  userId: z.string().max(64),
  keysDestroyed: z.number().int().min(0),
  requestedBy: Uuid.nullable(),
  erasedAt: Timestamp,
});

export const CreateErasureBody = z.strictObject({
  /** The member whose audit fields are shredded (every month, every key). */
  userId: Uuid,
  /** Why (the request's reference); sealed in the audit event, never shown in lists. */
  reason: z.string().trim().min(1).max(500),
});

export const ErasureList = z.strictObject({ items: z.array(ErasureView).max(1000) });
