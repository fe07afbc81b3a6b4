import { Controller, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { page } from '../core/schemas';
import { AuditEventView, ListAuditEventsQuery } from './audit.schemas';
import { AuditEventsService } from './audit-events.service';

@Controller('v1/audit-events')
export class AuditController {
  constructor(private readonly events: AuditEventsService) {}

  @Endpoint({
    method: 'GET',
    operationId: 'listAuditEvents',
    summary: 'Search the audit trail, newest first (the search itself is audited)',
    tag: 'Audit',
    query: ListAuditEventsQuery,
    response: page(AuditEventView),
  })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListAuditEventsQuery>) {
    return this.events.list(p, q);
  }
}
