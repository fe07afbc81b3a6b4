import { Controller, Param, Query } from '@nestjs/common';
import type { z } from 'zod';
import { Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/principal';
import { Endpoint } from '../core/endpoint';
import { page } from '../core/schemas';
import { ListMcpGrantsQuery, McpGrantView } from './mcp-grants.schemas';
import { McpGrantsService } from './mcp-grants.service';

const TAG = 'MCP authorization';

@Controller('v1/mcp-grants')
export class McpGrantsController {
  constructor(private readonly grants: McpGrantsService) {}

  @Endpoint({ method: 'GET', operationId: 'listMcpGrants', summary: "MCP clients members allowed to act for them (the org's, or the caller's own), with when each was allowed, last refreshed and ends", tag: TAG, query: ListMcpGrantsQuery, response: page(McpGrantView) })
  list(@Caller() p: Principal, @Query() q: z.infer<typeof ListMcpGrantsQuery>) {
    return this.grants.list(p, q);
  }

  @Endpoint({ method: 'DELETE', path: ':id', operationId: 'revokeMcpGrant', summary: "Revoke an MCP client's grant: every token issued under it ends (an open gateway session is refused within a second)", tag: TAG, status: 204, errors: [404, 409] })
  async revoke(@Caller() p: Principal, @Param('id') id: string): Promise<void> {
    await this.grants.revoke(p, id);
  }
}
