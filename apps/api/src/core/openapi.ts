import { Injectable } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { z } from 'zod';
import { ErrorCode } from '@steward/common';
import { ENDPOINT, type EndpointAuth, type EndpointSpec } from './endpoint';

type Json = Record<string, unknown>;

const RATE_LIMIT_HEADERS = {
  'RateLimit-Limit': { $ref: '#/components/headers/RateLimitLimit' },
  'RateLimit-Remaining': { $ref: '#/components/headers/RateLimitRemaining' },
  'RateLimit-Reset': { $ref: '#/components/headers/RateLimitReset' },
};

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid input (problem+json lists each field)',
  401: 'Not signed in, or the credentials are wrong',
  403: 'Not allowed (roles, suspension, or step-up required)',
  404: 'Not found, or not visible to the caller',
  409: 'Conflicts with the current state',
  413: 'Body larger than the limit',
  415: 'Body is not JSON',
  429: 'Rate limit reached',
  500: 'Unexpected error (no detail leaks)',
};

export interface RouteInfo {
  method: string;
  /** OpenAPI path, e.g. /v1/groups/{id} */
  path: string;
  spec: EndpointSpec;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * Spells out what a JSON Schema from zod leaves implicit, without changing what it accepts:
 * the width of every integer (int32 when its bounds fit, else int64) and the length of a UUID.
 */
function annotate(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(annotate);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const schema = node as Json;
  if (schema.type === 'integer' && schema.format === undefined) {
    const min = typeof schema.minimum === 'number' ? schema.minimum : -Infinity;
    const max = typeof schema.maximum === 'number' ? schema.maximum : Infinity;
    schema.format = min >= INT32_MIN && max <= INT32_MAX ? 'int32' : 'int64';
  }
  if (schema.type === 'string' && schema.format === 'uuid' && schema.maxLength === undefined) {
    schema.maxLength = 36;
  }
  Object.values(schema).forEach(annotate);
}

function toSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  delete out.$schema;
  annotate(out);
  return out;
}

const AUTH_TEXT: Record<EndpointAuth, string> = {
  public: 'Public: needs no session or API key.',
  any:
    'Authenticate with the console session cookie or an API key (`Authorization: Bearer stw_...`); ' +
    "the caller's roles (and an API key's scopes) decide what is allowed.",
  session: 'Needs a console session (the HTTP-only cookie set by sign-in); API keys are refused with 403.',
  scim: "SCIM 2.0 (RFC 7644): authenticate with the org's SCIM token (`Authorization: Bearer stp_...`); errors use the SCIM error schema.",
};

/** The operation's description: its own text, then how it authenticates and how it is rate limited. */
function describe(spec: EndpointSpec): string {
  return [
    spec.description,
    AUTH_TEXT[spec.auth ?? 'any'],
    spec.sensitive
      ? 'A strict per-client rate limit applies (sign-in, setup and invitation acceptance are where credentials are guessed).'
      : 'Rate limited per client address; see the RateLimit-* headers.',
  ]
    .filter(Boolean)
    .join(' ');
}

