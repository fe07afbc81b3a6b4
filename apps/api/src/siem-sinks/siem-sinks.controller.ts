import { Body, Controller, Param } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CreateSiemSinkBody, SiemSinkList, SiemSinkView, UpdateSiemSinkBody } from './siem-sinks.schemas';
import { SiemSinksService } from './siem-sinks.service';

@Controller('v1/siem-sinks')
export class SiemSinksController {
  constructor(private readonly sinks: SiemSinksService) {}

  @Endpoint({ method: 'GET', operationId: 'listSiemSinks', summary: 'SIEM push sinks of the org (tokens are never returned)', tag: 'Audit', response: SiemSinkList })
  list(@Caller() p: Principal) {
    return this.sinks.list(p);
  }

  @Endpoint({ method: 'POST', operationId: 'createSiemSink', summary: 'Push the sealed audit trail to a SIEM (Splunk HEC)', tag: 'Audit', body: CreateSiemSinkBody, response: SiemSinkView, status: 201, errors: [409] })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateSiemSinkBody>) {
    return this.sinks.create(p, body);
  }

  @Endpoint({ method: 'PATCH', path: ':id', operationId: 'updateSiemSink', summary: 'Change a SIEM sink (URL, token, batch size, enabled)', tag: 'Audit', body: UpdateSiemSinkBody, response: SiemSinkView, errors: [404] })
  update(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof UpdateSiemSinkBody>) {
    return this.sinks.update(p, id, body);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'deleteSiemSink', summary: 'Delete a SIEM sink and its dead letters', tag: 'Audit', status: 204, errors: [404] })
  async remove(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.sinks.remove(p, id);
  }
}
