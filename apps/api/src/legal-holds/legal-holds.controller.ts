import { Body, Controller, Param } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CreateLegalHoldBody, LegalHoldList, LegalHoldView } from './legal-holds.schemas';
import { LegalHoldsService } from './legal-holds.service';

@Controller('v1/legal-holds')
export class LegalHoldsController {
  constructor(private readonly holds: LegalHoldsService) {}

  @Endpoint({ method: 'GET', operationId: 'listLegalHolds', summary: 'Legal holds of the org', tag: 'Audit', response: LegalHoldList })
  list(@Caller() p: Principal) {
    return this.holds.list(p);
  }

  @Endpoint({ method: 'POST', operationId: 'createLegalHold', summary: 'Hold audit content (the org, or one member) over a time range past retention', tag: 'Audit', body: CreateLegalHoldBody, response: LegalHoldView, status: 201, errors: [404] })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateLegalHoldBody>) {
    return this.holds.create(p, body);
  }

  @Endpoint({ method: 'POST', path: ':id/release', operationId: 'releaseLegalHold', summary: 'Release a legal hold (retention applies again at the next purge)', tag: 'Audit', response: LegalHoldView, errors: [404, 409] })
  release(@Caller() p: Principal, @Param('id') id: string) {
    return this.holds.release(p, id);
  }
}
