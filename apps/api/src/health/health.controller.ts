import { Controller, Header, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { AppError, type Config, ErrorCode, type Logger, metricsAccess } from '@steward/common';
import { z } from 'zod';
import { Db } from '../core/db.service';
import { Endpoint } from '../core/endpoint';
import type { ApiMetrics } from '../core/metrics';
import { OpenApiService } from '../core/openapi';
import { CONFIG, LOGGER, METRICS, REDIS } from '../core/tokens';
import { docsPage } from './docs-page';
import { Lifecycle } from '../core/lifecycle';

export const VERSION = '0.1.0';

const Health = z.strictObject({
  status: z.literal('ok'),
  mode: z.enum(['embedded', 'external']),
  version: z
    .string()
    .max(40)
    .regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/),
});
const Ready = z.strictObject({
  status: z.literal('ready'),
  /** auditSealing "behind": the oldest unsealed event is older than AUDIT_MAX_LAG_SECONDS (is the worker running?). Reported, not failed: a worker outage must not take every API replica out of service. */
  checks: z.strictObject({ database: z.literal('ok'), redis: z.literal('ok'), auditSealing: z.enum(['ok', 'behind']) }),
  auditSealingLagSeconds: z.number().min(0).max(1e9),
});

async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

@Controller()
export class HealthController {
  constructor(
    private readonly db: Db,
    private readonly openapi: OpenApiService,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(METRICS) private readonly metrics: ApiMetrics,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly log: Logger,
    private readonly lifecycle: Lifecycle,
  ) {}

  @Endpoint({ method: 'GET', path: 'healthz', operationId: 'health', summary: 'Liveness, and whether the database is embedded (development only)', tag: 'Operations', auth: 'public', response: Health })
  health() {
    return { status: 'ok' as const, mode: this.config.embedded ? ('embedded' as const) : ('external' as const), version: VERSION };
  }

  @Endpoint({ method: 'GET', path: 'readyz', operationId: 'ready', summary: 'Readiness: PostgreSQL and Redis answer; whether audit sealing keeps up is reported (not failed)', tag: 'Operations', auth: 'public', response: Ready, errors: [503] })
  async ready() {
    // Shutting down: nothing new is sent here (the requests under way finish).
    if (this.lifecycle.stopping) throw new AppError(503, ErrorCode.Unavailable, 'Not ready', 'This server is shutting down.');
    const failed: string[] = [];
    await within(2000, this.db.dataSource.query('SELECT 1')).catch(() => failed.push('database'));
    await within(2000, this.redis.ping()).catch(() => failed.push('redis'));
    if (failed.length) throw new AppError(503, ErrorCode.Unavailable, 'Not ready', `Not answering: ${failed.join(', ')}.`);
    // Sealing is the worker's: when it falls behind, this replica still serves (the trail's intake is
    // in each request's own transaction). Said here, logged and in the metric for alerting.
    const lag = await this.sealingLag();
    const behind = lag > this.config.AUDIT_MAX_LAG_SECONDS;
    if (behind) this.log.warn({ lagSeconds: Math.round(lag), limitSeconds: this.config.AUDIT_MAX_LAG_SECONDS }, 'audit sealing is behind: is the worker running?');
    return { status: 'ready' as const, checks: { database: 'ok' as const, redis: 'ok' as const, auditSealing: behind ? ('behind' as const) : ('ok' as const) }, auditSealingLagSeconds: lag };
  }

  private async sealingLag(): Promise<number> {
    const [row] = await within(5000, this.db.dataSource.query('SELECT steward_audit_sealing_lag() AS lag'));
    const lag = Math.max(0, Number(row?.lag ?? 0));
    this.metrics.steward.sealingLag.set(lag);
    return lag;
  }

  @Endpoint({ method: 'GET', path: 'metrics', operationId: 'metrics', summary: 'Prometheus metrics (Bearer METRICS_TOKEN when configured; off in production without one)', tag: 'Operations', auth: 'public', errors: [401, 404] })
  async metricsText(@Req() req: Request, @Res() res: Response): Promise<void> {
    const access = metricsAccess(this.config, req.header('authorization'));
    if (access === 'off') throw AppError.notFound('route');
    if (access === 'unauthorized') {
      res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
      throw AppError.unauthenticated('/metrics takes "Authorization: Bearer <METRICS_TOKEN>".');
    }
    const errors = await this.metrics.steward.collect(this.db.dataSource, this.redis, this.config.REDIS_PREFIX);
    if (errors.length) this.log.warn({ errors }, 'metrics: some gauges could not be read');
    res.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }

  @Endpoint({ method: 'GET', path: 'openapi.json', operationId: 'openapi', summary: 'This OpenAPI 3.1 document', tag: 'Operations', auth: 'public' })
  document() {
    return this.openapi.document();
  }

  @Endpoint({ method: 'GET', path: 'docs', operationId: 'docs', summary: 'API reference page', tag: 'Operations', auth: 'public' })
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'")
  docs() {
    return docsPage(this.openapi.document());
  }
}
