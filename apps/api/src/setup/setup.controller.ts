import { Body, Controller, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { z } from 'zod';
import { Endpoint } from '../core/endpoint';
import { SetupBody, SetupResult, SetupStatus } from './setup.schemas';
import { SetupService } from './setup.service';

@Controller('v1/setup')
export class SetupController {
  constructor(private readonly setup: SetupService) {}

  @Endpoint({ method: 'GET', operationId: 'getSetupStatus', summary: 'Whether first-run setup is done', tag: 'Setup', auth: 'public', response: SetupStatus })
  async status() {
    return { completed: await this.setup.completed() };
  }

  @Endpoint({
    method: 'POST',
    operationId: 'completeSetup',
    summary: 'First run: create the first org and its owner with the setup token printed at boot',
    tag: 'Setup',
    auth: 'public',
    sensitive: true,
    body: SetupBody,
    response: SetupResult,
    status: 201,
    errors: [403, 409],
  })
  complete(@Body() body: z.infer<typeof SetupBody>, @Req() req: Request) {
    return this.setup.complete(body, { sourceIp: req.ip ?? null, requestId: req.id });
  }
}
