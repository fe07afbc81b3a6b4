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
}

export const PROBLEM_BASE = 'https://steward.dev/problems/';

export function problem(
  status: number,
  code: ErrorCode,
  title: string,
  detail?: string,
  extra: { instance?: string; requestId?: string; errors?: ProblemField[] } = {},
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
  };
}

export function sendProblem(res: Response, body: Problem): void {
  if (res.headersSent) return;
  res.status(body.status).type('application/problem+json').send(JSON.stringify(body));
}
