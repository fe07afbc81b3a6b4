import { Body, Controller, Headers, Param, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { CreateTaskBody, ListTasksQuery, TaskEventsQuery, TaskList, TaskView } from './tasks.schemas';
import { TasksService } from './tasks.service';

@Controller('v1/tasks')
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  @Endpoint({ method: 'POST', operationId: 'createTask', summary: 'Start an agent task (queued; a worker runs it, every action through the gate)', tag: 'Tasks', body: CreateTaskBody, response: TaskView, status: 201, errors: [409] })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateTaskBody>) {
    return this.tasks.create(p, body);
  }

  @Endpoint({ method: 'GET', operationId: 'listTasks', summary: "Agent tasks: the org's, or the caller's own (newest first, by cursor)", tag: 'Tasks', query: ListTasksQuery, response: TaskList })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListTasksQuery>) {
    return this.tasks.list(p, q);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getTask', summary: 'One agent task', tag: 'Tasks', response: TaskView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.tasks.get(p, id);
  }

  @Endpoint({ method: 'POST', path: ':id/cancel', operationId: 'cancelTask', summary: 'Cancel a task (a running one stops at its next step)', tag: 'Tasks', response: TaskView, errors: [404, 409] })
  cancel(@Caller() p: Principal, @Param('id') id: string) {
    return this.tasks.cancel(p, id);
  }

  @Endpoint({
    method: 'GET',
    path: ':id/events',
    operationId: 'streamTaskEvents',
    summary: 'Live events of a task as server-sent events (state, model turns, actions and their decisions, output)',
    description:
      'text/event-stream; each event has `id` (its sequence number, usable as Last-Event-ID), `event` (its kind) and JSON `data`. Read from the database, so it works whichever process runs the task. A followed stream ends within seconds once its key or session is revoked or expires, or the member is no longer active; at most 20 followed streams per member at once (429).',
    tag: 'Tasks',
    query: TaskEventsQuery,
    errors: [404, 429],
  })
  async events(@Caller() p: Principal, @Param('id') id: string, @Query() q: z.infer<typeof TaskEventsQuery>, @Headers('last-event-id') lastEventId: string | undefined, @Res() res: Response): Promise<void> {
    const after = q.after ?? (lastEventId && /^\d{1,9}$/.test(lastEventId) ? Number(lastEventId) : 0);
    await this.tasks.stream(p, id, after, q.follow === 'true', res);
  }
}
