import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { page, type PageQuery } from '../core/schemas';
import { CreateGroupBody, GroupMembers, GroupView, ListGroupsQuery, UpdateGroupBody } from './groups.schemas';
import { GroupsService } from './groups.service';

@Controller('v1/groups')
export class GroupsController {
  constructor(private readonly groups: GroupsService) {}

  @Endpoint({ method: 'GET', operationId: 'listGroups', summary: 'Groups of the org', tag: 'Groups', query: ListGroupsQuery, response: page(GroupView) })
  list(@Caller() p: Principal, @Query() q: PageQuery) {
    return this.groups.list(p, q);
  }

  @Endpoint({ method: 'POST', operationId: 'createGroup', summary: 'Create a group', tag: 'Groups', body: CreateGroupBody, response: GroupView, status: 201, errors: [409] })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateGroupBody>) {
    return this.groups.create(p, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getGroup', summary: 'One group', tag: 'Groups', response: GroupView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.groups.get(p, id);
  }

  @Endpoint({ method: 'PATCH', path: ':id', operationId: 'updateGroup', summary: 'Rename or describe a group', tag: 'Groups', body: UpdateGroupBody, response: GroupView, errors: [404, 409] })
  update(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof UpdateGroupBody>) {
    return this.groups.update(p, id, body);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'deleteGroup', summary: 'Delete a group', tag: 'Groups', status: 204, errors: [404] })
  async remove(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.groups.remove(p, id);
  }

  @Endpoint({ method: 'GET', path: ':id/members', operationId: 'listGroupMembers', summary: 'Members of a group', tag: 'Groups', response: GroupMembers, errors: [404] })
  members(@Caller() p: Principal, @Param('id') id: string) {
    return this.groups.members(p, id);
  }

  @Endpoint({ method: 'PUT', path: ':id/members/:userId', operationId: 'addGroupMember', summary: 'Add a member to a group', tag: 'Groups', status: 204, errors: [404] })
  async add(@Caller() p: Principal, @Param('id') id: string, @Param('userId') userId: string): Promise<void> {
    await this.groups.addMember(p, id, userId);
  }

  @Endpoint({ method: 'DELETE', path: ':id/members/:userId', operationId: 'removeGroupMember', summary: 'Take a member out of a group', tag: 'Groups', status: 204, errors: [404] })
  async removeMember(@Caller() p: Principal, @Param('id') id: string, @Param('userId') userId: string): Promise<void> {
    await this.groups.removeMember(p, id, userId);
  }
}
