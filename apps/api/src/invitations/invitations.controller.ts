import { Body, Controller, Inject, Param, Query, Req } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Config } from '@steward/common';
import type { Request } from 'express';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuthGuard } from '../auth/auth.guard';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { page } from '../core/schemas';
import {
  AcceptedInvitation,
  AcceptInvitationBody,
  CreatedInvitation,
  CreateInvitationBody,
  InvitationView,
  ListInvitationsQuery,
} from './invitations.schemas';
import { InvitationsService } from './invitations.service';

@Controller('v1/invitations')
export class InvitationsController {
  private readonly auth: AuthGuard;

  constructor(
    private readonly invitations: InvitationsService,
    reflector: Reflector,
    db: Db,
    access: AccessService,
    @Inject(CONFIG) config: Config,
  ) {
    this.auth = new AuthGuard(reflector, db, access, config);
  }

  @Endpoint({ method: 'GET', operationId: 'listInvitations', summary: 'Invitations of the org', tag: 'Members', query: ListInvitationsQuery, response: page(InvitationView) })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListInvitationsQuery>) {
    return this.invitations.list(p, q);
  }

  @Endpoint({
    method: 'POST',
    operationId: 'createInvitation',
    summary: 'Invite a person with roles; the token is returned once',
    tag: 'Members',
    body: CreateInvitationBody,
    response: CreatedInvitation,
    status: 201,
    errors: [409],
  })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateInvitationBody>) {
    return this.invitations.create(p, body);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'revokeInvitation', summary: 'Revoke a pending invitation', tag: 'Members', status: 204, errors: [404, 409] })
  async revoke(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.invitations.revoke(p, id);
  }

  @Endpoint({
    method: 'POST',
    path: 'accept',
    operationId: 'acceptInvitation',
    summary: "Join an org with an invitation token: as a new account, with the existing account's password, or signed in as that account (a console session)",
    tag: 'Members',
    auth: 'public',
    sensitive: true,
    body: AcceptInvitationBody,
    response: AcceptedInvitation,
    status: 201,
    errors: [401, 404, 409],
  })
  async accept(@Body() body: z.infer<typeof AcceptInvitationBody>, @Req() req: Request) {
    // Without a password, the account is proven by a console session of it (any org's): how a person
    // whose account has no password (made by single sign-on or SCIM) joins another org.
    const signedIn = body.password === undefined ? await this.auth.authenticate(req).catch(() => null) : null;
    return this.invitations.accept(body, { sourceIp: req.ip ?? null, requestId: req.id }, signedIn?.kind === 'session' ? { userId: signedIn.userId, orgId: signedIn.orgId, sessionId: signedIn.credentialId } : null);
  }
}
