import { Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { createGzip } from 'node:zlib';
import type { Writable } from 'node:stream';
import {
  eraseSubjectIn,
  ErasureBlockedError,
  auditSigner,
  auditSink,
  checkpointOrg,
  csvHeader,
  type ExportFormat,
  type CheckpointSigner,
  type CheckpointSink,
  exportText,
  exportManifest,
  exportRange,
  loadCheckpoints,
  sealOrg,
  verifyOrg,
} from '@steward/audit';
import { AppError, type Config } from '@steward/common';
import { AccessService } from '../access/access.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { Slots } from '../core/slots';
import { CONFIG } from '../core/tokens';
import { VERSION } from '../health/health.controller';
import { AuditService, knownPerson } from './audit.service';

@Injectable()
export class AuditTrailService {
  private readonly signer: CheckpointSigner;
  private readonly sink: CheckpointSink;

  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) config: Config,
  ) {
    this.signer = auditSigner(config);
    this.sink = auditSink(config);
    this.exports = new Slots('audit exports', config.AUDIT_EXPORTS_PER_ORG, Math.max(config.AUDIT_EXPORTS_PER_ORG, 8));
  }

  /** Exports streaming now: each holds a database connection (and the event formats, formatting threads) while it runs. */
  private readonly exports: Slots;

  async erasures(p: Principal) {
    await this.access.authorize(p, 'read', 'AuditEvent');
    return this.db.inOrg(p, async (em) => {
      const rows: { id: string; subject: string; keys_destroyed: number; requested_by: string | null; erased_at: Date }[] = await em.query(
        'SELECT id, subject, keys_destroyed, requested_by, erased_at FROM audit_erasures WHERE org_id = $1 ORDER BY erased_at DESC LIMIT 1000',
        [p.orgId],
      );
      // Who was erased, and by whom: a read of the trail, on the trail itself.
      await this.audit.record(em, p, { action: 'audit.erasures_read', targetType: 'AuditEvent', payload: { count: rows.length } });
      return { items: rows.map((r) => ({ id: r.id, userId: r.subject, keysDestroyed: r.keys_destroyed, requestedBy: r.requested_by, erasedAt: r.erased_at.toISOString() })) };
    });
  }

  /**
   * Crypto-shreds one member's audit fields: irreversible, so a fresh second factor where the org
   * requires step-up, and never one's own (what someone searched or wrote is erased by another person).
   */
  async erase(p: Principal, userId: string, reason: string) {
    await this.access.authorize(p, 'erase', 'AuditEvent');
    if (userId === p.userId) throw AppError.forbidden("Nobody erases their own audit fields: another member allowed to erase does it.");
    const erasure = await this.db.inOrg(p, async (em) => {
      await this.access.requireStepUp(em, p);
      if (!(await knownPerson(em, p.orgId, userId))) throw AppError.notFound('person (neither a member nor in the org\'s audit trail)');
      let e;
      try {
        e = await eraseSubjectIn(em, p.orgId, userId, p.userId);
      } catch (err) {
        if (err instanceof ErasureBlockedError) throw AppError.conflict(err.message);
        throw err;
      }
      await this.audit.record(em, p, {
        action: 'audit.erase',
        targetType: 'User',
        targetId: userId,
        payload: { erasure: e.id, keysDestroyed: e.keysDestroyed },
        sensitive: { reason },
        subject: null,
      });
      return e;
    });
    this.audit.keyring.forgetSubject(p.orgId, userId);
    return { id: erasure.id, userId, keysDestroyed: erasure.keysDestroyed, requestedBy: p.userId, erasedAt: erasure.erasedAt };
  }

  publicKey() {
    return { kid: this.signer.keyId, publicKeyPem: this.signer.publicKeyPem, algorithm: 'Ed25519' as const };
  }

  async verify(p: Principal, publicKeyPem?: string) {
    await this.access.authorize(p, 'verify', 'AuditEvent');
    const result = await verifyOrg(this.db.dataSource, p.orgId, publicKeyPem ?? this.signer.publicKeyPem);
    await this.db.inOrg(p, (em) =>
      this.audit.record(em, p, {
        action: 'audit.verify',
        targetType: 'AuditEvent',
        outcome: result.ok ? 'success' : 'failure',
        payload: { ok: result.ok, checked: result.checked, firstBadSeq: result.firstBadSeq, publicKey: publicKeyPem ? 'given' : 'server' },
      }),
    );
    return { ...result, publicKey: publicKeyPem ? ('given' as const) : ('server' as const) };
  }

  async checkpoints(p: Principal) {
    await this.access.authorize(p, 'read', 'AuditEvent');
    // The last 1,000, read as such (an org accumulates a checkpoint every few minutes), and the read audited.
    return this.db.inOrg(p, async (em) => {
      const rows: { seq: string; hash: Buffer; key_id: string; signature: string; statement: string }[] = await em.query(
        'SELECT seq, hash, key_id, signature, statement FROM audit_checkpoints WHERE org_id = $1 ORDER BY seq DESC LIMIT 1000',
        [p.orgId],
      );
      await this.audit.record(em, p, { action: 'audit.checkpoints_read', targetType: 'AuditEvent', payload: { count: rows.length } });
      return { items: rows.reverse().map((r) => ({ seq: Number(r.seq), hash: r.hash.toString('hex'), at: JSON.parse(r.statement).at, kid: r.key_id, statement: r.statement, signature: r.signature })) };
    });
  }

  /** On demand: seal what is pending, then sign and push a checkpoint. */
  async checkpointNow(p: Principal) {
    await this.access.authorize(p, 'checkpoint', 'AuditEvent');
    await this.db.inOrg(p, (em) => this.audit.record(em, p, { action: 'audit.checkpoint', targetType: 'AuditEvent' }));
    const sealed = await sealOrg(this.db.dataSource, p.orgId, { holder: `api-${process.pid}` });
    const checkpoint = await checkpointOrg(this.db.dataSource, p.orgId, this.signer, this.sink);
    if (!checkpoint) return { sealed: sealed.sealed, checkpoint: null };
    const { org: _org, ...c } = checkpoint;
    return { sealed: sealed.sealed, checkpoint: c };
  }

  async manifest(p: Principal, from?: number, to?: number) {
    await this.access.authorize(p, 'export', 'AuditEvent');
    const range = await exportRange(this.db.dataSource, p.orgId, from, to);
    await this.db.inOrg(p, (em) => this.audit.record(em, p, { action: 'audit.manifest', targetType: 'AuditEvent', payload: { fromSeq: range.fromSeq, toSeq: range.toSeq } }));
    return exportManifest(this.db.dataSource, p.orgId, range.fromSeq, range.toSeq, this.signer);
  }

  /** Streams NDJSON (gzip optional) with backpressure; the export itself is audited first. */
  async export(p: Principal, res: Response, from?: number, to?: number, gzip = false, format: ExportFormat | 'ocsf' | 'ecs' = 'ndjson'): Promise<void> {
    await this.access.authorize(p, 'export', 'AuditEvent');
    const release = this.exports.take(p.orgId);
    try {
      await this.exportWithin(p, res, from, to, gzip, format);
    } finally {
      release();
    }
  }

  private async exportWithin(p: Principal, res: Response, from: number | undefined, to: number | undefined, gzip: boolean, format: ExportFormat | 'ocsf' | 'ecs'): Promise<void> {
    const range = await exportRange(this.db.dataSource, p.orgId, from, to);
    await this.db.inOrg(p, (em) =>
      this.audit.record(em, p, { action: 'audit.export', targetType: 'AuditEvent', payload: { format, fromSeq: range.fromSeq, toSeq: range.toSeq, gzip } }),
    );
    res.status(200);
    const type = { ndjson: 'application/x-ndjson', csv: 'text/csv; charset=utf-8', cef: 'text/plain; charset=utf-8', ocsf: 'application/x-ndjson', ecs: 'application/x-ndjson' }[format];
    const ext = { ndjson: 'ndjson', csv: 'csv', cef: 'cef', ocsf: 'ocsf.ndjson', ecs: 'ecs.ndjson' }[format];
    res.setHeader('Content-Type', gzip ? 'application/gzip' : type);
    res.setHeader('Content-Disposition', `attachment; filename="audit-${range.fromSeq}-${range.toSeq}.${ext}${gzip ? '.gz' : ''}"`);
    const out = gzip ? createGzip() : res;
    if (gzip) (out as ReturnType<typeof createGzip>).pipe(res);
    if (format === 'csv') out.write(`${csvHeader()}\n`);
    // Chunks of thousands of lines, written with backpressure (non-NDJSON formatted off the event loop).
    await writeAll(res, out, exportText(this.db.dataSource, p.orgId, range.fromSeq, range.toSeq, format, VERSION));
  }
}

