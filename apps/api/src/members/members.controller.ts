import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { page } from '../core/schemas';
import { AccountRecoveryService } from '../auth/account-recovery.service';
import { IssuedRecovery, IssueRecoveryBody, ListMembersQuery, MemberView, SetRolesBody, SuspendBody } from './members.schemas';
import { MembersService } from './members.service';

@Controller('v1/members')
export class MembersController {
  constructor(
    private readonly members: MembersService,
    private readonly recovery: AccountRecoveryService,
  ) {}

  @Endpoint({ method: 'GET', operationId: 'listMembers', summary: 'Members of the org with their roles', tag: 'Members', query: ListMembersQuery, response: page(MemberView) })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListMembersQuery>) {
    return this.members.list(p, q);
  }

  @Endpoint({ method: 'GET', path: ':userId', operationId: 'getMember', summary: 'One member', tag: 'Members', response: MemberView, errors: [404] })
  get(@Caller() p: Principal, @Param('userId') userId: string) {
    return this.members.get(p, userId);
  }

  @Endpoint({
    method: 'PUT',
    path: ':userId/roles',
    operationId: 'setMemberRoles',
    summary: "Replace a member's roles (only roles whose permissions you hold)",
    tag: 'Members',
    body: SetRolesBody,
    response: MemberView,
    errors: [404, 409],
  })
  setRoles(@Caller() p: Principal, @Param('userId') userId: string, @Body() body: z.infer<typeof SetRolesBody>) {
    return this.members.setRoles(p, userId, body.roles);
  }

  @Endpoint({
    method: 'POST',
    path: ':userId/suspend',
    operationId: 'suspendMember',
    summary: 'Suspend a member: their sessions end and nothing they hold works until reactivated',
    tag: 'Members',
    body: SuspendBody,
    response: MemberView,
    errors: [404, 409],
  })
  suspend(@Caller() p: Principal, @Param('userId') userId: string, @Body() body: z.infer<typeof SuspendBody>) {
    return this.members.suspend(p, userId, body.reason);
  }

  @Endpoint({ method: 'POST', path: ':userId/reactivate', operationId: 'reactivateMember', summary: 'Reactivate a suspended member', tag: 'Members', response: MemberView, errors: [404, 409] })
  reactivate(@Caller() p: Principal, @Param('userId') userId: string) {
    return this.members.reactivate(p, userId);
  }

  @Endpoint({
    method: 'POST',
    path: ':userId/recovery',
    operationId: 'issueMemberRecovery',
    summary: "Issue a one-time link with which a member who lost their password (or authenticator) sets a new one; shown once, valid 24 hours (a console session, the org's step-up; an account that belongs to this org alone)",
    tag: 'Members',
    sensitive: true,
    body: IssueRecoveryBody,
    response: IssuedRecovery,
    status: 201,
    errors: [404, 409],
  })
  issueRecovery(@Caller() p: Principal, @Param('userId') userId: string, @Body() body: z.infer<typeof IssueRecoveryBody>) {
    return this.recovery.issue(p, userId, body.secondFactor);
  }

  @Endpoint({ method: 'DELETE', path: ':userId/recovery', operationId: 'revokeMemberRecovery', summary: "Withdraw a member's pending recovery link", tag: 'Members', status: 204, errors: [404] })
  async revokeRecovery(@Caller() p: Principal, @Param('userId') userId: string): Promise<void> {
    await this.recovery.revoke(p, userId);
  }
}
