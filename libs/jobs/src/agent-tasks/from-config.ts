import { Redis } from 'ioredis';
import { AuditKeyring } from '@steward/audit';
import { type Config, ConfigError, type EgressOptions, type Logger, orgEgressOptions } from '@steward/common';
import { type DataSource, inOrg, orgAllowHosts } from '@steward/db';
import { CredentialBroker } from '@steward/gate';
import { ConfigKeyProvider } from '@steward/vault';
import type { AgentDeps } from './agent-loop';
import { outcomeUnknownAfterSeconds } from './outcome-unknown';
import { OFFLINE_API_KEY, OFFLINE_MODEL_LABEL, type ScriptedModelServer, startScriptedModelServer } from './scripted-model';

/**
 * The agent-task dependencies of a worker from its configuration. With no ANTHROPIC_API_KEY the
 * built-in scripted server (the "offline demo model") is started on loopback and used instead.
 */
/** The org's egress rules: the operator's allowlist, and the hosts its admins allowed under the operator's ceiling. */
export function orgEgressReader(ds: DataSource, config: Pick<Config, 'STEWARD_EGRESS_ALLOW_HOSTS' | 'STEWARD_EGRESS_ORG_RANGES'>): (orgId: string) => Promise<EgressOptions> {
  return async (orgId) => {
    return orgEgressOptions(config, await inOrg(ds, { orgId }, (em) => orgAllowHosts(em, orgId)));
  };
}

export async function agentTasksFromConfig(config: Config, ds: DataSource, log: Logger): Promise<{ deps: AgentDeps & { relayIntervalMs: number; consoleUrl?: string; outcomeUnknownAfterSeconds: number }; close(): Promise<void> }> {
  let offline: ScriptedModelServer | undefined;
  // A production install that forgot its key must not quietly run agent tasks on a scripted model
  // (whose sample scripts call real connectors): it says so and stops, unless asked for on purpose.
  if (!config.ANTHROPIC_API_KEY && config.NODE_ENV === 'production' && !config.STEWARD_OFFLINE_MODEL) {
    throw new ConfigError([
      'ANTHROPIC_API_KEY: set it (agent tasks call Claude with it), or set STEWARD_OFFLINE_MODEL=true to run the offline demo model (scripted sample tasks, not a real model) on purpose',
    ]);
  }
  if (!config.ANTHROPIC_API_KEY) {
    offline = await startScriptedModelServer();
    log.warn({ url: offline.url }, `no ANTHROPIC_API_KEY: agent tasks use the ${OFFLINE_MODEL_LABEL} (scripted sample tasks, not a real model)`);
  }
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis (gate)'));
  await redis.connect().catch((err) => log.warn({ err: err.message }, 'redis (gate) not connected yet'));
  const keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  const keyring = new AuditKeyring(keys);
  const egress = orgEgressReader(ds, config);
  return {
    deps: {
      ds,
      redis,
      redisPrefix: config.REDIS_PREFIX,
      keys,
      keyring,
      connectors: { broker: new CredentialBroker(ds, keys, keyring, egress), baseUrls: config.STEWARD_CONNECTOR_BASE_URLS, egress },
      dataDir: config.STEWARD_DATA_DIR,
      model: {
        apiKey: config.ANTHROPIC_API_KEY ?? OFFLINE_API_KEY,
        baseURL: offline?.url ?? config.ANTHROPIC_BASE_URL ?? 'https://api.anthropic.com',
        defaultModel: offline ? OFFLINE_MODEL_LABEL.replace(/ /g, '-') : config.ANTHROPIC_MODEL,
        routes: offline ? {} : config.ANTHROPIC_MODEL_ROUTES,
        tiers: offline ? {} : { quick: config.ANTHROPIC_MODEL_QUICK, standard: config.ANTHROPIC_MODEL, complex: config.ANTHROPIC_MODEL_COMPLEX },
        stream: config.ANTHROPIC_STREAM,
        maxTokens: config.ANTHROPIC_MAX_TOKENS,
        offline: !!offline,
      },
      limits: { maxSteps: config.TASK_MAX_STEPS, budgetMicros: Math.round(config.TASK_BUDGET_USD * 1e6) },
      leaseSeconds: config.TASK_LEASE_SECONDS,
      relayIntervalMs: config.TASK_RELAY_INTERVAL_MS,
      maxRunningPerOrg: config.TASKS_MAX_RUNNING_PER_ORG,
      consoleUrl: config.STEWARD_CONSOLE_URL ?? config.STEWARD_PUBLIC_URL,
      outcomeUnknownAfterSeconds: outcomeUnknownAfterSeconds(config),
      log: log.child({ component: 'agent-tasks' }),
    },
    async close() {
      redis.disconnect();
      await offline?.close();
    },
  };
}
