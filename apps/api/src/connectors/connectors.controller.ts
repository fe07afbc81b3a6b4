import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import {
  ApproveToolBody,
  CatalogList,
  ConnectorList,
  ConnectorView,
  CredentialList,
  CredentialTestView,
  CredentialView,
  RevokedCredentialView,
  DiscoveryView,
  EgressHosts,
  EgressHostsView,
  HoldToolBody,
  InstallConnectorBody,
  ListCredentialsQuery,
  MapToolBody,
  OAuthCallbackBody,
  OAuthStartBody,
  OAuthStartView,
  RotateCredentialBody,
  SetCredentialBody,
  ToolList,
  ToolView,
  UpdateConnectorBody,
} from './connectors.schemas';
import { ConnectorsService } from './connectors.service';
import { CredentialsService } from './credentials.service';

const TAG = 'Connectors';

@Controller('v1/catalog/connectors')
export class CatalogConnectorsController {
  constructor(private readonly connectors: ConnectorsService) {}

  @Endpoint({ method: 'GET', operationId: 'listConnectorCatalog', summary: 'Connectors that can be installed: built-in ones and partner MCP servers', tag: TAG, response: CatalogList })
  list() {
    return this.connectors.catalog();
  }
}

@Controller('v1/egress/allow-hosts')
export class EgressController {
  constructor(private readonly connectors: ConnectorsService) {}

  @Endpoint({ method: 'GET', operationId: 'getEgressAllowHosts', summary: "Hosts the org's connectors may reach on private addresses", tag: TAG, response: EgressHostsView })
  get(@Caller() p: Principal) {
    return this.connectors.egressHosts(p);
  }

  @Endpoint({ method: 'PUT', operationId: 'setEgressAllowHosts', summary: 'Replace the org\'s egress allowlist (loopback, private and link-local addresses stay refused for every other host)', tag: TAG, body: EgressHosts, response: EgressHostsView })
  set(@Caller() p: Principal, @Body() body: z.infer<typeof EgressHosts>) {
    return this.connectors.setEgressHosts(p, body);
  }
}

@Controller('v1/connectors')
export class ConnectorsController {
  constructor(
    private readonly connectors: ConnectorsService,
    private readonly credentials: CredentialsService,
  ) {}

  @Endpoint({ method: 'GET', operationId: 'listConnectors', summary: 'Connectors installed in the org', tag: TAG, response: ConnectorList })
  list(@Caller() p: Principal) {
    return this.connectors.list(p);
  }

  @Endpoint({
    method: 'POST',
    operationId: 'installConnector',
    summary: 'Install a catalog connector, or register any remote MCP server by URL (its tools are discovered)',
    tag: TAG,
    body: InstallConnectorBody,
    response: ConnectorView,
    status: 201,
    errors: [409],
  })
  install(@Caller() p: Principal, @Body() body: z.infer<typeof InstallConnectorBody>) {
    return this.connectors.install(p, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getConnector', summary: 'One connector', tag: TAG, response: ConnectorView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.connectors.get(p, id);
  }

  @Endpoint({
    method: 'PATCH',
    path: ':id',
    operationId: 'updateConnector',
    summary: "Change a connector's settings: whether the MCP gateway relays the upstream's sampling and elicitation requests to the client (audited)",
    tag: TAG,
    body: UpdateConnectorBody,
    response: ConnectorView,
    errors: [404],
  })
  update(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof UpdateConnectorBody>) {
    return this.connectors.update(p, id, body);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'deleteConnector', summary: 'Uninstall a connector (its credentials are destroyed)', tag: TAG, status: 204, errors: [404] })
  async remove(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.connectors.remove(p, id);
  }

  @Endpoint({
    method: 'POST',
    path: ':id/discover',
    operationId: 'discoverConnectorTools',
    summary: "List a remote MCP server's tools again: new ones wait for approval, changed ones are held",
    tag: TAG,
    response: DiscoveryView,
    errors: [404, 409, 502, 504],
  })
  discover(@Caller() p: Principal, @Param('id') id: string) {
    return this.connectors.discover(p, id);
  }

  @Endpoint({ method: 'GET', path: ':id/tools', operationId: 'listConnectorTools', summary: 'Tools of a connector: mapping, approval, diff since approval, description flags', tag: TAG, response: ToolList, errors: [404] })
  tools(@Caller() p: Principal, @Param('id') id: string) {
    return this.connectors.tools(p, id);
  }

