import { Body, Controller, Param } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CreateRoleBody, RoleList, RoleView, UpdateRoleBody } from './roles.schemas';
import { RolesService } from './roles.service';

@Controller('v1/roles')
export class RolesController {
  constructor(private readonly roles: RolesService) {}

  @Endpoint({ method: 'GET', operationId: 'listRoles', summary: 'Built-in and custom roles with their permissions', tag: 'Roles', response: RoleList })
  list(@Caller() p: Principal) {
    return this.roles.list(p);
  }

  @Endpoint({
    method: 'POST',
    operationId: 'createRole',
    summary: 'Define a custom role from permission rules you hold',
    tag: 'Roles',
    body: CreateRoleBody,
    response: RoleView,
    status: 201,
    errors: [409],
  })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateRoleBody>) {
    return this.roles.create(p, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getRole', summary: 'One custom role', tag: 'Roles', response: RoleView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.roles.get(p, id);
  }

  @Endpoint({ method: 'PATCH', path: ':id', operationId: 'updateRole', summary: 'Change a custom role', tag: 'Roles', body: UpdateRoleBody, response: RoleView, errors: [404] })
  update(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof UpdateRoleBody>) {
    return this.roles.update(p, id, body);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'deleteRole', summary: 'Delete a custom role nobody holds', tag: 'Roles', status: 204, errors: [404, 409] })
  async remove(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.roles.remove(p, id);
  }
}
