import { randomBytes } from 'node:crypto';
import { Body, Controller, Inject, Param, Query, Req, Res } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import type { z } from 'zod';
import { AppError, type Config } from '@steward/common';
import { AccessService } from '../access/access.service';
import { AuthGuard, readCookie } from '../auth/auth.guard';
import { LoginBody } from '../auth/auth.schemas';
import { AuthService } from '../auth/auth.service';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { sessionCookie } from '../auth/session-cookie';
import { Db } from '../core/db.service';
import { Endpoint } from '../core/endpoint';
import { CONFIG } from '../core/tokens';
import { ssoBindingCookie } from '../sso/sso.controller';
import { SsoStartBody } from '../sso/sso.schemas';
import { SsoService } from '../sso/sso.service';
import { consentPage, continuePage, messagePage, signInPage } from './consent-page';
import {
  AuthorizationDecision,
  AuthorizationRequestView,
  AuthorizationServerMetadata,
  AuthorizeQuery,
  ProtectedResourceMetadata,
  RegisterClientBody,
  ConsentDecisionForm,
  ConsentPageQuery,
  ConsentSignInForm,
  ConsentSsoForm,
  RegisteredClient,
  RevokeBody,
  TokenBody,
  TokenView,
} from './mcp-auth.schemas';
import { McpAuthService } from './mcp-auth.service';

/** OAuth 2.1 for MCP clients (Claude Desktop and others) connecting to the gateway by URL. */
/** Binds the sign-in form to the browser that was shown it (SameSite=Strict: a cross-site post never carries it). */
const BINDING_COOKIE = 'steward_oauth_binding';

@Controller()
export class McpAuthController {
  private readonly guard: AuthGuard;

  constructor(
    private readonly mcp: McpAuthService,
    private readonly auth: AuthService,
    private readonly sso: SsoService,
    @Inject(CONFIG) private readonly config: Config,
    db: Db,
    access: AccessService,
    reflector: Reflector,
  ) {
    this.guard = new AuthGuard(reflector, db, access, config);
  }

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

  @Endpoint({ method: 'POST', path: 'oauth/revoke', operationId: 'mcpRevokeToken', summary: 'Token revocation (RFC 7009, form-encoded): a refresh token ends its whole grant, an access token itself', tag: 'MCP authorization', auth: 'public', sensitive: true, body: RevokeBody })
  async revoke(@Body() body: z.infer<typeof RevokeBody>, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    await this.mcp.revoke(body, { sourceIp: req.ip ?? null, requestId: req.id });
  }

  // The sign-in and consent page of the authorization step (server-rendered HTML forms).

  @Endpoint({ method: 'GET', path: 'oauth/consent', operationId: 'mcpConsentPage', summary: 'Sign-in and consent page (HTML) for an MCP client\'s authorization request', tag: 'MCP authorization', auth: 'public', query: ConsentPageQuery, errors: [404] })
  async consentPage(@Query() q: z.infer<typeof ConsentPageQuery>, @Req() req: Request, @Res() res: Response): Promise<void> {
    const r = await this.pending(q.request);
    if (!r) return this.expired(res);
    const p = await this.session(req);
    if (!p) {
      const binding = readCookie(req, BINDING_COOKIE)?.slice(0, 100) || randomBytes(24).toString('base64url');
      res.setHeader('Set-Cookie', this.bindingCookie(binding, 600));
      return signInPage(res, { ...r, requestId: r.id, csrf: this.mcp.csrfToken(`signin:${binding}`, r.id) });
    }
    const who = await this.mcp.who(p);
    consentPage(res, { ...r, ...who, requestId: r.id, csrf: this.mcp.csrfToken(`session:${p.credentialId}`, r.id) });
  }

  @Endpoint({ method: 'POST', path: 'oauth/consent/sign-in', operationId: 'mcpConsentSignIn', summary: 'The consent page\'s password sign-in form: sets the session cookie and returns to the page', tag: 'MCP authorization', auth: 'public', sensitive: true, body: ConsentSignInForm, errors: [401, 403, 404] })
  async consentSignIn(@Body() form: z.infer<typeof ConsentSignInForm>, @Req() req: Request, @Res() res: Response): Promise<void> {
    const view = await this.signInForm(req, res, form);
    if (!view) return;
    const parsed = LoginBody.safeParse({ email: form.email, password: form.password, ...(form.org ? { org: form.org } : {}), ...(form.totpCode ? { totpCode: form.totpCode } : {}) });
    if (!parsed.success) return signInPage(res, view, { status: 400, message: 'Enter a valid email and password (and the 6-digit code if you use an authenticator).' });
    try {
      const { token } = await this.auth.login(parsed.data, { sourceIp: req.ip ?? null, userAgent: req.header('user-agent') ?? null, requestId: req.id });
      res.setHeader('Set-Cookie', [sessionCookie(this.config, token, this.config.SESSION_TTL_HOURS * 3600), this.bindingCookie('', 0)]);
      res.redirect(303, `/oauth/consent?request=${encodeURIComponent(view.requestId)}`);
    } catch (err) {
      if (err instanceof AppError) return signInPage(res, view, { status: err.status, message: err.detail ?? err.title });
      throw err;
    }
  }

