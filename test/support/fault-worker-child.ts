// A real agent worker in a child process, for fault tests (`node -r test/support/ts-child.cjs`):
// the worker runtime (BullMQ consumer, outbox relay, sweeper) and the agent loop, against the
// scripted model server and the test ledger connector, configured by environment variables.
// Prints "ready" once it consumes; tests kill it with SIGKILL whenever they like.
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { AuditKeyring } from '@steward/audit';
import { createLogger } from '@steward/common';
import { createDataSource } from '@steward/db';
import { startWorkerRuntime } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import { createLedgerServer, ledgerManifest } from './ledger-connector';

async function main() {
  const env = process.env;
  const log = createLogger({ level: env.FAULT_DEBUG ? 'debug' : 'silent', destination: env.FAULT_DEBUG ? process.stderr : new Writable({ write: (_c, _e, d) => d() }) });
  const ds = createDataSource({ url: env.DATABASE_URL!, poolMax: 6, applicationName: 'fault-worker' });
  await ds.initialize();
  const redis = new Redis(env.REDIS_URL!, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  redis.on('error', () => undefined);
  await redis.connect().catch(() => undefined);
  const keys = new ConfigKeyProvider(env.STEWARD_MASTER_KEY!);
  const leaseSeconds = Number(env.LEASE_SECONDS ?? 2);
  const ledger = { log: env.LEDGER_LOG!, killBefore: Number(env.KILL_BEFORE ?? 0), killAfter: Number(env.KILL_AFTER ?? 0), delayMs: Number(env.LEDGER_DELAY_MS ?? 0) };
  await startWorkerRuntime({
    redisUrl: env.REDIS_URL!,
    prefix: env.REDIS_PREFIX!,
    concurrency: Number(env.CONCURRENCY ?? 4),
    log,
    agentTasks: {
      ds,
      redis,
      keys,
      keyring: new AuditKeyring(keys),
      dataDir: env.DATA_DIR!,
      model: { apiKey: 'offline-demo-model-key', baseURL: env.MODEL_URL!, defaultModel: 'offline-demo-model', routes: {}, stream: env.MODEL_STREAM === '1', maxTokens: 1024, offline: true, retry: { attempts: 4, baseDelayMs: 10 } },
      leaseSeconds,
      relayIntervalMs: 100,
      queuedAfterSeconds: 1,
      log,
      holder: env.HOLDER,
      // A kill point of its own: right before a model turn (KILL_TURN, a fraction).
      beforeTurn: async () => {
        if (Math.random() < Number(env.KILL_TURN ?? 0)) process.kill(process.pid, 'SIGKILL');
      },
      builtins: { ledger: { manifest: ledgerManifest, server: ({ lease }) => createLedgerServer({ ...ledger, lease }) } },
    },
  });
  process.stdout.write('ready\n');
}

main().catch((err) => {
  process.stderr.write(`fault worker failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
