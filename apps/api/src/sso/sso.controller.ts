import { Body, Controller, Inject, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Config } from '@steward/common';
import type { z } from 'zod';
import { readCookie, SESSION_COOKIE } from '../auth/auth.guard';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CONFIG } from '../core/tokens';
import { continuePage } from '../mcp-auth/consent-page';
import { PutSsoConfigBody, SsoCallbackQuery, SsoConfigView, SsoStartBody, SsoStartView } from './sso.schemas';
import { SSO_BINDING_COOKIE, SsoService } from './sso.service';

@Controller()
export class SsoController {
  constructor(
    private readonly sso: SsoService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  private secure(): string {
    return ssoCookieSecure(this.config);
  }

  @Endpoint({ method: 'GET', path: 'v1/org/sso', operationId: 'getSsoConfig', summary: "The org's OpenID Connect sign-in (never its client secret)", tag: 'Org', response: SsoConfigView, errors: [404] })
  get(@Caller() p: Principal) {
    return this.sso.get(p);
  }

  @Endpoint({
    method: 'PUT',
    path: 'v1/org/sso',
    operationId: 'putSsoConfig',
    summary: "Set the org's OpenID Connect provider (issuer, client, group mapping, role for new people)",
    tag: 'Org',
    body: PutSsoConfigBody,
    response: SsoConfigView,
    errors: [409],
  })
  put(@Caller() p: Principal, @Body() body: z.infer<typeof PutSsoConfigBody>) {
    return this.sso.put(p, body);
  }

  @Endpoint({ method: 'DELETE', path: 'v1/org/sso', operationId: 'deleteSsoConfig', summary: "Remove the org's SSO (password sign-in must be on)", tag: 'Org', status: 204, errors: [404, 409] })
  async remove(@Caller() p: Principal): Promise<void> {
    await this.sso.remove(p);
  }

  @Endpoint({
    method: 'POST',
    path: 'v1/auth/sso/start',
    operationId: 'startSso',
    summary: "Start single sign-on for an email's domain or an org slug: returns the identity provider's authorization URL",
    tag: 'Auth',
    auth: 'public',
    sensitive: true,
    body: SsoStartBody,
    response: SsoStartView,
    errors: [404, 503],
  })
  async start(@Body() body: z.infer<typeof SsoStartBody>, @Res({ passthrough: true }) res: Response) {
    const { authorizationUrl, org, binding } = await this.sso.start(body);
    res.setHeader('Set-Cookie', ssoBindingCookie(this.config, binding));
    return { authorizationUrl, org };
  }

  @Endpoint({
    method: 'GET',
    path: 'v1/auth/sso/callback',
    operationId: 'ssoCallback',
    summary: "The identity provider's redirect back: verifies the response, creates or updates the member, sets the session cookie and redirects to the console",
    tag: 'Auth',
    auth: 'public',
    sensitive: true,
    query: SsoCallbackQuery,
    status: 200,
    errors: [401, 403, 503],
  })
  async callback(@Query() query: z.infer<typeof SsoCallbackQuery>, @Req() req: Request, @Res() res: Response): Promise<void> {
    const rawQuery = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
    const { token, returnTo } = await this.sso.callback(query, rawQuery, readCookie(req, SSO_BINDING_COOKIE), {
      sourceIp: req.ip ?? null,
      userAgent: req.header('user-agent') ?? null,
      requestId: req.id,
    });
    res.setHeader('Set-Cookie', [
      // Strict like password sign-in: the console's own requests carry it from its first page on.
      `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${this.config.SESSION_TTL_HOURS * 3600}${this.secure()}`,
      `${SSO_BINDING_COOKIE}=; Path=/v1/auth/sso; HttpOnly; SameSite=Lax; Max-Age=0${this.secure()}`,
    ]);
    // Back to the MCP consent page: through a same-origin page, not a redirect, because the browser
    // withholds the SameSite=Strict session cookie on a redirect chain the provider started.
    if (returnTo) return continuePage(res, returnTo);
    res.redirect(303, this.config.STEWARD_CONSOLE_URL ?? '/');
  }
}

function ssoCookieSecure(config: Pick<Config, 'SESSION_COOKIE_SECURE' | 'NODE_ENV'>): string {
  return (config.SESSION_COOKIE_SECURE ?? config.NODE_ENV === 'production') ? '; Secure' : '';
}

/** Binds a started sign-in to this browser. Lax: the provider's redirect back is a top-level cross-site navigation that must carry it. */
export function ssoBindingCookie(config: Pick<Config, 'SESSION_COOKIE_SECURE' | 'NODE_ENV'>, binding: string): string {
  return `${SSO_BINDING_COOKIE}=${binding}; Path=/v1/auth/sso; HttpOnly; SameSite=Lax; Max-Age=600${ssoCookieSecure(config)}`;
}
