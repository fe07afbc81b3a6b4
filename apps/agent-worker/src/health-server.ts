import { createServer, type Server } from 'node:http';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { type Config, type Logger, metricsAccess } from '@steward/common';
import type { DataSource } from '@steward/db';
import type { StewardMetrics } from '@steward/jobs';

export interface HealthServerDeps {
  config: Pick<Config, 'METRICS_TOKEN' | 'NODE_ENV' | 'REDIS_PREFIX'>;
  runtime: { running(): boolean; lastHeartbeat(): Date | null };
  registry: Registry;
  metrics: StewardMetrics;
  ds: DataSource;
  redis: Redis;
  log: Logger;
}

/**
 * The worker's only HTTP listener (WORKER_HEALTH_PORT): `/healthz` for orchestrators (200 while
 * the BullMQ worker runs), `/readyz` (it runs and PostgreSQL answers) and `/metrics` for Prometheus, behind METRICS_TOKEN like the API's.
 */
export function createHealthServer(d: HealthServerDeps): Server {
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  return createServer((req, res) => {
    if (req.url === '/metrics') {
      const access = metricsAccess(d.config, req.headers.authorization);
      if (access === 'off') return json(res, 404, { status: 'not found' });
      if (access === 'unauthorized') return json(res, 401, { status: 'unauthorized' }, { 'www-authenticate': 'Bearer realm="metrics"' });
      void d.metrics
        .collect(d.ds, d.redis, d.config.REDIS_PREFIX)
        .then(async (errors) => {
          if (errors.length) d.log.warn({ errors }, 'metrics: some gauges could not be read');
          res.writeHead(200, { 'content-type': d.registry.contentType });
          res.end(await d.registry.metrics());
        })
        .catch((err: unknown) => {
          d.log.error({ err: (err as Error).message }, 'metrics failed');
          if (!res.headersSent) json(res, 500, { status: 'error' });
        });
      return;
    }
    if (req.url === '/readyz') {
      // Ready: the BullMQ worker runs and PostgreSQL answers (within 2 s). What the Helm chart's readiness probe asks.
      if (!d.runtime.running()) return json(res, 503, { status: 'stopped', lastHeartbeat: d.runtime.lastHeartbeat() });
      let timer: NodeJS.Timeout | undefined;
      void Promise.race([d.ds.query('SELECT 1'), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000)))])
        .then(() => json(res, 200, { status: 'ok', database: 'ok' }))
        .catch(() => json(res, 503, { status: 'unavailable', database: 'unreachable' }))
        .finally(() => clearTimeout(timer));
      return;
    }
    if (req.url !== '/healthz') return json(res, 404, { status: 'not found' });
    const ok = d.runtime.running();
    json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'stopped', lastHeartbeat: d.runtime.lastHeartbeat() });
  });
}
