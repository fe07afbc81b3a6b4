import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, newId } from '@steward/common';
import { checkSinkUrl, sealSinkToken } from '@steward/audit';
import type { EntityManager } from '@steward/db';
import { ConfigKeyProvider, type KeyProvider } from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import type { CreateSiemSinkBody, SiemSinkView, UpdateSiemSinkBody } from './siem-sinks.schemas';

const MAX_SINKS = 100;

interface Row {
  id: string;
  url: string;
  enabled: boolean;
  batch_size: number;
  last_seq: string;
  last_error: string | null;
  held_until: Date | null;
  dead_letters: string;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `s.id, s.url, s.enabled, s.batch_size, s.last_seq, s.last_error, CASE WHEN s.held_until > now() THEN s.held_until END AS held_until, s.created_at, s.updated_at,
  (SELECT count(*) FROM audit_siem_dead_letters d WHERE d.org_id = s.org_id AND d.sink_id = s.id) AS dead_letters`;

function view(r: Row): z.infer<typeof SiemSinkView> {
  return {
    id: r.id,
    url: r.url,
    enabled: r.enabled,
    batchSize: r.batch_size,
    lastSeq: Number(r.last_seq),
    lastError: r.last_error,
    retryAt: r.held_until ? new Date(r.held_until).toISOString() : null,
    deadLetters: Number(r.dead_letters),
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

const isUuid = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);

/** SIEM push sinks: the worker pushes each org's sealed trail to them (libs/audit/src/siem.ts). The token is write-only. */
@Injectable()
export class SiemSinksService {
  private readonly keys: KeyProvider;
  private readonly allowHosts: readonly string[];

  constructor(
    @Inject(CONFIG) config: Config,
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
  ) {
    this.keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
    this.allowHosts = config.STEWARD_EGRESS_ALLOW_HOSTS;
  }

  /** Public https hosts only, unless the operator allowlisted the host; DNS answers checked too (SSRF). */
  private async checkUrl(raw: string): Promise<string> {
    try {
      return await checkSinkUrl(raw, { allowHosts: this.allowHosts });
    } catch (err) {
      throw AppError.validation([{ path: 'url', message: (err as Error).message.slice(0, 300) }]);
    }
  }

  private async one(em: EntityManager, orgId: string, id: string): Promise<Row | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await em.query(`SELECT ${COLUMNS} FROM audit_siem_sinks s WHERE s.org_id = $1 AND s.id = $2`, [orgId, id]);
    return row;
  }

  async list(p: Principal) {
    await this.access.authorize(p, 'read', 'SiemSink');
    return this.db.inOrg(p, async (em) => ({
      items: ((await em.query(`SELECT ${COLUMNS} FROM audit_siem_sinks s WHERE s.org_id = $1 ORDER BY s.created_at LIMIT 100`, [p.orgId])) as Row[]).map(view),
    }));
  }

  async create(p: Principal, body: z.infer<typeof CreateSiemSinkBody>) {
    await this.access.authorize(p, 'create', 'SiemSink');
    const id = newId();
    const url = await this.checkUrl(body.url);
    const { tokenSealed, tokenWrappedKey } = await sealSinkToken(this.keys, p.orgId, id, body.token);
    return this.db.inOrg(p, async (em) => {
      const [{ n }] = await em.query('SELECT count(*)::int AS n FROM audit_siem_sinks WHERE org_id = $1', [p.orgId]);
      if (n >= MAX_SINKS) throw AppError.conflict(`An org may have at most ${MAX_SINKS} SIEM sinks.`);
      await em.query('INSERT INTO audit_siem_sinks (org_id, id, url, token_sealed, token_wrapped_key, enabled, batch_size, last_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
        p.orgId,
        id,
        url,
        tokenSealed,
        tokenWrappedKey,
        body.enabled ?? true,
        body.batchSize ?? 500,
        body.fromSeq ?? 0,
      ]);
      await this.audit.record(em, p, { action: 'siem_sink.create', targetType: 'SiemSink', targetId: id, payload: { url, enabled: body.enabled ?? true, batchSize: body.batchSize ?? 500, fromSeq: body.fromSeq ?? 0 } });
      return view((await this.one(em, p.orgId, id))!);
    });
  }

  async update(p: Principal, id: string, body: z.infer<typeof UpdateSiemSinkBody>) {
    await this.access.authorize(p, 'read', 'SiemSink');
    const sealed = body.token ? await sealSinkToken(this.keys, p.orgId, id, body.token) : null;
    return this.db.inOrg(p, async (em) => {
      const before = await this.one(em, p.orgId, id);
      if (!before) throw AppError.notFound('SIEM sink');
      await this.access.authorize(p, 'update', 'SiemSink', { id });
      // Checked before the transaction's writes; DNS is asked outside any lock we hold.
      const checkedUrl = body.url !== undefined ? await this.checkUrl(body.url) : null;
      const url = body.url !== undefined ? checkedUrl! : before.url;
      // The token is the SIEM's credential: it never follows the sink to another address.
      if (url !== before.url && !body.token) {
        throw AppError.validation([{ path: 'token', message: 'required when the URL changes (the stored token is never sent to another address)' }], 'A new URL needs its token.');
      }
      await em.query(
        `UPDATE audit_siem_sinks SET url = $3, enabled = $4, batch_size = $5,
           token_sealed = COALESCE($6, token_sealed), token_wrapped_key = COALESCE($7, token_wrapped_key),
           last_error = CASE WHEN $8 THEN NULL ELSE last_error END, held_failures = 0, held_until = NULL, updated_at = now()
         WHERE org_id = $1 AND id = $2`,
        [p.orgId, id, url, body.enabled ?? before.enabled, body.batchSize ?? before.batch_size, sealed?.tokenSealed ?? null, sealed?.tokenWrappedKey ?? null, Boolean(sealed || body.url !== undefined)],
      );
      // The token itself is never recorded: only the fact that it changed.
      const changed = Object.keys(body).filter((k) => k !== 'token');
      await this.audit.record(em, p, {
        action: 'siem_sink.update',
        targetType: 'SiemSink',
        targetId: id,
        payload: { changed: body.token ? [...changed, 'token'] : changed, before: { url: before.url, enabled: before.enabled, batchSize: before.batch_size }, after: { url, enabled: body.enabled ?? before.enabled, batchSize: body.batchSize ?? before.batch_size } },
      });
      return view((await this.one(em, p.orgId, id))!);
    });
  }

  async remove(p: Principal, id: string) {
    await this.access.authorize(p, 'read', 'SiemSink');
    await this.db.inOrg(p, async (em) => {
      const sink = await this.one(em, p.orgId, id);
      if (!sink) throw AppError.notFound('SIEM sink');
      await this.access.authorize(p, 'delete', 'SiemSink', { id });
      await em.query('DELETE FROM audit_siem_sinks WHERE org_id = $1 AND id = $2', [p.orgId, id]);
      await this.audit.record(em, p, { action: 'siem_sink.delete', targetType: 'SiemSink', targetId: id, payload: { url: sink.url, lastSeq: Number(sink.last_seq) } });
    });
  }
}
