import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { page } from '../core/schemas';
import {
  ActivatePolicyBody,
  CatalogView,
  CreatePolicyBody,
  DiffQuery,
  ExplainBody,
  ExplanationView,
  ListPoliciesQuery,
  PolicyDiff,
  PolicySummary,
  PolicyView,
  SimulateBody,
  SimulationView,
  UpdatePolicyBody,
} from './policies.schemas';
import { PoliciesService } from './policies.service';

@Controller('v1/policies')
export class PoliciesController {
  constructor(private readonly policies: PoliciesService) {}

  @Endpoint({ method: 'GET', operationId: 'listPolicyVersions', summary: 'Revision history: every version with status, author, note and times', tag: 'Policy', query: ListPoliciesQuery, response: page(PolicySummary) })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListPoliciesQuery>) {
    return this.policies.list(p, q);
  }

  @Endpoint({ method: 'GET', path: 'active', operationId: 'getActivePolicy', summary: 'The active version with its document', tag: 'Policy', response: PolicyView, errors: [409] })
  active(@Caller() p: Principal) {
    return this.policies.getActive(p);
  }

  @Endpoint({ method: 'POST', path: 'explain', operationId: 'explainDecision', summary: 'Why an action gets its level: the whole resolution chain', tag: 'Policy', body: ExplainBody, response: ExplanationView, errors: [404, 409] })
  explain(@Caller() p: Principal, @Body() body: z.infer<typeof ExplainBody>) {
    return this.policies.explain(p, body);
  }

  @Endpoint({ method: 'POST', operationId: 'createPolicyDraft', summary: 'A new draft, from the active version or a given one; every problem of the document listed', tag: 'Policy', body: CreatePolicyBody, response: PolicyView, status: 201, errors: [404, 409] })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreatePolicyBody>) {
    return this.policies.create(p, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getPolicyVersion', summary: 'One version with its document', tag: 'Policy', response: PolicyView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.policies.get(p, id);
  }

  @Endpoint({ method: 'PATCH', path: ':id', operationId: 'updatePolicyDraft', summary: 'Change a draft (its document or note)', tag: 'Policy', body: UpdatePolicyBody, response: PolicyView, errors: [404, 409] })
  update(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof UpdatePolicyBody>) {
    return this.policies.update(p, id, body);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'deletePolicyDraft', summary: 'Delete a draft', tag: 'Policy', status: 204, errors: [404, 409] })
  async remove(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.policies.remove(p, id);
  }

  @Endpoint({
    method: 'POST',
    path: ':id/activate',
    operationId: 'activatePolicy',
    summary: 'Activate a draft (owner, step-up where required); the previous version is archived and a review is due in six months',
    tag: 'Policy',
    body: ActivatePolicyBody,
    response: PolicyView,
    errors: [404, 409],
  })
  activate(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof ActivatePolicyBody>) {
    return this.policies.activate(p, id, body);
  }

  @Endpoint({ method: 'GET', path: ':id/diff', operationId: 'diffPolicyVersions', summary: 'Structural diff from another version (default: the active one) to this one', tag: 'Policy', query: DiffQuery, response: PolicyDiff, errors: [404, 409] })
  diff(@Caller() p: Principal, @Param('id') id: string, @Query() q: z.infer<typeof DiffQuery>) {
    return this.policies.diff(p, id, q.against);
  }

  @Endpoint({ method: 'POST', path: ':id/simulate', operationId: 'simulatePolicy', summary: 'Decide actions under this version and the active one, and show what changes', tag: 'Policy', body: SimulateBody, response: SimulationView, errors: [404, 409] })
  simulate(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof SimulateBody>) {
    return this.policies.simulate(p, id, body);
  }
}

@Controller('v1/catalog')
export class CatalogController {
  constructor(private readonly policies: PoliciesService) {}

  @Endpoint({ method: 'GET', path: 'actions', operationId: 'getActionCatalog', summary: 'Trust levels and the action catalog: defaults, floors, facts', tag: 'Policy', response: CatalogView })
  actions() {
    return this.policies.catalog();
  }
}
