import { Body, Controller } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { OrgView, PauseAgentsBody, UpdateOrgBody } from './orgs.schemas';
import { OrgsService } from './orgs.service';

@Controller('v1/org')
export class OrgsController {
  constructor(private readonly orgs: OrgsService) {}

  @Endpoint({ method: 'GET', operationId: 'getOrg', summary: "The caller's org", tag: 'Org', response: OrgView })
  get(@Caller() p: Principal) {
    return this.orgs.get(p);
  }

  @Endpoint({ method: 'PATCH', operationId: 'updateOrg', summary: "Change the org's name, domains or step-up rule", tag: 'Org', body: UpdateOrgBody, response: OrgView })
  update(@Caller() p: Principal, @Body() body: z.infer<typeof UpdateOrgBody>) {
    return this.orgs.update(p, body);
  }

  @Endpoint({ method: 'POST', path: 'agents/pause', operationId: 'pauseAgents', summary: 'Kill switch: pause every agent of the org (nothing executes from the next action on; decrypts refused; approvals frozen)', tag: 'Org', body: PauseAgentsBody, response: OrgView })
  pause(@Caller() p: Principal, @Body() body: z.infer<typeof PauseAgentsBody>) {
    return this.orgs.setAgentsPaused(p, true, body);
  }

  @Endpoint({ method: 'POST', path: 'agents/resume', operationId: 'resumeAgents', summary: 'Lift the kill switch', tag: 'Org', body: PauseAgentsBody, response: OrgView })
  resume(@Caller() p: Principal, @Body() body: z.infer<typeof PauseAgentsBody>) {
    return this.orgs.setAgentsPaused(p, false, body);
  }
}
