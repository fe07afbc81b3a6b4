import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { AppError } from '@steward/common';
import type { Principal } from './principal';

/** The authenticated caller of the request (the auth guard put it there). */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<Request>().principal;
  if (!principal) throw AppError.unauthenticated();
  return principal;
});
