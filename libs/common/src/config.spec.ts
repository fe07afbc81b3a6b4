import { ConfigError, parseConfig, tracesEndpoint } from './config';

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
  it('reads TRUST_PROXY as off, on, a number of hops or the proxies\' addresses, and refuses anything else', () => {
    const trust = (v?: string) => parseConfig({ ...base, ...(v === undefined ? {} : { TRUST_PROXY: v }) }).TRUST_PROXY;
    expect([trust(), trust('false'), trust('0'), trust('true'), trust('1'), trust('2')]).toEqual([false, false, false, true, 1, 2]);
    expect(trust('loopback, uniquelocal,10.0.0.0/8, fd00::/8')).toEqual(['loopback', 'uniquelocal', '10.0.0.0/8', 'fd00::/8']);
    for (const bad of ['everyone', 'loopback,example.com', '10.0.0.0/8;rm']) expect(problems({ ...base, TRUST_PROXY: bad })).toEqual([expect.stringMatching(/^TRUST_PROXY: true, false, a number of hops/)]);
  });

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
    // The same label twice (a rotation typed as "v1:<old>,v1:<new>"): refused, saying why.
    const [a, b] = [Buffer.alloc(32, 1).toString('base64'), Buffer.alloc(32, 2).toString('base64')];
    expect(problems({ ...base, STEWARD_MASTER_KEY: `v1:${a},v1:${b}` })[0]).toMatch(/^STEWARD_MASTER_KEY: each key-encryption key needs its own version label/);
    expect(problems({ ...base, STEWARD_MASTER_KEY: `v1:${a},v2:${b}` })).toEqual([]);
  });

  it('takes the gateway advertise URL as a base URL only (the other API processes reach this one there)', () => {
    expect(parseConfig(base).GATEWAY_ADVERTISE_URL).toBeUndefined();
    expect(parseConfig({ ...base, GATEWAY_ADVERTISE_URL: 'http://10.0.3.7:8080/' }).GATEWAY_ADVERTISE_URL).toBe('http://10.0.3.7:8080');
    for (const bad of ['10.0.3.7:8080', 'ftp://10.0.3.7', 'http://10.0.3.7:8080/mcp', 'http://user:pw@10.0.3.7:8080']) expect(problems({ ...base, GATEWAY_ADVERTISE_URL: bad })[0]).toMatch(/^GATEWAY_ADVERTISE_URL:/);
  });

  it('leaves tracing off without an OTLP endpoint, and exports to <endpoint>/v1/traces with one', () => {
    expect(tracesEndpoint(parseConfig(base))).toBeNull();
    expect(tracesEndpoint(parseConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318/' }))).toBe('http://otel-collector:4318/v1/traces');
    expect(tracesEndpoint(parseConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b.example/otlp/traces' }))).toBe('https://b.example/otlp/traces');
    expect(tracesEndpoint(parseConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'true' }))).toBeNull();
    expect(problems({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://a:4317' })[0]).toMatch(/^OTEL_EXPORTER_OTLP_ENDPOINT:/);
    expect(problems({ ...base, OTEL_TRACES_SAMPLER_ARG: '2' })[0]).toMatch(/^OTEL_TRACES_SAMPLER_ARG:/);
  });

  it('reads collector headers as URL-encoded name=value pairs, and refuses malformed ones without echoing them', () => {
    expect(parseConfig(base).OTEL_EXPORTER_OTLP_HEADERS).toEqual({});
    expect(parseConfig({ ...base, OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20s3cret, x-scope=steward' }).OTEL_EXPORTER_OTLP_HEADERS).toEqual({ authorization: 'Bearer s3cret', 'x-scope': 'steward' });
    for (const bad of ['no-equals-sign-s3cret', 'a=%E0%A4%A', 'bad name=s3cret', 'a=x%0D%0Ainjected: s3cret']) {
      const list = problems({ ...base, OTEL_EXPORTER_OTLP_HEADERS: bad });
      expect(list).toHaveLength(1);
      expect(list[0]).toMatch(/^OTEL_EXPORTER_OTLP_HEADERS:/);
      expect(list[0]).not.toContain('s3cret');
    }
  });
});
