import { Writable } from 'node:stream';
import { AuditKeyring } from '@steward/audit';
import { createLogger } from '@steward/common';
import type { AgentDeps } from '@steward/jobs';
import { ConfigKeyProvider } from '@steward/vault';
import type { Harness } from './harness';

/** A logger that writes nothing (the worker's logs are not what these tests check). */
export const quietLogger = () => createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, d) => d() }) });

/**
 * What the agent loop needs to run a task in a test: the harness's database, Redis and keys, and
 * the scripted model server at `modelUrl` — the offline demo model unless `model` says otherwise
 * (e.g. a priced model name with `offline: false`).
 */
export function agentDepsFor(h: Harness, modelUrl: string, model: Partial<AgentDeps['model']> = {}): AgentDeps {
  const keys = new ConfigKeyProvider(h.config.STEWARD_MASTER_KEY);
  return {
    ds: h.ds,
    keys,
    keyring: new AuditKeyring(keys),
    log: quietLogger(),
    redis: h.redis,
    redisPrefix: h.config.REDIS_PREFIX,
    dataDir: h.config.STEWARD_DATA_DIR,
    model: { apiKey: 'offline-demo-model-key', baseURL: modelUrl, defaultModel: 'offline-demo-model', routes: {}, stream: false, maxTokens: 1024, offline: true, retry: { attempts: 2, baseDelayMs: 10 }, ...model },
    leaseSeconds: 5,
  };
}
