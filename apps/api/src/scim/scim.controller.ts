import { Body, Controller, Header, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { z } from 'zod';
import { AppError } from '@steward/common';
import { Caller } from '../auth/principal.decorator';
import type { Principal, ScimCaller } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CreateScimTokenBody, ScimGetQuery, ScimGroupBody, ScimListQuery, ScimPatchBody, ScimResource, ScimTokenCreated, ScimTokenList, ScimUserBody } from './scim.schemas';
import { ScimService } from './scim.service';

const SCIM_TYPE = 'application/scim+json; charset=utf-8';

function scim(req: Request): ScimCaller {
  if (!req.scim) throw AppError.unauthenticated();
  return req.scim;
}

/** SCIM 2.0 service provider (RFC 7644) for Okta, Entra ID and other provisioning clients. */
@Controller('scim/v2')
export class ScimController {
  constructor(private readonly scim: ScimService) {}

  @Endpoint({ method: 'GET', path: 'ServiceProviderConfig', operationId: 'scimServiceProviderConfig', summary: 'SCIM: what this service provider supports', tag: 'SCIM', auth: 'scim', response: ScimResource })
  @Header('Content-Type', SCIM_TYPE)
  config() {
    return this.scim.serviceProviderConfig();
  }

  @Endpoint({ method: 'GET', path: 'Users', operationId: 'scimListUsers', summary: 'SCIM: list or filter users (userName, externalId, emails.value, displayName eq)', tag: 'SCIM', auth: 'scim', query: ScimListQuery, response: ScimResource })
  @Header('Content-Type', SCIM_TYPE)
  listUsers(@Req() req: Request, @Query() q: z.infer<typeof ScimListQuery>) {
    return this.scim.listUsers(scim(req), q);
  }

  @Endpoint({ method: 'POST', path: 'Users', operationId: 'scimCreateUser', summary: 'SCIM: provision a user (membership of the org; a new account when the email has none)', tag: 'SCIM', auth: 'scim', body: ScimUserBody, response: ScimResource, status: 201, errors: [409] })
  @Header('Content-Type', SCIM_TYPE)
  async createUser(@Req() req: Request, @Body() body: z.infer<typeof ScimUserBody>, @Res({ passthrough: true }) res: Response) {
    const user = await this.scim.createUser(scim(req), body);
    res.setHeader('Location', user.meta.location);
    return user;
  }

  @Endpoint({ method: 'GET', path: 'Users/:id', operationId: 'scimGetUser', summary: 'SCIM: one user', tag: 'SCIM', auth: 'scim', query: ScimGetQuery, response: ScimResource, errors: [404] })
  @Header('Content-Type', SCIM_TYPE)
  getUser(@Req() req: Request, @Param('id') id: string, @Query() q: z.infer<typeof ScimGetQuery>) {
    return this.scim.getUser(scim(req), id, q);
  }

  @Endpoint({ method: 'PUT', path: 'Users/:id', operationId: 'scimReplaceUser', summary: 'SCIM: replace a user (active: false deactivates)', tag: 'SCIM', auth: 'scim', body: ScimUserBody, response: ScimResource, errors: [404, 409] })
  @Header('Content-Type', SCIM_TYPE)
  replaceUser(@Req() req: Request, @Param('id') id: string, @Body() body: z.infer<typeof ScimUserBody>) {
    return this.scim.replaceUser(scim(req), id, body);
  }

  @Endpoint({ method: 'PATCH', path: 'Users/:id', operationId: 'scimPatchUser', summary: "SCIM: change a user (Okta's and Entra ID's PatchOp shapes; active: false deactivates at once)", tag: 'SCIM', auth: 'scim', body: ScimPatchBody, response: ScimResource, errors: [404, 409] })
  @Header('Content-Type', SCIM_TYPE)
  patchUser(@Req() req: Request, @Param('id') id: string, @Body() body: z.infer<typeof ScimPatchBody>) {
    return this.scim.patchUser(scim(req), id, body);
  }

  @Endpoint({ method: 'DELETE', path: 'Users/:id', operationId: 'scimDeleteUser', summary: 'SCIM: remove a user from the org (sessions and keys end; history stays)', tag: 'SCIM', auth: 'scim', status: 204, errors: [404] })
  async deleteUser(@Req() req: Request, @Param('id') id: string): Promise<void> {
    await this.scim.deleteUser(scim(req), id);
  }

