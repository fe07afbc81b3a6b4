import { type AuditMaintenance, startAuditMaintenanceFromConfig } from '@steward/audit';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ConfigError, createLogger, guardRegExpBacktracking, loadConfig, type Config, SecretBox } from '@steward/common';
import { createDataSource } from '@steward/db';
import { agentTasksFromConfig, StewardMetrics, startTracing, startWorkerRuntime } from '@steward/jobs';
import { ConfigKeyProvider, rebindCredentials, resealUserSecrets, rewrapAll } from '@steward/vault';
import { createHealthServer } from './health-server';
import { wrappedKeySources } from './wrapped-keys';

function fail(message: string): never {
  process.stderr.write(`steward-worker: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  // A tenant's policy glob cannot hold this process (every org's tasks) in a regular expression.
  guardRegExpBacktracking();
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (config.embedded) {
    fail('no DATABASE_URL: in embedded (development) mode the worker runs inside the API process; start only the API.');
  }
  const log = createLogger({ level: config.LOG_LEVEL, name: 'steward-worker' });
  // OpenTelemetry traces (a span per job, the gate's steps under it): only with an OTLP endpoint configured.
  const tracing = startTracing(config, 'steward-worker', log);
  const dataSource = createDataSource({ url: config.DATABASE_URL!, poolMax: Math.max(4, config.WORKER_CONCURRENCY), applicationName: 'steward-worker', logger: log });
  await dataSource.initialize();
  // Dropping expired audit partitions needs the table owner; without DATABASE_OWNER_URL they are kept.
  const ownerDataSource = config.DATABASE_OWNER_URL ? createDataSource({ url: config.DATABASE_OWNER_URL, poolMax: 1, applicationName: 'steward-worker-retention' }) : undefined;
  await ownerDataSource?.initialize();
  const keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  const agentTasks = await agentTasksFromConfig(config, dataSource, log);
  // Prometheus: this worker's decisions and connector errors, and the shared gauges (approvals, queues, audit lag).
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'steward_worker_' });
  const metrics = new StewardMetrics(registry);
  const runtime = await startWorkerRuntime({
    agentTasks: { ...agentTasks.deps, observer: metrics.gateObserver() },
    redisUrl: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    concurrency: config.WORKER_CONCURRENCY,
    log,
    // KEK rotation: every data key (credentials, OAuth states, audit keys, SIEM tokens, task prompts, transcripts and events, schedules) under the newest version.
    rewrapDataKeys: async () => {
      // Org secrets sealed under the KEK itself (SSO client secrets) are opened and sealed again.
      const box = new SecretBox(config.STEWARD_MASTER_KEY);
      const report = await rewrapAll(dataSource, keys, wrappedKeySources(box));
      // Users' TOTP secrets are sealed under the KEK itself too (users belong to no org): sealed again under the newest version.
      const users = await resealUserSecrets(dataSource, box);
      report.rewrapped.user_totp_secrets = users.resealed;
      report.failed.user_totp_secrets = users.failed;
      // Connector credentials sealed before their owner was named in their AAD: sealed again, bound to it.
      const bound = await rebindCredentials(dataSource, keys);
      report.rewrapped.credential_owner_binding = bound.rebound;
      report.failed.credential_owner_binding = bound.failed;
      const total = Object.values(report.rewrapped).reduce((a, b) => a + b, 0);
      const failed = Object.values(report.failed).reduce((a, b) => a + b, 0);
      if (total || failed) log.info({ target: report.target, rewrapped: report.rewrapped, failed: report.failed }, 'vault: data keys re-wrapped');
      return report;
    },
  });
  const audit: AuditMaintenance = startAuditMaintenanceFromConfig(config, dataSource, log, ownerDataSource);

  // Liveness for orchestrators, and /metrics for Prometheus (METRICS_TOKEN).
  const health = createHealthServer({ config, runtime, registry, metrics, ds: dataSource, redis: agentTasks.deps.redis, log });
  health.listen(config.WORKER_HEALTH_PORT, '0.0.0.0', () => log.info({ port: config.WORKER_HEALTH_PORT }, 'worker health listening'));

  const stop = async (signal: string) => {
    log.info({ signal }, 'shutting down');
    health.close();
    await metrics.close();
    await audit.stop();
    await runtime.close();
    await agentTasks.close();
    await dataSource.destroy();
    await ownerDataSource?.destroy();
    await tracing.shutdown().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => fail(`failed to start: ${err?.stack ?? err}`));
