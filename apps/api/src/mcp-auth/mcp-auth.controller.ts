import { Body, Controller, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import {
  AuthorizationDecision,
  AuthorizationRequestView,
  AuthorizationServerMetadata,
  AuthorizeQuery,
  ProtectedResourceMetadata,
  RegisterClientBody,
  RegisteredClient,
  TokenBody,
  TokenView,
} from './mcp-auth.schemas';
import { McpAuthService } from './mcp-auth.service';

/** OAuth 2.1 for MCP clients (Claude Desktop and others) connecting to the gateway by URL. */
@Controller()
export class McpAuthController {
  constructor(private readonly mcp: McpAuthService) {}

  @Endpoint({ method: 'GET', path: '.well-known/oauth-protected-resource', operationId: 'mcpProtectedResourceMetadata', summary: 'OAuth protected resource metadata of the MCP gateway (RFC 9728)', tag: 'MCP authorization', auth: 'public', response: ProtectedResourceMetadata })
  resourceMetadata() {
    return this.mcp.protectedResourceMetadata();
  }

  @Endpoint({ method: 'GET', path: '.well-known/oauth-protected-resource/mcp', operationId: 'mcpProtectedResourceMetadataForPath', summary: 'The same metadata at the path-suffixed address MCP clients try first', tag: 'MCP authorization', auth: 'public', response: ProtectedResourceMetadata })
  resourceMetadataForPath() {
    return this.mcp.protectedResourceMetadata();
  }

  @Endpoint({ method: 'GET', path: '.well-known/oauth-authorization-server', operationId: 'mcpAuthorizationServerMetadata', summary: 'OAuth authorization server metadata (RFC 8414)', tag: 'MCP authorization', auth: 'public', response: AuthorizationServerMetadata })
  serverMetadata() {
    return this.mcp.authorizationServerMetadata();
  }

  @Endpoint({ method: 'POST', path: 'oauth/register', operationId: 'mcpRegisterClient', summary: 'Dynamic client registration (RFC 7591): public clients with PKCE', tag: 'MCP authorization', auth: 'public', sensitive: true, body: RegisterClientBody, response: RegisteredClient, status: 201 })
  register(@Body() body: z.infer<typeof RegisterClientBody>, @Req() req: Request) {
    return this.mcp.register(body, { sourceIp: req.ip ?? null });
  }

  @Endpoint({ method: 'GET', path: 'oauth/authorize', operationId: 'mcpAuthorize', summary: "Authorization endpoint (code + PKCE S256): checks the client and redirects the browser to the console's consent page", tag: 'MCP authorization', auth: 'public', sensitive: true, query: AuthorizeQuery, errors: [400] })
  async authorize(@Query() q: z.infer<typeof AuthorizeQuery>, @Res() res: Response): Promise<void> {
    res.redirect(302, await this.mcp.authorize(q));
  }

  @Endpoint({ method: 'GET', path: 'v1/oauth/requests/:request', operationId: 'getMcpAuthorizationRequest', summary: 'What an MCP client asks for (the consent page shows it)', tag: 'MCP authorization', auth: 'session', response: AuthorizationRequestView, errors: [404] })
  request(@Param('request') id: string) {
    return this.mcp.request(id.slice(0, 100));
  }

  @Endpoint({ method: 'POST', path: 'v1/oauth/requests/:request/approve', operationId: 'approveMcpAuthorization', summary: 'Let the MCP client act for me in this org: answers where to send the browser (with the code)', tag: 'MCP authorization', auth: 'session', response: AuthorizationDecision, errors: [404] })
  approve(@Caller() p: Principal, @Param('request') id: string) {
    return this.mcp.decide(p, id.slice(0, 100), true);
  }

  @Endpoint({ method: 'POST', path: 'v1/oauth/requests/:request/deny', operationId: 'denyMcpAuthorization', summary: 'Refuse the MCP client: answers where to send the browser (access_denied)', tag: 'MCP authorization', auth: 'session', response: AuthorizationDecision, errors: [404] })
  deny(@Caller() p: Principal, @Param('request') id: string) {
    return this.mcp.decide(p, id.slice(0, 100), false);
  }

  @Endpoint({ method: 'POST', path: 'oauth/token', operationId: 'mcpToken', summary: 'Token endpoint (form-encoded): authorization code + PKCE verifier → an access token for the MCP gateway', tag: 'MCP authorization', auth: 'public', sensitive: true, body: TokenBody, response: TokenView })
  token(@Body() body: z.infer<typeof TokenBody>, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    res.setHeader('Cache-Control', 'no-store');
    return this.mcp.token(body, { sourceIp: req.ip ?? null, requestId: req.id });
  }
}
