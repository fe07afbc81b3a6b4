import type { Response } from 'express';
import { ErrorCode, type ProblemField } from '@steward/common';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  code: ErrorCode;
  requestId?: string;
  errors?: ProblemField[];
  /** SCIM routes only (RFC 7644 §3.12): the SCIM error type. */
  scimType?: string;
  /** OAuth routes only (RFC 6749 §5.2): the OAuth error code. */
  oauthError?: string;
}

export const PROBLEM_BASE = 'https://steward.dev/problems/';

export function problem(
  status: number,
  code: ErrorCode,
  title: string,
  detail?: string,
  extra: { instance?: string; requestId?: string; errors?: ProblemField[]; scimType?: string; oauthError?: string } = {},
): Problem {
  return {
    type: `${PROBLEM_BASE}${code.replace(/_/g, '-')}`,
    title,
    status,
    ...(detail ? { detail } : {}),
    ...(extra.instance ? { instance: extra.instance } : {}),
    code,
    ...(extra.requestId ? { requestId: extra.requestId } : {}),
    ...(extra.errors?.length ? { errors: extra.errors } : {}),
    ...(extra.scimType ? { scimType: extra.scimType } : {}),
    ...(extra.oauthError ? { oauthError: extra.oauthError } : {}),
  };
}

export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

const SCIM_TYPES: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.Conflict]: 'uniqueness',
  [ErrorCode.ValidationFailed]: 'invalidValue',
  [ErrorCode.MalformedJson]: 'invalidSyntax',
};

export function sendProblem(res: Response, body: Problem): void {
  if (res.headersSent) return;
  if (res.req?.originalUrl?.startsWith('/oauth/')) {
    // OAuth endpoints (RFC 6749 §5.2, RFC 7591 §3.2.2): clients read `error` (any JSON type); the problem's fields stay beside it.
    const error = body.oauthError ?? (body.status === 401 ? 'invalid_client' : body.status >= 500 ? 'server_error' : 'invalid_request');
    res.status(body.status).type('application/problem+json').send(JSON.stringify({ error, error_description: body.detail ?? body.title, ...body }));
    return;
  }
  if (res.req?.originalUrl?.startsWith('/scim/')) {
    // RFC 7644 §3.12: the SCIM error schema (status as a string), with the problem's fields beside it.
    const scimType = body.scimType ?? (body.status === 400 ? SCIM_TYPES[body.code] : undefined);
    const scim = { schemas: [SCIM_ERROR_SCHEMA], detail: body.detail ?? body.title, ...body, ...(scimType ? { scimType } : {}), status: String(body.status) };
    res.status(body.status).type('application/scim+json').send(JSON.stringify(scim));
    return;
  }
  res.status(body.status).type('application/problem+json').send(JSON.stringify(body));
}
