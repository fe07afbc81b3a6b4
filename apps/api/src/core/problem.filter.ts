import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError, ErrorCode } from '@steward/common';
import { databaseUnavailable } from '@steward/db';
import { problem, sendProblem } from './problem';

const TITLES: Record<number, [ErrorCode, string]> = {
  400: [ErrorCode.ValidationFailed, 'Bad request'],
  401: [ErrorCode.Unauthenticated, 'Unauthenticated'],
  403: [ErrorCode.Forbidden, 'Forbidden'],
  404: [ErrorCode.NotFound, 'Not found'],
  405: [ErrorCode.MethodNotAllowed, 'Method not allowed'],
  409: [ErrorCode.Conflict, 'Conflict'],
  413: [ErrorCode.PayloadTooLarge, 'Payload too large'],
  415: [ErrorCode.UnsupportedMediaType, 'Unsupported media type'],
  429: [ErrorCode.RateLimited, 'Too many requests'],
  503: [ErrorCode.Unavailable, 'Service unavailable'],
};

/** Postgres errors that are the caller's doing when they reach us (constraint checks), or an unreachable database. */
function fromDatabase(err: unknown): AppError | undefined {
  if (err instanceof HttpException) return undefined;
  if (databaseUnavailable(err)) return new AppError(503, ErrorCode.Unavailable, 'Service unavailable', 'The database is not answering; try again shortly.');
  const code = (err as { code?: string; driverError?: { code?: string } })?.driverError?.code ?? (err as { code?: string })?.code;
  if (code === '23505') return AppError.conflict('A record with the same unique value already exists.');
  if (code === '22001') return AppError.validation([], 'A value is longer than allowed.');
  // Values the request checks let through and the database cannot take (the request checks should
  // have refused them: logged, so that the check is added).
  if (code === '22021' || code === '22P05') return AppError.validation([], 'A text value holds a character that cannot be stored (such as U+0000).');
  if (code === '22P02' || code === '22007' || code === '22008' || code === '22003') return AppError.validation([], 'A value is out of range or not in a form the API takes.');
  return undefined;
}

/** The one error filter: every error leaves as RFC 9457 problem+json with a stable code. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    const instance = req.originalUrl?.split('?')[0];
    const requestId = req.id;

    const known = exception instanceof AppError ? exception : fromDatabase(exception);
    if (known && !(exception instanceof AppError) && known.status === 400) req.log?.warn({ err: exception }, 'a database refused a value the request checks let through');
    if (known) {
      if (known.status === 429 || known.status === 503) res.setHeader('Retry-After', '60');
      const { scimType, oauthError } = known as { scimType?: string; oauthError?: string };
      sendProblem(res, problem(known.status, known.code, known.title, known.detail, { instance, requestId, errors: known.errors, scimType, oauthError }));
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const [code, title] = TITLES[status] ?? [status >= 500 ? ErrorCode.Internal : ErrorCode.ValidationFailed, 'Error'];
      const detail =
        status === 404 ? `No route ${req.method} ${instance}.` : status < 500 ? exception.message : undefined;
      if (status >= 500) req.log?.error({ err: exception }, 'request error');
      sendProblem(res, problem(status, code, title, detail, { instance, requestId }));
      return;
    }
    req.log?.error({ err: exception }, 'unhandled error');
    sendProblem(
      res,
      problem(500, ErrorCode.Internal, 'Internal error', 'Something went wrong on our side; the request id identifies it in the logs.', {
        instance,
        requestId,
      }),
    );
  }
}
