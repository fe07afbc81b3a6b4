import { Body, Controller, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Config } from '@steward/common';
import type { z } from 'zod';
import { Endpoint } from '../core/endpoint';
import { sessionCookie } from './session-cookie';
import { CONFIG } from '../core/tokens';
import {
  LoginBody,
  MyOrgsView,
  SwitchOrgBody,
  PasswordChangeBody,
  RecoverAccountBody,
  SessionView,
  EnrollTotpBody, StepUpBody,
  TotpConfirmBody,
  TotpDisableBody,
  TotpEnrollView,
} from './auth.schemas';
import { AccountRecoveryService } from './account-recovery.service';
import { AuthService } from './auth.service';
import { Caller } from './principal.decorator';
import type { Principal } from './principal';

@Controller('v1/auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly recovery: AccountRecoveryService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  private cookie(res: Response, token: string, maxAgeSeconds: number): void {
    res.setHeader('Set-Cookie', sessionCookie(this.config, token, maxAgeSeconds));
  }

  @Endpoint({
    method: 'POST',
    path: 'login',
    operationId: 'login',
    summary: 'Sign in with email and password (and a TOTP code when enrolled); sets the session cookie',
    tag: 'Auth',
    auth: 'public',
    sensitive: true,
    body: LoginBody,
    response: SessionView,
    errors: [401, 403],
  })
  async login(@Body() body: z.infer<typeof LoginBody>, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const { token, view } = await this.auth.login(body, {
      sourceIp: req.ip ?? null,
      userAgent: req.header('user-agent') ?? null,
      requestId: req.id,
    });
    this.cookie(res, token, this.config.SESSION_TTL_HOURS * 3600);
    return view;
  }

  @Endpoint({ method: 'POST', path: 'logout', operationId: 'logout', summary: 'End this session', tag: 'Auth', auth: 'session', status: 204 })
  async logout(@Caller() p: Principal, @Res({ passthrough: true }) res: Response): Promise<void> {
    await this.auth.logout(p);
    this.cookie(res, '', 0);
  }

  @Endpoint({ method: 'GET', path: 'orgs', operationId: 'listMyOrgs', summary: 'The orgs the signed-in person belongs to (the org switcher)', tag: 'Auth', auth: 'session', response: MyOrgsView })
  myOrgs(@Caller() p: Principal) {
    return this.auth.myOrgs(p);
  }

  @Endpoint({
    method: 'POST',
    path: 'switch-org',
    operationId: 'switchOrg',
    summary: "Move this console session to another of the person's orgs (a new session there, this one ends); sets the session cookie",
    tag: 'Auth',
    auth: 'session',
    body: SwitchOrgBody,
    response: SessionView,
    errors: [403, 404, 409],
  })
  async switchOrg(@Caller() p: Principal, @Body() body: z.infer<typeof SwitchOrgBody>, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const { token, view } = await this.auth.switchOrg(p, body.org, { sourceIp: req.ip ?? null, userAgent: req.header('user-agent') ?? null, requestId: req.id });
    this.cookie(res, token, this.config.SESSION_TTL_HOURS * 3600);
    return view;
  }

  @Endpoint({ method: 'GET', path: 'session', operationId: 'getSession', summary: 'Who is calling: user, org, roles, permissions', tag: 'Auth', response: SessionView })
  session(@Caller() p: Principal) {
    return this.auth.current(p);
  }

  @Endpoint({
    method: 'POST',
    path: 'step-up',
    operationId: 'stepUp',
    summary: 'Prove the second factor again before a sensitive operation',
    tag: 'Auth',
    auth: 'session',
    sensitive: true,
    body: StepUpBody,
    status: 204,
    errors: [409],
  })
  async stepUp(@Caller() p: Principal, @Body() body: z.infer<typeof StepUpBody>): Promise<void> {
    await this.auth.stepUp(p, body.totpCode);
  }

  @Endpoint({
    method: 'POST',
    path: 'totp/enroll',
    operationId: 'enrollTotp',
    summary: 'Start enrolling an authenticator app; returns its secret once',
    tag: 'Auth',
    auth: 'session',
    body: EnrollTotpBody,
    response: TotpEnrollView,
    errors: [409],
  })
  enroll(@Caller() p: Principal, @Body() body: z.infer<typeof EnrollTotpBody>) {
    return this.auth.enrollTotp(p, body.password);
  }

  @Endpoint({
    method: 'POST',
    path: 'totp/confirm',
    operationId: 'confirmTotp',
    summary: 'Finish enrolling with a code from the authenticator app',
    tag: 'Auth',
    auth: 'session',
    body: TotpConfirmBody,
    status: 204,
    errors: [409],
  })
  async confirm(@Caller() p: Principal, @Body() body: z.infer<typeof TotpConfirmBody>): Promise<void> {
    await this.auth.confirmTotp(p, body.totpCode);
  }

  @Endpoint({
    method: 'POST',
    path: 'totp/disable',
    operationId: 'disableTotp',
    summary: 'Remove the authenticator (needs the password and a current code)',
    tag: 'Auth',
    auth: 'session',
    sensitive: true,
    body: TotpDisableBody,
    status: 204,
    errors: [409],
  })
  async disable(@Caller() p: Principal, @Body() body: z.infer<typeof TotpDisableBody>): Promise<void> {
    await this.auth.disableTotp(p, body.password, body.totpCode);
  }

  @Endpoint({
    method: 'POST',
    path: 'password',
    operationId: 'changePassword',
    summary: 'Change the password; the person\'s other sessions end, in this org and in their other orgs',
    tag: 'Auth',
    auth: 'session',
    sensitive: true,
    body: PasswordChangeBody,
    status: 204,
  })
  async password(@Caller() p: Principal, @Body() body: z.infer<typeof PasswordChangeBody>): Promise<void> {
    await this.auth.changePassword(p, body.currentPassword, body.newPassword);
  }

  @Endpoint({
    method: 'POST',
    path: 'recover',
    operationId: 'recoverAccount',
    summary: "Set a new password with a recovery link an owner or admin issued; the account's sessions, API keys and MCP grants in the org end",
    tag: 'Auth',
    auth: 'public',
    sensitive: true,
    body: RecoverAccountBody,
    status: 204,
    errors: [403, 404, 409],
  })
  async recover(@Body() body: z.infer<typeof RecoverAccountBody>, @Req() req: Request): Promise<void> {
    await this.recovery.redeem(body.token, body.newPassword, { sourceIp: req.ip ?? null, requestId: req.id });
  }
}
