import { ConfigError, parseConfig } from './config';

const base = {
  STEWARD_TOKEN_PEPPER: 'p'.repeat(40),
  STEWARD_MASTER_KEY: `v1:${Buffer.alloc(32, 1).toString('base64')}`,
  STEWARD_AUDIT_SIGNING_KEY: Buffer.alloc(32, 2).toString('base64'),
};

function problems(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('config', () => {
  it('has no default for a secret and names the missing variable', () => {
    const list = problems({});
    expect(list.some((p) => p.startsWith('STEWARD_TOKEN_PEPPER:'))).toBe(true);
    expect(list.some((p) => p.startsWith('STEWARD_MASTER_KEY:'))).toBe(true);
  });

  it('treats an empty value as missing', () => {
    expect(problems({ ...base, STEWARD_TOKEN_PEPPER: '' })[0]).toMatch(/^STEWARD_TOKEN_PEPPER:/);
  });

  it('names each bad variable with what is wrong', () => {
    const list = problems({ ...base, PORT: '99999', DATABASE_URL: 'mysql://x', REDIS_URL: 'http://x', MIGRATE_AT_BOOT: 'maybe' });
    expect(list.map((p) => p.split(':')[0]).sort()).toEqual(['DATABASE_URL', 'MIGRATE_AT_BOOT', 'PORT', 'REDIS_URL']);
  });

  it('uses the embedded database when no DATABASE_URL is set, with documented defaults', () => {
    const config = parseConfig(base);
    expect(config).toMatchObject({ embedded: true, PORT: 8080, REDIS_URL: 'redis://127.0.0.1:6379', NODE_ENV: 'production' });
    expect(parseConfig({ ...base, DATABASE_URL: 'postgres://u@h/db' }).embedded).toBe(false);
  });

  it('refuses a master key that is not 32 bytes in a versioned form', () => {
    expect(problems({ ...base, STEWARD_MASTER_KEY: 'just-a-password' })[0]).toMatch(/^STEWARD_MASTER_KEY:/);
  });
});