/**
 * Writes `chunks` to `out` (the response, or a gzip stream piped to it) with backpressure, and ends
 * it. A client that goes away stops the export: the wait for "drain" also ends on the response's
 * "close", and leaving the loop returns the generator, so its cursor's transaction ends and its
 * pooled connection goes back (an abandoned download held one for ever). A source that fails cuts
 * the connection (the client sees the download broken) and the error goes on to be logged.
 */
export async function writeAll(res: Writable, out: Writable, chunks: AsyncIterable<string>): Promise<void> {
  let closed = false;
  const onClose = () => {
    closed = true;
  };
  res.once('close', onClose);
  const gone = () => closed || res.destroyed;
  try {
    for await (const text of chunks) {
      if (gone()) break;
      if (!out.write(text)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            out.off('drain', done);
            out.off('error', done);
            res.off('close', done);
            resolve();
          };
          out.once('drain', done);
          out.once('error', done);
          res.once('close', done);
        });
        if (gone()) break;
      }
    }
  } catch (err) {
    // Failed mid-way (the database went away, a formatter failed): the answer's status is sent, so no
    // problem can follow; the connection is cut, so that the client sees a broken download, never a
    // file that merely stops, and never waits for the rest.
    if (out !== res) out.destroy();
    res.destroy();
    throw err;
  } finally {
    res.off('close', onClose);
  }
  if (gone()) {
    if (out !== res) out.destroy();
    return;
  }
  out.end();
}
