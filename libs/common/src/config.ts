import { z } from 'zod';
import { parseEgressRange } from './egress';

/**
 * The one place that reads the environment. Every variable is validated at boot;
 * a bad value stops the process with a message naming the variable. Secrets have
 * no default: they must be given (the dev launcher generates local ones).
 */

const secret = (name: string) =>
  z
    .string({ error: `${name} is required (a random secret of at least 32 bytes, base64 or hex)` })
    .min(32, `${name} must be at least 32 characters (a random secret of at least 32 bytes)`)
    .max(512, `${name} must be at most 512 characters`);

const port = z.coerce.number().int().min(1).max(65535);

const postgresUrl = z
  .string()
  .max(2048)
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// URL');

const redisUrl = z
  .string()
  .max(2048)
  .refine((v) => /^rediss?:\/\//.test(v), 'must be a redis:// or rediss:// URL');

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** One entry of TRUST_PROXY's list: an Express preset or an IPv4/IPv6 address or CIDR range. */
const PROXY_ADDRESS = /^(loopback|linklocal|uniquelocal|\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?|[0-9a-fA-F:]{2,39}(\/\d{1,3})?)$/;

/**
 * Which peers are proxies whose X-Forwarded-For is believed (Express `trust proxy`): `false` (none,
 * the default: the client is the peer), `true` (every hop: only behind one that overwrites the
 * header), a number of hops (`2`: an ingress, then the console), or a list of the proxies'
 * addresses (`loopback,uniquelocal`, `10.0.0.0/8`), the safest where the console is the proxy.
 */
const trustProxy = z
  .string()
  .trim()
  .max(500)
  .transform((v, ctx): boolean | number | string[] => {
    if (/^(true|yes)$/i.test(v)) return true;
    if (/^(false|no|0)$/i.test(v)) return false;
    if (/^\d{1,2}$/.test(v)) return Number(v);
    const list = v.split(',').map((x) => x.trim()).filter(Boolean);
    if (list.length && list.length <= 20 && list.every((x) => PROXY_ADDRESS.test(x))) return list;
    ctx.addIssue({ code: 'custom', message: 'true, false, a number of hops, or a comma-separated list of loopback, linklocal, uniquelocal and IP addresses or CIDR ranges' });
    return z.NEVER;
  });

export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('production'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().max(255).default('0.0.0.0'),
  PORT: port.default(8080),
  /** Runtime database role (neither owner nor superuser). Absent: embedded PGlite (development only). */
  DATABASE_URL: postgresUrl.optional(),
  /** Owner role that runs migrations. Defaults to DATABASE_URL when absent. */
  DATABASE_OWNER_URL: postgresUrl.optional(),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  MIGRATE_AT_BOOT: bool.default(true),
  /** Development only: allow the runtime connection to be a superuser or BYPASSRLS role. */
  ALLOW_PRIVILEGED_DB_ROLE: bool.default(false),
  STEWARD_DATA_DIR: z.string().max(1024).default('.steward/data'),
  EMBEDDED_DB_PORT: port.default(5499),
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  REDIS_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9:_-]{1,64}$/, 'letters, digits, ":", "_" or "-", at most 64')
    .default('steward'),
  /** HMAC key for API keys, session and invitation tokens. Never stored in the database. */
  STEWARD_TOKEN_PEPPER: secret('STEWARD_TOKEN_PEPPER'),
  /** Key-encryption key(s): "v1:<base64 32 bytes>[,v2:...]"; the last one encrypts new data. */
  STEWARD_MASTER_KEY: z
    .string({ error: 'STEWARD_MASTER_KEY is required ("v1:<32 random bytes in base64>")' })
    .max(4096)
    .refine(
      (v) => v.split(',').every((part) => /^v\d{1,4}:[A-Za-z0-9+/=_-]{40,}$/.test(part.trim())),
      'must be "v1:<32 random bytes in base64>", several versions separated by commas',
    )
    // Two keys under one version label: the later one would silently stand for both, and whatever the
    // other sealed would no longer open (while rotation, which goes by label, saw nothing to do).
    .refine((v) => {
      const labels = v.split(',').map((part) => part.trim().split(':', 1)[0]);
      return new Set(labels).size === labels.length;
    }, 'each key-encryption key needs its own version label (v1, v2, ...): a label is given twice'),
  /** Ed25519 seed (32 random bytes, base64) that signs audit checkpoints. */
  STEWARD_AUDIT_SIGNING_KEY: z
    .string({ error: 'STEWARD_AUDIT_SIGNING_KEY is required (32 random bytes in base64: an Ed25519 seed)' })
    .max(128)
    .refine((v) => Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64').length === 32, 'must be 32 random bytes in base64 (an Ed25519 seed)'),
  /** Seconds between signed checkpoints (at most five minutes by default). */
  AUDIT_CHECKPOINT_SECONDS: z.coerce.number().int().min(5).max(3600).default(300),
  /** Where checkpoints are pushed: an HTTP endpoint, else a JSON-lines file (default under STEWARD_DATA_DIR). */
  /**
   * Hosts Steward may reach although they resolve to loopback, private or link-local addresses
   * (a local SIEM forwarder, an internal MCP server): comma-separated names, IPs or *.domain.
   * Everything else outbound (SIEM sinks, remote connectors, web fetches) must be public.
   */
  STEWARD_EGRESS_ALLOW_HOSTS: z
    .string()
    .max(4096)
    .default('')
    .transform((v) => v.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean))
    .refine((hosts) => hosts.every((h) => /^(\*\.)?[a-z0-9.:_[\]-]{1,253}$/.test(h)), 'must be a comma-separated list of host names, IP addresses or *.domain'),
  /**
   * The ceiling on orgs' own allowlists (PUT /v1/egress/allow-hosts): the non-public addresses a
   * host an org's admins allowed may reach, as comma-separated addresses or CIDR ranges
   * ("10.20.0.0/16,fd12:3456::/48"). Empty (the default): an org's allowlist opens no non-public
   * address, only the operator's STEWARD_EGRESS_ALLOW_HOSTS does. Loopback and the API's own
   * network are the operator's: name only the ranges where tenants' internal servers live.
   */
  STEWARD_EGRESS_ORG_RANGES: z
    .string()
    .max(4096)
    .default('')
    .transform((v) => v.split(',').map((r) => r.trim()).filter(Boolean))
    .refine((ranges) => ranges.every((r) => parseEgressRange(r) !== null), 'must be a comma-separated list of IP addresses or CIDR ranges (10.20.0.0/16, fd12::/48)'),
  AUDIT_CHECKPOINT_URL: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  AUDIT_CHECKPOINT_FILE: z.string().max(1024).optional(),
  /** An S3-compatible bucket with Object Lock for checkpoints (takes precedence over URL and file). */
  AUDIT_CHECKPOINT_S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name').optional(),
  AUDIT_CHECKPOINT_S3_PREFIX: z.string().max(512).default('steward/checkpoints/'),
  AUDIT_CHECKPOINT_S3_REGION: z.string().max(64).default('us-east-1'),
  /** For S3-compatible stores (MinIO, Ceph, ...); AWS S3 when unset. */
  AUDIT_CHECKPOINT_S3_ENDPOINT: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  /** Days each checkpoint stays locked; longer than the longest audit retention plus legal holds. */
  AUDIT_CHECKPOINT_S3_RETAIN_DAYS: z.coerce.number().int().min(1).max(36_500).default(400),
  AUDIT_CHECKPOINT_S3_LOCK_MODE: z.enum(['COMPLIANCE', 'GOVERNANCE']).default('COMPLIANCE'),
  /** Optional: without them the AWS SDK's default chain (environment, web identity, instance role). */
  AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID: z.string().max(128).optional(),
  AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY: z.string().max(256).optional(),
  /** Pause of the sealing loop when it found nothing to seal (with work it runs back to back). */
  AUDIT_SEAL_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(200),
  /** Readiness reports sealing as behind (and the API logs it) when the oldest unsealed event is older than this. */
  AUDIT_MAX_LAG_SECONDS: z.coerce.number().int().min(1).max(86_400).default(120),
  /** The API's external base URL (SSO redirect URI, OAuth metadata); default http://localhost:PORT. */
  STEWARD_PUBLIC_URL: z.url({ protocol: /^https?$/ }).max(2000).optional(),
  /** Where the browser lands after an SSO sign-in (the console); default "/". */
  STEWARD_CONSOLE_URL: z.url({ protocol: /^https?$/ }).max(2000).optional(),
  SESSION_TTL_HOURS: z.coerce.number().int().min(1).max(24 * 30).default(12),
  SESSION_COOKIE_SECURE: bool.optional(),
  STEP_UP_TTL_MINUTES: z.coerce.number().int().min(1).max(120).default(10),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10 * 1024 * 1024).default(512 * 1024),
  TRUST_PROXY: trustProxy.default(false),
  /** Requests per minute per client address, across the API. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(1200),
  /** Requests per minute per client address on sign-in, setup and invitation acceptance. */
  AUTH_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(20),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(5),
  /**
   * Agent tasks one org may run at once across all workers (fairness between the orgs sharing
   * them): set it below the workers' total concurrency. An org may set a lower limit of its own.
   */
  TASKS_MAX_RUNNING_PER_ORG: z.coerce.number().int().min(1).max(1000).default(20),
  /** Run the worker inside the API process (forced on in embedded mode). */
  WORKER_IN_PROCESS: bool.default(false),
  WORKER_HEALTH_PORT: port.default(8081),
  /**
   * Bearer token Prometheus must send to `/metrics` (API, and the worker's health port). Unset:
   * `/metrics` is open outside production and answers 404 in production.
   */
  METRICS_TOKEN: secret('METRICS_TOKEN').optional(),
  /**
   * OpenTelemetry traces, off unless an OTLP/HTTP endpoint is set: the collector's base URL (spans
   * go to <url>/v1/traces), or the traces URL itself (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT wins).
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  /** Headers sent to the collector, "name=value,name2=value2" (values URL-encoded): may hold a token, never logged. */
  OTEL_EXPORTER_OTLP_HEADERS: z
    .string()
    .max(8192)
    .optional()
    .transform((v, ctx) => {
      const headers: Record<string, string> = {};
      for (const pair of (v ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
        const i = pair.indexOf('=');
        const name = i > 0 ? pair.slice(0, i).trim().toLowerCase() : '';
        let value: string | null;
        try {
          value = i > 0 ? decodeURIComponent(pair.slice(i + 1).trim()) : null;
        } catch {
          value = null;
        }
        if (!/^[a-z0-9!#$%&'*+.^_`|~-]{1,100}$/.test(name) || value === null || /[\r\n]/.test(value)) {
          ctx.addIssue({ code: 'custom', message: 'must be "name=value" pairs separated by commas (values URL-encoded)' });
          return z.NEVER;
        }
        headers[name] = value;
      }
      return headers;
    }),
  /** The service name traces carry (default steward-api, steward-worker). */
  OTEL_SERVICE_NAME: z.string().regex(/^[a-zA-Z0-9._-]{1,100}$/).optional(),
  /** Share of new traces recorded, 0 to 1 (a request that arrives with a sampled traceparent is always recorded). */
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).default(1),
  /** Turns tracing off even with an endpoint set. */
  OTEL_SDK_DISABLED: bool.default(false),
  /**
   * Anthropic API key. Absent: the worker uses the built-in scripted model server ("offline demo
   * model") — in production only with STEWARD_OFFLINE_MODEL=true, else the worker refuses to start.
   */
  ANTHROPIC_API_KEY: z.string().min(8).max(512).optional(),
  /** Production without ANTHROPIC_API_KEY: run the offline demo model on purpose (a demo install). */
  STEWARD_OFFLINE_MODEL: bool.default(false),
  /** Messages API base URL (a regional endpoint, or a loopback server in tests). */
  ANTHROPIC_BASE_URL: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  /** Default model, and per-workflow routes "workflow-key=model,other=model". */
  ANTHROPIC_MODEL: z.string().regex(/^[a-zA-Z0-9._:-]{1,100}$/).default('claude-sonnet-5-5'),
  /** The models of the quick and complex tiers (an org or a workflow picks a tier; standard is ANTHROPIC_MODEL). */
  ANTHROPIC_MODEL_QUICK: z.string().regex(/^[a-zA-Z0-9._:-]{1,100}$/).default('claude-haiku-5-5'),
  ANTHROPIC_MODEL_COMPLEX: z.string().regex(/^[a-zA-Z0-9._:-]{1,100}$/).default('claude-opus-5-5'),
  ANTHROPIC_MODEL_ROUTES: z
    .string()
    .max(4096)
    .default('')
    .transform((v) => Object.fromEntries(v.split(',').map((p) => p.trim()).filter(Boolean).map((p) => p.split('=').map((x) => x.trim()) as [string, string])))
    .refine((routes) => Object.entries(routes).every(([k, m]) => /^[a-z0-9][a-z0-9-]{0,99}$/.test(k) && /^[a-zA-Z0-9._:-]{1,100}$/.test(m ?? '')), 'must be "workflow-key=model" pairs separated by commas'),
  /** Stream model responses (server-sent events) or wait for whole messages. */
  ANTHROPIC_STREAM: bool.default(true),
  ANTHROPIC_MAX_TOKENS: z.coerce.number().int().min(256).max(64_000).default(4096),
  /** Step limit and per-task budget (US dollars) of a task unless the request sets lower ones. */
  TASK_MAX_STEPS: z.coerce.number().int().min(1).max(1000).default(40),
  TASK_BUDGET_USD: z.coerce.number().min(0.01).max(10_000).default(5),
  /** A worker's lease on a task; renewed while it runs. */
  TASK_LEASE_SECONDS: z.coerce.number().int().min(2).max(3600).default(60),
  /**
   * Base URLs of the built-in connectors' APIs, "gmail=https://...,slack=https://..." (a regional
   * endpoint or a proxy; tests point them at loopback fakes). Absent: each vendor's own.
   */
  STEWARD_CONNECTOR_BASE_URLS: z
    .string()
    .max(4096)
    .default('')
    .transform((v) => Object.fromEntries(v.split(',').map((p) => p.trim()).filter(Boolean).map((p) => { const i = p.indexOf('='); return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as [string, string]; })))
    .refine((m) => Object.entries(m).every(([k, u]) => /^[a-z][a-z0-9-]{0,63}$/.test(k) && URL.canParse(u) && /^https?:$/.test(new URL(u).protocol)), 'must be "connector=https://base-url" pairs separated by commas'),
  /** How often the relay moves the outbox and re-enqueues stale tasks. */
  TASK_RELAY_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** MCP gateway: how long a Watched call waits for its approval (progress notifications meanwhile) before it answers with the pending approval. */
  GATEWAY_APPROVAL_WAIT_SECONDS: z.coerce.number().int().min(0).max(600).default(50),
  /** MCP gateway: how often a waiting call reads its approval's state. */
  GATEWAY_APPROVAL_POLL_MS: z.coerce.number().int().min(20).max(10_000).default(500),
  /** MCP gateway: Watched calls of one session that wait for their approval at once; more answer at once with the pending approval. */
  GATEWAY_MAX_WAITING_CALLS_PER_SESSION: z.coerce.number().int().min(0).max(1000).default(4),
  /** Audit exports of one org streaming at once on one API server (each holds a database connection while it runs); more are refused with 429. */
  AUDIT_EXPORTS_PER_ORG: z.coerce.number().int().min(1).max(50).default(2),
  /** On SIGTERM: how long the API lets the MCP calls under way finish before it closes (keep it under the orchestrator's grace period, 30 s in the chart). */
  SHUTDOWN_DRAIN_SECONDS: z.coerce.number().int().min(0).max(600).default(20),
  /** MCP gateway: tools/call requests per second per API key. */
  GATEWAY_CALLS_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(50),
  /** MCP gateway: open sessions per user (across API processes when GATEWAY_ADVERTISE_URL is set, else per process). */
  GATEWAY_MAX_SESSIONS_PER_USER: z.coerce.number().int().min(1).max(10_000).default(10),
  /** MCP gateway: a session unused this long is closed. */
  GATEWAY_SESSION_IDLE_SECONDS: z.coerce.number().int().min(5).max(86_400).default(1800),
  /** How long a client that read untrusted content stays tainted across its sessions (hours after the last such read; 0: only for the session). */
  GATEWAY_TAINT_HOURS: z.coerce.number().int().min(0).max(24 * 90).default(24),
  /** MCP gateway: largest JSON-RPC request body, bytes (at most BODY_LIMIT_BYTES, which applies first). */
  GATEWAY_MAX_REQUEST_BYTES: z.coerce.number().int().min(1024).max(10 * 1024 * 1024).default(256 * 1024),
  /**
   * MCP gateway, DNS-rebinding protection: the Host header values (`host` or `host:port`) /mcp
   * accepts, comma-separated. Default: the host of STEWARD_PUBLIC_URL, plus loopback names
   * (localhost, 127.0.0.1, [::1], any port) outside production or when STEWARD_PUBLIC_URL is unset.
   */
  GATEWAY_ALLOWED_HOSTS: z
    .string()
    .max(4096)
    .default('')
    .transform((v) => v.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean))
    .refine((hosts) => hosts.every((h) => /^[a-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9a-f:.]{2,45}\](:\d{1,5})?$/.test(h)), 'must be a comma-separated list of host or host:port'),
  /**
   * MCP gateway, DNS-rebinding protection: the Origin header values accepted when a request
   * carries one (a browser), comma-separated. Default: the origins of STEWARD_PUBLIC_URL and
   * STEWARD_CONSOLE_URL, plus loopback origins under the same rule as the hosts.
   */
  GATEWAY_ALLOWED_ORIGINS: z
    .string()
    .max(4096)
    .default('')
    .transform((v) => v.split(',').map((h) => h.trim().toLowerCase().replace(/\/+$/, '')).filter(Boolean))
    .refine((origins) => origins.every((o) => URL.canParse(o) && /^https?:$/.test(new URL(o).protocol) && new URL(o).origin === o), 'must be a comma-separated list of origins (scheme://host[:port])'),
  /** MCP gateway: the SSE `retry:` hint (ms) sent at the start of each stream, how long a client waits before it resumes a stream the gateway closed. */
  GATEWAY_SSE_RETRY_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
  /** MCP gateway: how long a call to an upstream may take (seconds). */
  GATEWAY_UPSTREAM_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(600).default(30),
  /**
   * MCP gateway: how long a call may take (seconds) where the upstream may ask the user for input
   * through it (the org relays elicitation for that connector and the client declared it): a person answers.
   */
  GATEWAY_ELICITATION_WAIT_SECONDS: z.coerce.number().int().min(1).max(3600).default(300),
  /**
   * MCP gateway behind a load balancer with several API processes: the URL at which the other API
   * processes reach this one (http://<pod IP>:<port>). Set, each session is recorded in Redis with
   * its process, and a request that reaches another process is passed on to it, so no session
   * affinity is needed. Unset: sessions are known only to the process that opened them.
   */
  GATEWAY_ADVERTISE_URL: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .refine((u) => { if (!URL.canParse(u)) return false; const x = new URL(u); return (x.pathname === '/' || x.pathname === '') && !x.search && !x.hash && !x.username && !x.password; }, 'must be a base URL (scheme://host:port), no path, query or credentials')
    .transform((u) => new URL(u).origin)
    .optional(),
});

