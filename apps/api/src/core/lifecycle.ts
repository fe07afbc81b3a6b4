import { Injectable } from '@nestjs/common';

/**
 * The process's place in its life: `stopping` once a shutdown began (SIGTERM). Readiness then
 * answers 503, so that the load balancer sends nothing new here, and the MCP gateway takes no new
 * request while the calls under way finish (GatewayService.drain).
 */
@Injectable()
export class Lifecycle {
  stopping = false;
}
