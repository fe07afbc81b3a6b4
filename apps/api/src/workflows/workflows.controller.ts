import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { page, type PageQuery } from '../core/schemas';
import { ClassificationView, CreateWorkflowBody, ListWorkflowsQuery, UpdateWorkflowBody, WorkflowView } from './workflows.schemas';
import { WorkflowsService } from './workflows.service';

@Controller('v1/workflows')
export class WorkflowsController {
  constructor(private readonly workflows: WorkflowsService) {}

  @Endpoint({ method: 'GET', operationId: 'listWorkflows', summary: 'Named workflows of the org', tag: 'Workflows', query: ListWorkflowsQuery, response: page(WorkflowView) })
  list(@Caller() p: Principal, @Query() q: PageQuery) {
    return this.workflows.list(p, q);
  }

  @Endpoint({ method: 'POST', operationId: 'createWorkflow', summary: 'Define a workflow and the action types it uses', tag: 'Workflows', body: CreateWorkflowBody, response: WorkflowView, status: 201, errors: [409] })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateWorkflowBody>) {
    return this.workflows.create(p, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getWorkflow', summary: 'One workflow', tag: 'Workflows', response: WorkflowView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.workflows.get(p, id);
  }

  @Endpoint({ method: 'PATCH', path: ':id', operationId: 'updateWorkflow', summary: 'Change a workflow', tag: 'Workflows', body: UpdateWorkflowBody, response: WorkflowView, errors: [404] })
  update(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof UpdateWorkflowBody>) {
    return this.workflows.update(p, id, body);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'deleteWorkflow', summary: 'Delete a workflow no active or draft policy refers to', tag: 'Workflows', status: 204, errors: [404, 409] })
  async remove(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.workflows.remove(p, id);
  }

  @Endpoint({ method: 'GET', path: ':id/classification', operationId: 'getWorkflowClassification', summary: 'The documented classification: effective level of each action type it uses, with the reason', tag: 'Workflows', response: ClassificationView, errors: [404, 409] })
  classification(@Caller() p: Principal, @Param('id') id: string) {
    return this.workflows.classification(p, id);
  }
}
