import { Body, Controller, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CheckpointList, CheckpointNow, CreateErasureBody, ErasureList, ErasureView, ExportQuery, ManifestQuery, ManifestView, PublicKeyView, VerifyBody, VerifyView } from './trail.schemas';
import { AuditTrailService } from './trail.service';

@Controller('v1/audit')
export class AuditTrailController {
  constructor(private readonly trail: AuditTrailService) {}

  @Endpoint({ method: 'POST', path: 'verify', operationId: 'verifyAuditTrail', summary: "Verify the org's chain and checkpoints in the database (with the auditor's public key when given); names the first bad sequence", tag: 'Audit', body: VerifyBody, response: VerifyView })
  verify(@Caller() p: Principal, @Body() body: z.infer<typeof VerifyBody>) {
    return this.trail.verify(p, body.publicKeyPem);
  }

  @Endpoint({ method: 'GET', path: 'checkpoints', operationId: 'listAuditCheckpoints', summary: 'Signed checkpoints of the org chain', tag: 'Audit', response: CheckpointList })
  checkpoints(@Caller() p: Principal) {
    return this.trail.checkpoints(p);
  }

  @Endpoint({ method: 'POST', path: 'checkpoints', operationId: 'createAuditCheckpoint', summary: 'Seal pending events, then sign and push a checkpoint now', tag: 'Audit', response: CheckpointNow })
  checkpointNow(@Caller() p: Principal) {
    return this.trail.checkpointNow(p);
  }

  @Endpoint({ method: 'GET', path: 'erasures', operationId: 'listAuditErasures', summary: "Erasures of people's audit fields in this org", tag: 'Audit', response: ErasureList })
  erasures(@Caller() p: Principal) {
    return this.trail.erasures(p);
  }

  @Endpoint({ method: 'POST', path: 'erasures', operationId: 'createAuditErasure', summary: "Erase one member's audit fields (crypto-shredding every key that sealed them; refused under legal hold)", tag: 'Audit', body: CreateErasureBody, response: ErasureView, status: 201, errors: [404, 409] })
  erase(@Caller() p: Principal, @Body() body: z.infer<typeof CreateErasureBody>) {
    return this.trail.erase(p, body.userId, body.reason);
  }

  @Endpoint({ method: 'GET', path: 'public-key', operationId: 'getAuditPublicKey', summary: "The server's checkpoint public key (pin your own copy out of band; a verifier must not trust the server it audits)", tag: 'Audit', response: PublicKeyView })
  publicKey() {
    return this.trail.publicKey();
  }

  @Endpoint({ method: 'GET', path: 'export/manifest', operationId: 'getAuditExportManifest', summary: 'The manifest of an export range, signed: count, end hashes and the signed checkpoints inside it', tag: 'Audit', query: ManifestQuery, response: ManifestView })
  manifest(@Caller() p: Principal, @Query() q: z.infer<typeof ManifestQuery>) {
    return this.trail.manifest(p, q.fromSeq, q.toSeq);
  }

  @Endpoint({ method: 'GET', path: 'export', operationId: 'exportAuditTrail', summary: 'Stream the chain as NDJSON (seq, hash, canonical event; verify offline with the manifest), CSV, CEF, OCSF 1.8 or ECS 9.4, gzip optional', tag: 'Audit', query: ExportQuery, errors: [429] })
  async export(@Caller() p: Principal, @Query() q: z.infer<typeof ExportQuery>, @Res() res: Response): Promise<void> {
    await this.trail.export(p, res, q.fromSeq, q.toSeq, q.gzip === 'true', q.format);
  }
}