  @Endpoint({ method: 'PATCH', path: ':id/tools/:name', operationId: 'mapConnectorTool', summary: 'Map a tool to an action type (unmapped tools decide as "unknown")', tag: TAG, body: MapToolBody, response: ToolView, errors: [404, 409] })
  mapTool(@Caller() p: Principal, @Param('id') id: string, @Param('name') name: string, @Body() body: z.infer<typeof MapToolBody>) {
    return this.connectors.mapTool(p, id, name, body);
  }

  @Endpoint({ method: 'POST', path: ':id/tools/:name/approve', operationId: 'approveConnectorTool', summary: 'Approve a tool: its reviewed definition is pinned by hash', tag: TAG, body: ApproveToolBody, response: ToolView, errors: [404, 409] })
  approveTool(@Caller() p: Principal, @Param('id') id: string, @Param('name') name: string, @Body() body: z.infer<typeof ApproveToolBody>) {
    return this.connectors.approveTool(p, id, name, body);
  }

  @Endpoint({ method: 'POST', path: ':id/tools/:name/hold', operationId: 'holdConnectorTool', summary: 'Hold a tool until it is approved again', tag: TAG, body: HoldToolBody, response: ToolView, errors: [404, 409] })
  holdTool(@Caller() p: Principal, @Param('id') id: string, @Param('name') name: string, @Body() body: z.infer<typeof HoldToolBody>) {
    return this.connectors.holdTool(p, id, name, body);
  }

  @Endpoint({
    method: 'POST',
    path: ':id/credentials',
    operationId: 'setConnectorCredential',
    summary: "Set the org's shared credential (admins) or one's own (members); write-only, never returned",
    tag: TAG,
    body: SetCredentialBody,
    response: CredentialView,
    status: 201,
    errors: [404, 409],
  })
  setCredential(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof SetCredentialBody>) {
    return this.credentials.set(p, id, body);
  }

  @Endpoint({
    method: 'POST',
    path: ':id/oauth/start',
    operationId: 'startConnectorOAuth',
    summary: 'Start an OAuth authorisation (code + PKCE): send the user to authorizationUrl',
    tag: TAG,
    body: OAuthStartBody,
    response: OAuthStartView,
    errors: [404, 409],
  })
  oauthStart(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof OAuthStartBody>) {
    return this.credentials.oauthStart(p, id, body);
  }
}

@Controller('v1/credentials')
export class CredentialsController {
  constructor(private readonly credentials: CredentialsService) {}

  @Endpoint({ method: 'GET', operationId: 'listCredentials', summary: 'Credential metadata (never the secret): the org\'s, or one\'s own', tag: TAG, query: ListCredentialsQuery, response: CredentialList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListCredentialsQuery>) {
    return this.credentials.list(p, q);
  }

  @Endpoint({ method: 'POST', path: ':id/test', operationId: 'testCredential', summary: 'Test a credential against its upstream (the decrypt is audited)', tag: TAG, response: CredentialTestView, errors: [404, 409, 502, 504] })
  test(@Caller() p: Principal, @Param('id') id: string) {
    return this.credentials.test(p, id);
  }

  @Endpoint({ method: 'POST', path: ':id/rotate', operationId: 'rotateCredential', summary: 'Rotate a credential: a new secret under a new data key, or an OAuth refresh now', tag: TAG, body: RotateCredentialBody, response: CredentialView, errors: [404, 409, 502] })
  rotate(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof RotateCredentialBody>) {
    return this.credentials.rotate(p, id, body);
  }

  @Endpoint({ method: 'POST', path: ':id/revoke', operationId: 'revokeCredential', summary: 'Revoke a credential: its sealed material is destroyed; an OAuth grant is revoked at the provider too', tag: TAG, response: RevokedCredentialView, errors: [404, 409] })
  revoke(@Caller() p: Principal, @Param('id') id: string) {
    return this.credentials.revoke(p, id);
  }
}

@Controller('v1/oauth')
export class OAuthController {
  constructor(private readonly credentials: CredentialsService) {}

  @Endpoint({
    method: 'POST',
    path: 'callback',
    operationId: 'completeConnectorOAuth',
    summary: 'Complete an OAuth authorisation with the code and state the authorization server returned',
    description: 'The state is single use, expires after ten minutes and belongs to the user and org that started it. The tokens go to the vault; only metadata is returned.',
    tag: TAG,
    body: OAuthCallbackBody,
    response: CredentialView,
    status: 201,
    errors: [404, 409, 502],
  })
  callback(@Caller() p: Principal, @Body() body: z.infer<typeof OAuthCallbackBody>) {
    return this.credentials.oauthCallback(p, body);
  }
}