  @Endpoint({ method: 'GET', path: 'Groups', operationId: 'scimListGroups', summary: 'SCIM: list or filter groups (displayName, externalId eq)', tag: 'SCIM', auth: 'scim', query: ScimListQuery, response: ScimResource })
  @Header('Content-Type', SCIM_TYPE)
  listGroups(@Req() req: Request, @Query() q: z.infer<typeof ScimListQuery>) {
    return this.scim.listGroups(scim(req), q);
  }

  @Endpoint({ method: 'POST', path: 'Groups', operationId: 'scimCreateGroup', summary: 'SCIM: create a group with its members', tag: 'SCIM', auth: 'scim', body: ScimGroupBody, response: ScimResource, status: 201, errors: [409] })
  @Header('Content-Type', SCIM_TYPE)
  async createGroup(@Req() req: Request, @Body() body: z.infer<typeof ScimGroupBody>, @Res({ passthrough: true }) res: Response) {
    const group = await this.scim.createGroup(scim(req), body);
    res.setHeader('Location', group.meta.location);
    return group;
  }

  @Endpoint({ method: 'GET', path: 'Groups/:id', operationId: 'scimGetGroup', summary: 'SCIM: one group', tag: 'SCIM', auth: 'scim', query: ScimGetQuery, response: ScimResource, errors: [404] })
  @Header('Content-Type', SCIM_TYPE)
  getGroup(@Req() req: Request, @Param('id') id: string, @Query() q: z.infer<typeof ScimGetQuery>) {
    return this.scim.getGroup(scim(req), id, q);
  }

  @Endpoint({ method: 'PUT', path: 'Groups/:id', operationId: 'scimReplaceGroup', summary: 'SCIM: replace a group (name and members)', tag: 'SCIM', auth: 'scim', body: ScimGroupBody, response: ScimResource, errors: [404, 409] })
  @Header('Content-Type', SCIM_TYPE)
  replaceGroup(@Req() req: Request, @Param('id') id: string, @Body() body: z.infer<typeof ScimGroupBody>) {
    return this.scim.replaceGroup(scim(req), id, body);
  }

  @Endpoint({ method: 'PATCH', path: 'Groups/:id', operationId: 'scimPatchGroup', summary: "SCIM: change a group's name or members (Okta's and Entra ID's PatchOp shapes)", tag: 'SCIM', auth: 'scim', body: ScimPatchBody, response: ScimResource, errors: [404, 409] })
  @Header('Content-Type', SCIM_TYPE)
  patchGroup(@Req() req: Request, @Param('id') id: string, @Body() body: z.infer<typeof ScimPatchBody>) {
    return this.scim.patchGroup(scim(req), id, body);
  }

  @Endpoint({ method: 'DELETE', path: 'Groups/:id', operationId: 'scimDeleteGroup', summary: 'SCIM: delete a group', tag: 'SCIM', auth: 'scim', status: 204, errors: [404] })
  async deleteGroup(@Req() req: Request, @Param('id') id: string): Promise<void> {
    await this.scim.deleteGroup(scim(req), id);
  }
}

/** The org's SCIM tokens: created and rotated by the owner, shown once, stored as HMAC like API keys. */
@Controller('v1/org/scim-tokens')
export class ScimTokensController {
  constructor(private readonly scim: ScimService) {}

  @Endpoint({ method: 'GET', operationId: 'listScimTokens', summary: "The org's SCIM provisioning tokens (never their secrets)", tag: 'Org', response: ScimTokenList })
  list(@Caller() p: Principal) {
    return this.scim.listTokens(p);
  }

  @Endpoint({ method: 'POST', operationId: 'createScimToken', summary: 'Create a SCIM token for the identity provider; the secret is shown once', tag: 'Org', body: CreateScimTokenBody, response: ScimTokenCreated, status: 201 })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateScimTokenBody>) {
    return this.scim.createToken(p, body);
  }

  @Endpoint({ method: 'POST', path: ':id/rotate', operationId: 'rotateScimToken', summary: 'Replace a SCIM token: a new secret (shown once), the old one stops working at once', tag: 'Org', response: ScimTokenCreated, status: 201, errors: [404, 409] })
  rotate(@Caller() p: Principal, @Param('id') id: string) {
    return this.scim.rotateToken(p, id);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'revokeScimToken', summary: 'Revoke a SCIM token', tag: 'Org', status: 204, errors: [404, 409] })
  async revoke(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.scim.revokeToken(p, id);
  }
}
