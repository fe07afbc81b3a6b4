import { Body, Controller, Param, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CreateReportBody, DownloadQuery, ListReportsQuery, ReplayBody, ReplayView, ReportList, ReportScheduleView, ReportView, UpdateReportScheduleBody } from './reports.schemas';
import { ReportsService } from './reports.service';

@Controller('v1/reports')
export class ReportsController {
  constructor(private readonly reports: ReportsService) {}

  @Endpoint({ method: 'POST', operationId: 'createAnomalyReport', summary: 'Generate and store the anomaly report of a period (default: last month in the org’s zone)', tag: 'Oversight', body: CreateReportBody, response: ReportView, status: 201 })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateReportBody>) {
    return this.reports.create(p, body);
  }

  @Endpoint({ method: 'GET', operationId: 'listAnomalyReports', summary: 'Stored anomaly reports, newest first', tag: 'Oversight', query: ListReportsQuery, response: ReportList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListReportsQuery>) {
    return this.reports.list(p, q);
  }

  @Endpoint({ method: 'GET', path: 'schedule', operationId: 'getAnomalyReportSchedule', summary: 'The monthly report schedule (1st of the month, 01:00 in the org’s zone)', tag: 'Oversight', response: ReportScheduleView })
  schedule(@Caller() p: Principal) {
    return this.reports.schedule(p);
  }

  @Endpoint({ method: 'PUT', path: 'schedule', operationId: 'setAnomalyReportSchedule', summary: 'Set the org’s time zone for the monthly report, or turn it off', tag: 'Oversight', body: UpdateReportScheduleBody, response: ReportScheduleView })
  setSchedule(@Caller() p: Principal, @Body() body: z.infer<typeof UpdateReportScheduleBody>) {
    return this.reports.setSchedule(p, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getAnomalyReport', summary: 'One stored report with its findings', tag: 'Oversight', response: ReportView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.reports.get(p, id);
  }

  @Endpoint({ method: 'GET', path: ':id/download', operationId: 'downloadAnomalyReport', summary: 'Download a report as HTML (printable, inline SVG charts), CSV or JSON', tag: 'Oversight', query: DownloadQuery, errors: [404] })
  async download(@Caller() p: Principal, @Param('id') id: string, @Query() q: z.infer<typeof DownloadQuery>, @Res() res: Response): Promise<void> {
    await this.reports.download(p, id, q.format, res);
  }
}

@Controller('v1/policies')
export class PolicyReplayController {
  constructor(private readonly reports: ReportsService) {}

  @Endpoint({ method: 'POST', path: ':id/replay', operationId: 'replayPolicy', summary: 'Replay a policy version over the stored trail of the last N days: what would be decided differently', tag: 'Policy', body: ReplayBody, response: ReplayView, errors: [404] })
  replay(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof ReplayBody>) {
    return this.reports.replay(p, id, body);
  }
}
