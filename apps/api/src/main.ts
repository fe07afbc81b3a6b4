import 'reflect-metadata';
import { Redis } from 'ioredis';
import { ConfigError, createLogger, loadConfig, type Config, type Logger } from '@steward/common';
import { createDataSource, type DataSource, type EmbeddedPostgres, runMigrations, startEmbeddedPostgres } from '@steward/db';
import { agentTasksFromConfig, startTracing, startWorkerRuntime, type WorkerRuntime } from '@steward/jobs';
import { type AuditMaintenance, startAuditMaintenanceFromConfig } from '@steward/audit';
import { createApp } from './create-app';
import { ApiMetrics } from './core/metrics';
import { API_REDIS_OPTIONS } from './core/redis';
import { SetupService } from './setup/setup.service';
import { Lifecycle } from './core/lifecycle';
import { GatewayService } from './gateway/gateway.service';

function fail(message: string): never {
  process.stderr.write(`steward-api: ${message}\n`);
  process.exit(1);
}

async function checkRuntimeRole(ds: DataSource, config: Config, log: Logger): Promise<void> {
  const [role] = await ds.query(
    `SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`,
  );
  if ((role.rolsuper || role.rolbypassrls) && !config.embedded && !config.ALLOW_PRIVILEGED_DB_ROLE) {
    fail(
      `DATABASE_URL connects as "${role.name}", a superuser or BYPASSRLS role: Row Level Security would not apply. ` +
        'Connect as the runtime role (steward_app; see docs/operations.md, "Database roles"), or set ALLOW_PRIVILEGED_DB_ROLE=true for development.',
    );
  }
  if (role.rolsuper || role.rolbypassrls) log.warn({ role: role.name }, 'runtime database role bypasses Row Level Security (development only)');
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  // Development conveniences never reach production by accident (an empty DATABASE_URL from a
  // secret that did not sync, a flag left on): the embedded database (one shared session, no
  // cross-process locks, a superuser) and a runtime role that bypasses Row Level Security.
  if (config.NODE_ENV === 'production' && config.embedded) {
    fail('DATABASE_URL is not set: the embedded PostgreSQL is for development only (npm run dev sets NODE_ENV=development). Set DATABASE_URL to the runtime role (steward_app).');
  }
  if (config.NODE_ENV === 'production' && config.ALLOW_PRIVILEGED_DB_ROLE) {
    fail('ALLOW_PRIVILEGED_DB_ROLE=true is for development only: in production the runtime role must be subject to Row Level Security.');
  }
  const log = createLogger({ level: config.LOG_LEVEL, name: 'steward-api' });
  // OpenTelemetry traces: only with OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT); registered before the first span.
  const tracing = startTracing(config, 'steward-api', log);

  let embedded: EmbeddedPostgres | undefined;
  let runtimeUrl = config.DATABASE_URL;
  if (config.embedded) {
    embedded = await startEmbeddedPostgres(config.STEWARD_DATA_DIR, config.EMBEDDED_DB_PORT);
    runtimeUrl = embedded.url;
    log.warn(
      { dataDir: embedded.dataDir },
      'DEVELOPMENT MODE: no DATABASE_URL, serving an embedded PostgreSQL (PGlite). Not for production: set DATABASE_URL.',
    );
  }

  if (config.MIGRATE_AT_BOOT) {
    const owner = createDataSource({ url: config.DATABASE_OWNER_URL ?? runtimeUrl!, poolMax: embedded ? 1 : 2, applicationName: 'steward-migrate', logger: log });
    await owner.initialize();
    try {
      await runMigrations(owner, log, { lock: !embedded });
    } finally {
      await owner.destroy();
    }
  }

  const dataSource = createDataSource({ url: runtimeUrl!, poolMax: embedded ? 1 : config.DATABASE_POOL_MAX, applicationName: 'steward-api', logger: log });
  await dataSource.initialize();
  if (embedded) {
    // PGlite has one shared session: act as the runtime role in it, so RLS applies in development too.
    await dataSource.query('SET ROLE steward_app');
  }
  await checkRuntimeRole(dataSource, config, log);

  const redis = new Redis(config.REDIS_URL, API_REDIS_OPTIONS);
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis'));
  await redis.connect().catch((err) => fail(`Redis at ${new URL(config.REDIS_URL).host} does not answer (${err.message}). Start redis-server or set REDIS_URL.`));

  const metrics = new ApiMetrics();
  const app = await createApp({ config, log, dataSource, redis, metrics });

  let worker: WorkerRuntime | undefined;
  let agentTasks: Awaited<ReturnType<typeof agentTasksFromConfig>> | undefined;
  let audit: AuditMaintenance | undefined;
  // In embedded mode PGlite has one session: no separate owner connection (partitions are kept).
  const ownerDataSource = !embedded && config.WORKER_IN_PROCESS && config.DATABASE_OWNER_URL ? createDataSource({ url: config.DATABASE_OWNER_URL, poolMax: 1, applicationName: 'steward-retention' }) : undefined;
  await ownerDataSource?.initialize();
  if (embedded || config.WORKER_IN_PROCESS) {
    agentTasks = await agentTasksFromConfig(config, dataSource, log.child({ component: 'worker' }));
    worker = await startWorkerRuntime({ redisUrl: config.REDIS_URL, prefix: config.REDIS_PREFIX, concurrency: config.WORKER_CONCURRENCY, log: log.child({ component: 'worker' }), agentTasks: { ...agentTasks.deps, observer: metrics.steward.gateObserver(), ...(embedded ? { listen: false, relayIntervalMs: Math.min(agentTasks.deps.relayIntervalMs, 500) } : {}) } });
    audit = startAuditMaintenanceFromConfig(config, dataSource, log, ownerDataSource);
  }

  const setup = app.get(SetupService);
  if (!(await setup.completed())) {
    const token = await setup.issueToken();
    if (token) {
      // Printed once, straight to the terminal (never into the JSON logs).
      process.stderr.write(
        `\n  Steward first-run setup\n  No org exists yet. Create the first org and its owner with this one-time token (valid 24 h):\n\n    ${token}\n\n` +
          `  In the console: http://localhost:3000/setup   or:  curl -X POST http://localhost:${config.PORT}/v1/setup -H 'content-type: application/json' \\\n` +
          `    -d '{"setupToken":"${token}","org":{"name":"Acme","slug":"acme"},"owner":{"email":"you@acme.example","name":"You","password":"a long passphrase"}}'\n\n`,
      );
    }
  }

  await app.listen(config.PORT, config.HOST);
  log.info({ port: config.PORT, host: config.HOST, mode: embedded ? 'embedded' : 'external' }, 'api listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Readiness answers 503 and the gateway takes nothing new; the MCP calls under way are answered
    // first (a write cut mid-way would leave its outcome unknown), for up to SHUTDOWN_DRAIN_SECONDS.
    app.get(Lifecycle).stopping = true;
    const left = await app.get(GatewayService).drain(config.SHUTDOWN_DRAIN_SECONDS * 1000);
    if (left) log.warn({ calls: left }, 'shutting down with MCP calls still under way (SHUTDOWN_DRAIN_SECONDS passed)');
    await audit?.stop().catch(() => undefined);
    await worker?.close().catch(() => undefined);
    await agentTasks?.close().catch(() => undefined);
    // (Bounded: an event stream a client keeps open would hold the server's close for ever; its client reconnects.)
    await Promise.race([app.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
    await dataSource.destroy().catch(() => undefined);
    redis.disconnect();
    await embedded?.stop().catch(() => undefined);
    await tracing.shutdown().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`steward-api: failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
