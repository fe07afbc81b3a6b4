import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CreateScheduleBody, ListSchedulesQuery, ScheduleList, ScheduleView, UpdateScheduleBody, UsageView } from './schedules.schemas';
import { SchedulesService } from './schedules.service';

@Controller('v1/task-schedules')
export class SchedulesController {
  constructor(private readonly schedules: SchedulesService) {}

  @Endpoint({ method: 'POST', operationId: 'createTaskSchedule', summary: 'Schedule an agent task with a cron expression and a time zone ("0 17 * * 5" in Asia/Tokyo: Fridays 17:00)', tag: 'Tasks', body: CreateScheduleBody, response: ScheduleView, status: 201, errors: [409] })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateScheduleBody>) {
    return this.schedules.create(p, body);
  }

  @Endpoint({ method: 'GET', operationId: 'listTaskSchedules', summary: "Task schedules: the org's, or the caller's own", tag: 'Tasks', query: ListSchedulesQuery, response: ScheduleList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListSchedulesQuery>) {
    return this.schedules.list(p, q);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getTaskSchedule', summary: 'One task schedule', tag: 'Tasks', response: ScheduleView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.schedules.get(p, id);
  }

  @Endpoint({ method: 'PATCH', path: ':id', operationId: 'updateTaskSchedule', summary: "Change a schedule's name, time, prompt or limits (its owner)", tag: 'Tasks', body: UpdateScheduleBody, response: ScheduleView, errors: [404] })
  update(@Caller() p: Principal, @Param('id') id: string, @Body() body: z.infer<typeof UpdateScheduleBody>) {
    return this.schedules.update(p, id, body);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'deleteTaskSchedule', summary: 'Delete a schedule (tasks it created stay)', tag: 'Tasks', status: 204, errors: [404] })
  async remove(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.schedules.remove(p, id);
  }

  @Endpoint({ method: 'POST', path: ':id/pause', operationId: 'pauseTaskSchedule', summary: 'Pause a schedule (no runs until resumed)', tag: 'Tasks', response: ScheduleView, errors: [404] })
  pause(@Caller() p: Principal, @Param('id') id: string) {
    return this.schedules.setPaused(p, id, true);
  }

  @Endpoint({ method: 'POST', path: ':id/resume', operationId: 'resumeTaskSchedule', summary: 'Resume a paused schedule from its next time (missed runs are not caught up)', tag: 'Tasks', response: ScheduleView, errors: [404] })
  resume(@Caller() p: Principal, @Param('id') id: string) {
    return this.schedules.setPaused(p, id, false);
  }
}

@Controller('v1/usage')
export class UsageController {
  constructor(private readonly schedules: SchedulesService) {}

  @Endpoint({ method: 'GET', operationId: 'getUsage', summary: "This month's agent spend and budgets: the org's and each user's (or only the caller's own)", tag: 'Tasks', response: UsageView })
  usage(@Caller() p: Principal) {
    return this.schedules.usage(p);
  }
}
