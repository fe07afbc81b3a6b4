import { Inject, Injectable } from '@nestjs/common';
import { AppError, type Config, hashToken, newId, newToken, TokenPrefix, tokenHint } from '@steward/common';
import { ApiKey } from '@steward/db';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import type { ApiKeyView, CreateApiKeyBody, ListApiKeysQuery } from './api-keys.schemas';

function status(k: ApiKey): z.infer<typeof ApiKeyView>['status'] {
  if (k.revokedAt) return 'revoked';
  if (k.expiresAt.getTime() <= Date.now()) return 'expired';
  return 'active';
}

function view(k: ApiKey): z.infer<typeof ApiKeyView> {
  return {
    id: k.id,
    userId: k.userId,
    name: k.name,
    hint: k.hint,
    scopes: k.scopes,
    status: status(k),
    expiresAt: k.expiresAt.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    createdAt: k.createdAt.toISOString(),
  };
}

@Injectable()
export class ApiKeysService {
  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async list(p: Principal, q: z.infer<typeof ListApiKeysQuery>) {
    const reach = this.access.reach(p, 'read', 'ApiKey');
    if (reach === 'none') await this.access.authorize(p, 'read', 'ApiKey');
    if (reach === 'own' && q.user && q.user !== p.userId) throw AppError.forbidden('Your roles allow listing only your own API keys.');
    const user = reach === 'own' ? p.userId : q.user;
    return this.db.inOrg(p, async (em) => {
      const qb = em.createQueryBuilder(ApiKey, 'k').where('k.org_id = :org', { org: p.orgId });
      if (user) qb.andWhere('k.user_id = :user', { user });
      if (q.status === 'revoked') qb.andWhere('k.revoked_at IS NOT NULL');
      if (q.status === 'expired') qb.andWhere('k.revoked_at IS NULL AND k.expires_at <= now()');
      if (q.status === 'active') qb.andWhere('k.revoked_at IS NULL AND k.expires_at > now()');
      const [rows, total] = await qb.orderBy('k.created_at', 'DESC').addOrderBy('k.id', 'DESC').take(q.limit).skip(q.offset).getManyAndCount();
      return { items: rows.map(view), total, limit: q.limit, offset: q.offset };
    });
  }

  /** A key for the caller: scopes within what the caller holds, expiring, shown once. */
  async create(p: Principal, body: z.infer<typeof CreateApiKeyBody>) {
    await this.access.authorize(p, 'create', 'ApiKey', { id: p.userId, userId: p.userId });
    const held = new Set(p.rules.map((r) => `${r.action}:${r.subject}`));
    const beyond = body.scopes.filter((s) => s !== '*' && !held.has(s));
    if (beyond.length) {
      throw AppError.validation(beyond.map((s) => ({ path: 'scopes', message: `you do not hold "${s}"` })), 'A key cannot carry permissions its user does not hold.');
    }
    const secret = newToken(TokenPrefix.ApiKey);
    const key = await this.db.inOrg(p, async (em) => {
      const k = em.create(ApiKey, {
        id: newId(),
        orgId: p.orgId,
        userId: p.userId,
        name: body.name,
        hint: tokenHint(secret),
        keyHash: hashToken(this.config.STEWARD_TOKEN_PEPPER, secret),
        scopes: [...new Set(body.scopes)],
        expiresAt: new Date(Date.now() + body.expiresInDays * 86_400_000),
        revokedAt: null,
        lastUsedAt: null,
      });
      await em.save(k);
      await this.audit.record(em, p, { action: 'api_key.create', targetType: 'ApiKey', targetId: k.id, payload: { name: k.name, hint: k.hint, scopes: k.scopes, expiresAt: k.expiresAt.toISOString() } });
      return k;
    });
    return { apiKey: view(key), secret };
  }

  async get(p: Principal, id: string) {
    return this.db.inOrg(p, async (em) => {
      const k = await em.findOneBy(ApiKey, { orgId: p.orgId, id });
      if (!k) throw AppError.notFound('API key');
      await this.access.authorize(p, 'read', 'ApiKey', { id: k.id, userId: k.userId });
      return view(k);
    });
  }

  async revoke(p: Principal, id: string): Promise<void> {
    await this.db.inOrg(p, async (em) => {
      const k = await em.findOneBy(ApiKey, { orgId: p.orgId, id });
      if (!k) throw AppError.notFound('API key');
      await this.access.authorize(p, 'revoke', 'ApiKey', { id: k.id, userId: k.userId });
      if (k.revokedAt) throw AppError.conflict('The key is already revoked.');
      k.revokedAt = new Date();
      await em.save(k);
      // The schedules this key wrote stop with it: a leaked key's schedules would go on creating tasks
      // as their owner. Their owner resumes them (after a look) from a session or another key.
      const paused: { id: string }[] = await em.query(
        `WITH u AS (UPDATE task_schedules SET paused_at = now(), updated_at = now() WHERE org_id = $1 AND written_with_key = $2 AND paused_at IS NULL RETURNING id) SELECT id FROM u ORDER BY id`,
        [p.orgId, k.id],
      );
      await this.audit.record(em, p, { action: 'api_key.revoke', targetType: 'ApiKey', targetId: k.id, payload: { name: k.name, hint: k.hint, owner: k.userId, ...(paused.length ? { schedulesPaused: paused.map((s) => s.id) } : {}) } });
    });
  }
}
