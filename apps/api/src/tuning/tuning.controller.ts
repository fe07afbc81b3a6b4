import { Body, Controller, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { PolicyView } from '../policies/policies.schemas';
import { DraftFromRecommendationsBody, RecommendationList, RecommendationsQuery } from './tuning.schemas';
import { TuningService } from './tuning.service';

@Controller('v1/trust-recommendations')
export class TuningController {
  constructor(private readonly tuning: TuningService) {}

  @Endpoint({ method: 'GET', operationId: 'listTrustRecommendations', summary: 'Per action type and scope: lower or raise the trust level, with the approval, review and incident numbers behind it', tag: 'Policies', query: RecommendationsQuery, response: RecommendationList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof RecommendationsQuery>) {
    return this.tuning.list(p, q.days);
  }

  @Endpoint({ method: 'POST', path: 'draft', operationId: 'draftFromTrustRecommendations', summary: 'Turn chosen recommendations into a policy draft (floors hold; activate it like any draft)', tag: 'Policies', body: DraftFromRecommendationsBody, response: PolicyView, status: 201, errors: [409] })
  draft(@Caller() p: Principal, @Body() body: z.infer<typeof DraftFromRecommendationsBody>) {
    return this.tuning.draft(p, body);
  }
}