/** The routes of the running app and the OpenAPI 3.1 document built from their Endpoint specs. */
@Injectable()
export class OpenApiService {
  private cached?: Json;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  routes(): RouteInfo[] {
    const routes: RouteInfo[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const instance = wrapper.instance as object | undefined;
      if (!instance || !wrapper.metatype) continue;
      const prefix = String(Reflect.getMetadata('path', wrapper.metatype) ?? '').replace(/^\/|\/$/g, '');
      const proto = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const spec = this.reflector.get<EndpointSpec | undefined>(ENDPOINT, proto[name] as () => unknown);
        if (!spec) continue;
        const sub = (spec.path ?? '').replace(/^\/|\/$/g, '');
        const full = '/' + [prefix, sub].filter(Boolean).join('/');
        routes.push({ method: spec.method, path: full.replace(/:([A-Za-z]+)/g, '{$1}'), spec });
      }
    }
    return routes.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  }

  document(): Json {
    if (this.cached) return this.cached;
    const paths: Record<string, Record<string, Json>> = {};
    const tags = new Set<string>();
    for (const { method, path, spec } of this.routes()) {
      tags.add(spec.tag);
      const parameters: Json[] = [];
      for (const m of path.matchAll(/\{([A-Za-z]+)\}/g)) {
        parameters.push({ name: m[1], in: 'path', required: true, description: 'Record id', schema: { type: 'string', format: 'uuid', maxLength: 36 } });
      }
      if (spec.query) {
        const qs = toSchema(spec.query, 'output') as { properties?: Record<string, Json>; required?: string[] };
        for (const [name, schema] of Object.entries(qs.properties ?? {})) {
          parameters.push({ name, in: 'query', required: false, schema });
        }
      }
      const status = spec.status ?? 200;
      const responses: Record<string, Json> = {};
      responses[String(status)] =
        status === 204 || !spec.response
          ? { description: 'Done', headers: RATE_LIMIT_HEADERS }
          : {
              description: 'Success',
              headers: RATE_LIMIT_HEADERS,
              content: { 'application/json': { schema: toSchema(spec.response, 'output') } },
            };
      const errors = new Set<number>([400, 429, 500, ...(spec.errors ?? [])]);
      if (spec.auth !== 'public') [401, 403].forEach((s) => errors.add(s));
      if (spec.body) [413, 415].forEach((s) => errors.add(s));
      if (/\{/.test(path)) errors.add(404);
      for (const code of [...errors].sort()) {
        responses[String(code)] = {
          description: ERROR_TEXT[code] ?? 'Error',
          headers: code === 429 ? { ...RATE_LIMIT_HEADERS, 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } : RATE_LIMIT_HEADERS,
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        };
      }
      const op: Json = {
        operationId: spec.operationId,
        summary: spec.summary,
        description: describe(spec),
        tags: [spec.tag],
        ...(parameters.length ? { parameters } : {}),
        ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(spec.body, 'input') } } } } : {}),
        responses,
        ...(spec.auth === 'public' ? { security: [] } : spec.auth === 'session' ? { security: [{ session: [] }] } : spec.auth === 'scim' ? { security: [{ scimToken: [] }] } : {}),
      };
      (paths[path] ??= {})[method.toLowerCase()] = op;
    }
    this.cached = {
      openapi: '3.1.0',
      info: {
        title: 'Steward API',
        version: '1.0.0',
        description:
          'Governance control plane for AI agents at work: identity, tenancy, RBAC and the audit trail.\n\n' +
          'Errors are RFC 9457 `application/problem+json` documents with a stable `code`. ' +
          'CORS: the API sends no `Access-Control-Allow-Origin` header, so browsers refuse cross-origin calls; ' +
          'the admin console reaches it same-origin, through its own `/api` proxy.',
        license: { name: 'Proprietary', identifier: 'LicenseRef-Steward' },
        contact: { name: 'Steward', url: 'https://steward.dev' },
      },
      servers: [
        {
          url: 'https://steward.example.internal',
          description: 'Your production Steward deployment (self-hosted: replace the host with your own)',
          'x-internal': false,
        },
      ],
      tags: [...tags].sort().map((name) => ({ name, description: `${name} operations` })),
      security: [{ session: [] }, { apiKey: [] }],
      paths,
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'steward_session', description: 'Console session (HTTP-only cookie set by /v1/auth/login)' },
          apiKey: { type: 'http', scheme: 'bearer', description: 'API key: Authorization: Bearer stw_...' },
          scimToken: { type: 'http', scheme: 'bearer', description: "The org's SCIM provisioning token: Authorization: Bearer stp_..." },
        },
        headers: {
          RateLimitLimit: { description: 'Requests allowed in the window', schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 1000000 } },
          RateLimitRemaining: { description: 'Requests left in the window', schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 1000000 } },
          RateLimitReset: { description: 'Seconds until the window resets', schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 86400 } },
          RetryAfter: { description: 'Seconds to wait before retrying', schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 86400 } },
        },
        schemas: {
          Problem: {
            type: 'object',
            description: 'RFC 9457 problem details',
            required: ['type', 'title', 'status', 'code'],
            additionalProperties: false,
            properties: {
              type: { type: 'string', format: 'uri', maxLength: 200 },
              title: { type: 'string', maxLength: 200 },
              status: { type: 'integer', format: 'int32', minimum: 400, maximum: 599 },
              detail: { type: 'string', maxLength: 2000 },
              instance: { type: 'string', format: 'uri-reference', maxLength: 2000, description: 'The request path' },
              code: { type: 'string', enum: Object.values(ErrorCode), description: 'Stable error code; match on this, never on the text' },
              requestId: { type: 'string', pattern: '^[A-Za-z0-9._-]{8,64}$', maxLength: 64, description: 'Also sent as the X-Request-Id header' },
              errors: {
                type: 'array',
                maxItems: 50,
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['path', 'message'],
                  properties: {
                    path: { type: 'string', pattern: '^[A-Za-z0-9_.()]+$', maxLength: 200, description: 'The field, e.g. "owner.email", or "(body)" / "(query)"' },
                    message: { type: 'string', maxLength: 500 },
                  },
                },
              },
            },
          },
        },
      },
    };
    return this.cached;
  }
}