export type Config = z.infer<typeof configSchema> & {
  /** True when no DATABASE_URL is set and an embedded PGlite serves the database. */
  embedded: boolean;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  // Empty strings count as unset, so `FOO=` in an env file does not slip through as a value.
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = configSchema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return { ...result.data, embedded: !result.data.DATABASE_URL };
}

let cached: Config | undefined;

/** The process configuration, validated once. Only this module reads process.env. */
export function loadConfig(overrides: Record<string, string | undefined> = {}): Config {
  if (!cached || Object.keys(overrides).length > 0) {
    const config = parseConfig({ ...process.env, ...overrides });
    if (Object.keys(overrides).length > 0) return config;
    cached = config;
  }
  return cached;
}

/** Where spans are exported (OTLP/HTTP), or null when tracing is off. */
export function tracesEndpoint(config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_SDK_DISABLED'>): string | null {
  if (config.OTEL_SDK_DISABLED) return null;
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!config.OTEL_EXPORTER_OTLP_ENDPOINT) return null;
  return `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
}

const dbToolSchema = configSchema.pick({ LOG_LEVEL: true, DATABASE_URL: true, DATABASE_OWNER_URL: true });
export type DbToolConfig = z.infer<typeof dbToolSchema>;

/** The few variables the database tools (migrate, drift check) need: no secrets. */
export function loadDbToolConfig(): DbToolConfig {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(dbToolSchema.shape)) {
    const value = process.env[key];
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = dbToolSchema.safeParse(cleaned);
  if (!result.success) throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return result.data;
}
