import { ConfigError, createLogger, parseConfig } from '@steward/common';
import type { DataSource } from '@steward/db';
import { redisUrl } from '../../../../test/support/db-urls';
import { agentTasksFromConfig } from './from-config';

/** Which model the worker's agent tasks get from its configuration (the offline demo model only where asked for). */
describe('agentTasksFromConfig', () => {
  const base = {
    DATABASE_URL: 'postgres://unused@127.0.0.1/unused',
    REDIS_URL: redisUrl(),
    STEWARD_TOKEN_PEPPER: 'spec-pepper-0123456789abcdef0123456789abcdef',
    STEWARD_MASTER_KEY: `v1:${Buffer.alloc(32, 3).toString('base64')}`,
    STEWARD_AUDIT_SIGNING_KEY: Buffer.alloc(32, 4).toString('base64'),
  };
  const log = createLogger({ level: 'silent' });
  const ds = {} as DataSource;

  it('refuses to start in production without an Anthropic key, saying what to set', async () => {
    const err = await agentTasksFromConfig(parseConfig({ ...base, NODE_ENV: 'production' }), ds, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/ANTHROPIC_API_KEY: set it .* or set STEWARD_OFFLINE_MODEL=true/);
  });

  it('runs the offline demo model when asked for on purpose, or outside production', async () => {
    for (const env of [{ NODE_ENV: 'production', STEWARD_OFFLINE_MODEL: 'true' }, { NODE_ENV: 'development' }]) {
      const tasks = await agentTasksFromConfig(parseConfig({ ...base, ...env }), ds, log);
      try {
        expect(tasks.deps.model.offline).toBe(true);
        expect(tasks.deps.model.baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
      } finally {
        await tasks.close();
      }
    }
  });

  it('calls the Messages API with the key given, at the regional endpoint when one is set', async () => {
    const tasks = await agentTasksFromConfig(parseConfig({ ...base, NODE_ENV: 'production', ANTHROPIC_API_KEY: 'sk-ant-spec-key', ANTHROPIC_BASE_URL: 'https://eu.anthropic.example' }), ds, log);
    try {
      expect(tasks.deps.model).toMatchObject({ offline: false, apiKey: 'sk-ant-spec-key', baseURL: 'https://eu.anthropic.example' });
    } finally {
      await tasks.close();
    }
  });
});
