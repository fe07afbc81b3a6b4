import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { BaselineBody, BaselineView, PilotMetricsQuery, PilotMetricsView, RateTaskBody, RatingView } from './pilot.schemas';
import { PilotService } from './pilot.service';

@Controller('v1/pilot')
export class PilotController {
  constructor(private readonly pilot: PilotService) {}

  @Endpoint({ method: 'GET', path: 'metrics', operationId: 'getPilotMetrics', summary: 'Per workflow: tasks run, completion, time saved, satisfaction and the pilot decision (default: the last 30 days)', tag: 'Pilot', query: PilotMetricsQuery, response: PilotMetricsView })
  metrics(@Caller() p: Principal, @Query() q: z.infer<typeof PilotMetricsQuery>) {
    return this.pilot.metrics(p, q);
  }
}

@Controller('v1/workflows')
export class PilotBaselineController {
  constructor(private readonly pilot: PilotService) {}

  @Endpoint({ method: 'PUT', path: ':id/baseline', operationId: 'setWorkflowBaseline', summary: "Set the workflow's manual baseline (minutes per task by hand) for time saved", tag: 'Pilot', body: BaselineBody, response: BaselineView, errors: [404] })
  set(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof BaselineBody>) {
    return this.pilot.setBaseline(p, id, body);
  }
}

@Controller('v1/tasks')
export class TaskRatingController {
  constructor(private readonly pilot: PilotService) {}

  @Endpoint({ method: 'PUT', path: ':id/rating', operationId: 'rateTask', summary: 'Rate a finished task 1–5 (the employee who ran it; a new rating replaces theirs)', tag: 'Pilot', body: RateTaskBody, response: RatingView, errors: [404, 409] })
  rate(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof RateTaskBody>) {
    return this.pilot.rate(p, id, body);
  }
}