  @Endpoint({ method: 'POST', path: 'oauth/consent/sso', operationId: 'mcpConsentSso', summary: "The consent page's single sign-on form: on to the org's identity provider, back to the page once signed in", tag: 'MCP authorization', auth: 'public', sensitive: true, body: ConsentSsoForm, errors: [403, 404, 503] })
  async consentSso(@Body() form: z.infer<typeof ConsentSsoForm>, @Req() req: Request, @Res() res: Response): Promise<void> {
    const view = await this.signInForm(req, res, form);
    if (!view) return;
    const parsed = SsoStartBody.safeParse({ email: form.email });
    if (!parsed.success) return signInPage(res, view, { status: 400, message: 'Enter your work email address.' });
    try {
      const started = await this.sso.start(parsed.data, `/oauth/consent?request=${view.requestId}`);
      res.setHeader('Set-Cookie', ssoBindingCookie(this.config, started.binding));
      continuePage(res, started.authorizationUrl, 'Signing in');
    } catch (err) {
      if (err instanceof AppError) return signInPage(res, view, { status: err.status, message: err.status === 404 ? 'No single sign-on is set up for that email: sign in with your password.' : (err.detail ?? err.title) });
      throw err;
    }
  }

  @Endpoint({ method: 'POST', path: 'oauth/consent', operationId: 'mcpConsentDecision', summary: 'The consent page\'s Allow / Deny form: redirects the browser back to the MCP client (with a code, or access_denied)', tag: 'MCP authorization', auth: 'public', body: ConsentDecisionForm, errors: [401, 403, 404] })
  async consentDecision(@Body() form: z.infer<typeof ConsentDecisionForm>, @Req() req: Request, @Res() res: Response): Promise<void> {
    if (!this.sameOrigin(req)) return this.crossSite(res);
    const p = await this.session(req);
    if (!p) return messagePage(res, 401, 'Signed out', 'Your session ended: open the link from your MCP client again and sign in.');
    if (!this.mcp.checkCsrf(`session:${p.credentialId}`, form.request, form.csrf)) return this.crossSite(res);
    try {
      const { redirectTo } = await this.mcp.decide(p, form.request, form.decision === 'approve');
      res.redirect(303, redirectTo);
    } catch (err) {
      if (err instanceof AppError && err.status === 404) return this.expired(res);
      throw err;
    }
  }

  /**
   * The checks both sign-in forms (password, SSO) share: posted by this page (same origin), for a
   * pending request, with the CSRF token bound to this browser's binding cookie. Null when the
   * answer was already sent.
   */
  private async signInForm(req: Request, res: Response, form: { request: string; csrf: string }) {
    const r = this.sameOrigin(req) ? await this.pending(form.request) : undefined;
    if (r === null) {
      this.expired(res);
      return null;
    }
    const binding = readCookie(req, BINDING_COOKIE);
    if (!r || !binding || !this.mcp.checkCsrf(`signin:${binding}`, r.id, form.csrf)) {
      this.crossSite(res);
      return null;
    }
    return { ...r, requestId: r.id, csrf: form.csrf };
  }

  private async pending(id: string) {
    return this.mcp.request(id).catch((err: unknown) => {
      if (err instanceof AppError && err.status === 404) return null;
      throw err;
    });
  }

  /** A console session of the browser (never an API key: the page is for people). */
  private async session(req: Request): Promise<Principal | null> {
    if (req.header('authorization')) return null;
    try {
      const p = await this.guard.authenticate(req);
      return p.kind === 'session' ? p : null;
    } catch (err) {
      if (err instanceof AppError && (err.status === 401 || err.status === 403)) return null;
      throw err;
    }
  }

  /** Forms are posted by this page only: a browser names a cross-site origin in Origin or Sec-Fetch-Site. */
  private sameOrigin(req: Request): boolean {
    if (req.header('sec-fetch-site') === 'cross-site') return false;
    const origin = req.header('origin');
    return !origin || origin === new URL(this.mcp.issuer()).origin;
  }

  private bindingCookie(value: string, maxAgeSeconds: number): string {
    const secure = this.config.SESSION_COOKIE_SECURE ?? this.config.NODE_ENV === 'production';
    return `${BINDING_COOKIE}=${value}; Path=/oauth/consent; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
  }

  private expired(res: Response): void {
    messagePage(res, 404, 'Request expired', 'This authorization request is unknown, expired or already answered: start again from your MCP client.');
  }

  private crossSite(res: Response): void {
    messagePage(res, 403, 'Refused', 'This form did not come from this page (or it expired): open the link from your MCP client again.');
  }
}
