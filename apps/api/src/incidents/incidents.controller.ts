import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import {
  AcknowledgeBody,
  AssignBody,
  CloseBody,
  CommentBody,
  CommentView,
  CreateIncidentBody,
  IncidentDetail,
  IncidentList,
  IncidentSettingsView,
  ListIncidentsQuery,
  PutIncidentSettingsBody,
  ResolveBody,
} from './incidents.schemas';
import { IncidentsService } from './incidents.service';

@Controller('v1/incidents')
export class IncidentsController {
  constructor(private readonly incidents: IncidentsService) {}

  @Endpoint({ method: 'GET', operationId: 'listIncidents', summary: 'Incidents (newest first, by cursor)', tag: 'Incidents', query: ListIncidentsQuery, response: IncidentList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListIncidentsQuery>) {
    return this.incidents.list(p, q);
  }

  @Endpoint({ method: 'POST', operationId: 'createIncident', summary: 'Open an incident by hand (its owner is notified; unacknowledged it escalates)', tag: 'Incidents', body: CreateIncidentBody, response: IncidentDetail, status: 201 })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateIncidentBody>) {
    return this.incidents.create(p, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getIncident', summary: 'One incident, its comments and the escalation notices sent', tag: 'Incidents', response: IncidentDetail, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.incidents.get(p, id);
  }

  @Endpoint({ method: 'POST', path: ':id/acknowledge', operationId: 'acknowledgeIncident', summary: 'Acknowledge (stops the escalation)', tag: 'Incidents', body: AcknowledgeBody, response: IncidentDetail, errors: [404, 409] })
  acknowledge(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof AcknowledgeBody>) {
    return this.incidents.acknowledge(p, id, body);
  }

  @Endpoint({ method: 'POST', path: ':id/assign', operationId: 'assignIncident', summary: 'Give the incident another owner', tag: 'Incidents', body: AssignBody, response: IncidentDetail, errors: [404, 409] })
  assign(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof AssignBody>) {
    return this.incidents.assign(p, id, body);
  }

  @Endpoint({ method: 'POST', path: ':id/resolve', operationId: 'resolveIncident', summary: 'Resolve, with what was done', tag: 'Incidents', body: ResolveBody, response: IncidentDetail, errors: [404, 409] })
  resolve(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof ResolveBody>) {
    return this.incidents.resolve(p, id, body);
  }

  @Endpoint({ method: 'POST', path: ':id/close', operationId: 'closeIncident', summary: 'Close', tag: 'Incidents', body: CloseBody, response: IncidentDetail, errors: [404, 409] })
  close(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof CloseBody>) {
    return this.incidents.close(p, id, body);
  }

  @Endpoint({ method: 'POST', path: ':id/comments', operationId: 'commentIncident', summary: 'Add a comment', tag: 'Incidents', body: CommentBody, response: CommentView, status: 201, errors: [404, 409] })
  comment(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof CommentBody>) {
    return this.incidents.comment(p, id, body);
  }
}

@Controller('v1/incident-settings')
export class IncidentSettingsController {
  constructor(private readonly incidents: IncidentsService) {}

  @Endpoint({ method: 'GET', operationId: 'getIncidentSettings', summary: 'Escalation chain, executive, windows and channels (secrets: only whether set)', tag: 'Incidents', response: IncidentSettingsView })
  get(@Caller() p: Principal) {
    return this.incidents.getSettings(p);
  }

  @Endpoint({ method: 'PUT', operationId: 'putIncidentSettings', summary: 'Set the escalation chain, executive, windows and channels; secrets go to the vault', tag: 'Incidents', body: PutIncidentSettingsBody, response: IncidentSettingsView })
  put(@Caller() p: Principal, @Body() body: z.infer<typeof PutIncidentSettingsBody>) {
    return this.incidents.putSettings(p, body);
  }
}
