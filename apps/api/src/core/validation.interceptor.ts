import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import type { Observable } from 'rxjs';
import type { z } from 'zod';
import { AppError, ErrorCode, UUID_PATTERN, type ProblemField } from '@steward/common';
import { ENDPOINT, type EndpointSpec } from './endpoint';

function fields(error: z.ZodError): ProblemField[] {
  return error.issues.slice(0, 50).map((issue) => {
    const path = issue.path.map(String).join('.') || '(body)';
    if (issue.code === 'unrecognized_keys') {
      return { path: issue.path.map(String).join('.') || '(body)', message: `unknown field(s): ${issue.keys.join(', ')}` };
    }
    return { path, message: issue.message };
  });
}

/**
 * Validates path ids, the query and the body against the route's schemas before the
 * handler runs (strict: unknown fields are refused), and replaces them with the parsed values.
 */
@Injectable()
export class ValidationInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const spec = this.reflector.get<EndpointSpec | undefined>(ENDPOINT, context.getHandler());
    const req = context.switchToHttp().getRequest<Request>();
    if (spec) {
      for (const [name, value] of Object.entries(req.params ?? {})) {
        if (name.endsWith('Id') || name === 'id') {
          if (typeof value !== 'string' || !UUID_PATTERN.test(value)) throw AppError.notFound('record');
        }
      }
      if (spec.query) {
        const parsed = spec.query.safeParse(req.query ?? {});
        if (!parsed.success) throw AppError.validation(fields(parsed.error), 'The query string is not valid.');
        Object.defineProperty(req, 'query', { value: parsed.data, writable: true, configurable: true });
      } else if (req.query && Object.keys(req.query).length > 0) {
        throw AppError.validation([{ path: '(query)', message: 'this route takes no query parameters' }]);
      }
      if (spec.body) {
        if (req.body === undefined) {
          throw new AppError(415, ErrorCode.UnsupportedMediaType, 'Unsupported media type', 'Send a JSON body with Content-Type: application/json.');
        }
        const parsed = spec.body.safeParse(req.body);
        if (!parsed.success) throw AppError.validation(fields(parsed.error));
        req.body = parsed.data;
      } else if (req.body !== undefined && !(typeof req.body === 'object' && req.body !== null && Object.keys(req.body).length === 0)) {
        throw AppError.validation([{ path: '(body)', message: 'this route takes no body' }]);
      }
    }
    return next.handle();
  }
}
