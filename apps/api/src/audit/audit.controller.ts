import { Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { AuditEventPage, ListAuditEventsQuery, SensitiveView } from './audit.schemas';
import { AuditEventsService } from './audit-events.service';

@Controller('v1/audit-events')
export class AuditController {
  constructor(private readonly events: AuditEventsService) {}

  @Endpoint({
    method: 'GET',
    operationId: 'listAuditEvents',
    summary: 'Search the audit trail, newest first, with cursor pagination (the search itself is audited)',
    tag: 'Audit',
    query: ListAuditEventsQuery,
    response: AuditEventPage,
  })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListAuditEventsQuery>) {
    return this.events.list(p, q);
  }

  @Endpoint({ method: 'GET', path: ':id/sensitive', operationId: 'getAuditEventSensitive', summary: "An event's sealed fields, decrypted (auditors; the view is audited)", tag: 'Audit', response: SensitiveView, errors: [404] })
  sensitive(@Caller() p: Principal, @Param('id') id: string) {
    return this.events.sensitive(p, id);
  }
}
