import { applyDecorators, Delete, Get, HttpCode, Patch, Post, Put, SetMetadata } from '@nestjs/common';
import type { z } from 'zod';

export const ENDPOINT = 'steward:endpoint';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * How a route authenticates: none, any principal (session or API key), a console session only,
 * or the org's SCIM provisioning token (`/scim/v2`; sessions and API keys are refused there).
 */
export type EndpointAuth = 'public' | 'any' | 'session' | 'scim';

export interface EndpointSpec {
  method: HttpMethod;
  /** Path below the controller's prefix, with Nest ":param" syntax. */
  path?: string;
  operationId: string;
  summary: string;
  /** Longer prose for the OpenAPI description; how the route authenticates and is rate limited is added. */
  description?: string;
  tag: string;
  auth?: EndpointAuth;
  body?: z.ZodType;
  query?: z.ZodType;
  response?: z.ZodType;
  /** Success status: 200 by default, 201 for creations, 204 for no content. */
  status?: 200 | 201 | 202 | 204;
  /** Stricter per-IP limit for credential-guessing surfaces (sign-in, setup, invitation accept). */
  sensitive?: boolean;
  /** Responses in addition to the common ones (e.g. 404, 409). */
  errors?: number[];
}

const METHOD = { GET: Get, POST: Post, PUT: Put, PATCH: Patch, DELETE: Delete } as const;

/**
 * Declares a route once: Nest routing, success status, validation schemas, auth mode and
 * its OpenAPI description all come from this one spec.
 */
export function Endpoint(spec: EndpointSpec): MethodDecorator {
  return applyDecorators(
    METHOD[spec.method](spec.path ?? ''),
    HttpCode(spec.status ?? 200),
    SetMetadata(ENDPOINT, spec),
  );
}
