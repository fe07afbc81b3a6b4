import { Body, Controller } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { OrgDomainsService } from './org-domains.service';
import { OrgDomainList, OrgView, PauseAgentsBody, UpdateOrgBody, VerifyDomainBody } from './orgs.schemas';
import { OrgsService } from './orgs.service';

@Controller('v1/org')
export class OrgsController {
  constructor(
    private readonly orgs: OrgsService,
    private readonly domains: OrgDomainsService,
  ) {}

  @Endpoint({ method: 'GET', operationId: 'getOrg', summary: "The caller's org", tag: 'Org', response: OrgView })
  get(@Caller() p: Principal) {
    return this.orgs.get(p);
  }

  @Endpoint({ method: 'PATCH', operationId: 'updateOrg', summary: "Change the org's name, domains or step-up rule", tag: 'Org', body: UpdateOrgBody, response: OrgView })
  update(@Caller() p: Principal, @Body() body: z.infer<typeof UpdateOrgBody>) {
    return this.orgs.update(p, body);
  }

  @Endpoint({ method: 'GET', path: 'domains', operationId: 'listOrgDomains', summary: "The org's mail domains, which are verified, and the DNS record that verifies each", tag: 'Org', response: OrgDomainList })
  listDomains(@Caller() p: Principal) {
    return this.domains.list(p);
  }

  @Endpoint({ method: 'POST', path: 'domains/verify', operationId: 'verifyOrgDomain', summary: "Check the domain's DNS TXT record now: found, the domain is the org's (409 domain_unverified while it is not published)", tag: 'Org', body: VerifyDomainBody, response: OrgDomainList })
  verifyDomain(@Caller() p: Principal, @Body() body: z.infer<typeof VerifyDomainBody>) {
    return this.domains.verify(p, body.domain);
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
