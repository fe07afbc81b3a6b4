import { Body, Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { page } from '../core/schemas';
import { ApiKeyView, CreateApiKeyBody, CreatedApiKey, ListApiKeysQuery } from './api-keys.schemas';
import { ApiKeysService } from './api-keys.service';

@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Endpoint({ method: 'GET', operationId: 'listApiKeys', summary: "API keys: the org's, or the caller's own", tag: 'API keys', query: ListApiKeysQuery, response: page(ApiKeyView) })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListApiKeysQuery>) {
    return this.keys.list(p, q);
  }

  @Endpoint({
    method: 'POST',
    operationId: 'createApiKey',
    summary: 'Create an API key for yourself (console session only); the secret is returned once',
    tag: 'API keys',
    auth: 'session',
    body: CreateApiKeyBody,
    response: CreatedApiKey,
    status: 201,
  })
  create(@Caller() p: Principal, @Body() body: z.infer<typeof CreateApiKeyBody>) {
    return this.keys.create(p, body);
  }

  @Endpoint({ method: 'GET', path: ':id', operationId: 'getApiKey', summary: 'One API key (never its secret)', tag: 'API keys', response: ApiKeyView, errors: [404] })
  get(@Caller() p: Principal, @Param('id') id: string) {
    return this.keys.get(p, id);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'revokeApiKey', summary: 'Revoke an API key: refused from the next request (an MCP gateway session already open with it, within a second)', tag: 'API keys', status: 204, errors: [404, 409] })
  async revoke(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.keys.revoke(p, id);
  }
}
