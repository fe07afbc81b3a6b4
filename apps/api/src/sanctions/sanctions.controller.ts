import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { EvidenceView, LiftBody, ListSanctionsQuery, OutcomeBody, SanctionList, SanctionView, StrikesView } from './sanctions.schemas';
import { SanctionsService } from './sanctions.service';

@Controller('v1/sanctions')
export class SanctionsController {
  constructor(private readonly sanctions: SanctionsService) {}

  @Endpoint({ method: 'GET', operationId: 'listSanctions', summary: 'Sanctions confirmed violations led to (warning, suspension, disciplinary review)', tag: 'Sanctions', query: ListSanctionsQuery, response: SanctionList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListSanctionsQuery>) {
    return this.sanctions.list(p, q);
  }

  @Endpoint({ method: 'POST', path: ':id/lift', operationId: 'liftSanction', summary: 'Lift a suspension (agent access restored)', tag: 'Sanctions', body: LiftBody, response: SanctionView, errors: [404, 409] })
  lift(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof LiftBody>) {
    return this.sanctions.lift(p, id, body);
  }

  @Endpoint({ method: 'POST', path: ':id/outcome', operationId: 'recordSanctionOutcome', summary: 'Record the outcome of a disciplinary review (or of a warning: retraining)', tag: 'Sanctions', body: OutcomeBody, response: SanctionView, errors: [404, 409] })
  outcome(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof OutcomeBody>) {
    return this.sanctions.outcome(p, id, body);
  }
}

@Controller('v1/members')
export class MemberStrikesController {
  constructor(private readonly sanctions: SanctionsService) {}

  @Endpoint({ method: 'GET', path: ':userId/strikes', operationId: 'getStrikes', summary: "A member's strikes in the last year, where the ladder stands, their sanctions", tag: 'Sanctions', response: StrikesView, errors: [404] })
  strikes(@Caller() p: Principal, @Param('userId') userId: string) {
    return this.sanctions.strikes(p, userId);
  }
}

@Controller('v1/violations')
export class ViolationEvidenceController {
  constructor(private readonly sanctions: SanctionsService) {}

  @Endpoint({ method: 'GET', path: ':id/evidence', operationId: 'getViolationEvidence', summary: "Triage evidence: the attempt, the task's transcript, what it had read before, its taint, prior strikes (audited read)", tag: 'Violations', response: EvidenceView, errors: [404] })
  evidence(@Caller() p: Principal, @Param('id') id: string) {
    return this.sanctions.evidence(p, id);
  }
}
