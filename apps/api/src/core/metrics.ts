import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { StewardMetrics } from '@steward/jobs';

/** Prometheus metrics of one API process: HTTP, and the control plane's own (decisions, approvals, queues, audit). */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'steward_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'steward_http_request_duration_seconds',
    help: 'HTTP request duration by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly steward = new StewardMetrics(this.registry);

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'steward_' });
  }
}
