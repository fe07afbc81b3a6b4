import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/** Token shapes Steward issues; any string that contains one is scrubbed before it is logged. */
export const SECRET_TOKEN_PATTERN = /\bst[wsipmra]_[A-Za-z0-9_-]{16,}/g;

const SECRET_KEYS = [
  'password',
  'currentPassword',
  'newPassword',
  'passwordHash',
  'password_hash',
  'token',
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  'apiKey',
  'api_key',
  'key',
  'secret',
  'totpCode',
  'totpSecret',
  'code',
  'credential',
  'credentials',
  'authorization',
  'cookie',
  'setupToken',
];

/** pino redaction paths: headers anywhere in a request/response, and secret-named fields to depth 3. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
];

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.replace(SECRET_TOKEN_PATTERN, '[REDACTED]');
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { type: value.name, message: scrub(value.message, depth + 1), stack: scrub(value.stack, depth + 1) };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

export interface LoggerFactoryOptions {
  level?: string;
  name?: string;
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

/** The one logger factory: JSON lines, secrets redacted by path and by token shape. */
export function createLogger(options: LoggerFactoryOptions = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    name: options.name,
    base: { service: options.name, ...options.base },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => scrub(object) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => scrub(a)) as Parameters<typeof method>;
        method.apply(this, scrubbed);
      },
    },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

export type { Logger };
