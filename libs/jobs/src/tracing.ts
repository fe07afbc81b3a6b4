import { diag, DiagLogLevel } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-node';
import { type Config, type Logger, tracesEndpoint } from '@steward/common';

export interface Tracing {
  /** True when spans are recorded and exported. */
  enabled: boolean;
  /** Sends the spans ended so far. */
  flush(): Promise<void>;
  /** Sends what is left and stops exporting. */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { enabled: false, flush: async () => undefined, shutdown: async () => undefined };

/**
 * OpenTelemetry traces of this process (the API or the worker), exported over OTLP/HTTP (JSON) to
 * the configured collector. Without an endpoint nothing is registered: the OpenTelemetry API stays
 * the no-op it is by default. Call once, before the first span.
 */
export function startTracing(config: Config, defaultServiceName: string, log?: Logger): Tracing {
  const url = tracesEndpoint(config);
  if (!url) return OFF;
  // The SDK's own complaints (an unreachable collector, a refused export), without their details.
  diag.setLogger(
    {
      error: (message) => log?.warn({ component: 'otel' }, `tracing: ${message}`),
      warn: (message) => log?.warn({ component: 'otel' }, `tracing: ${message}`),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    DiagLogLevel.WARN,
  );
  const exporter = new OTLPTraceExporter({ url, headers: config.OTEL_EXPORTER_OTLP_HEADERS, timeoutMillis: 10_000 });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.OTEL_SERVICE_NAME ?? defaultServiceName, 'service.namespace': 'steward' }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.OTEL_TRACES_SAMPLER_ARG) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 2000, maxQueueSize: 4096, maxExportBatchSize: 512 })],
  });
  // The global tracer provider, the AsyncLocalStorage context manager and W3C trace-context propagation.
  provider.register();
  // Where, not with which headers (they may carry a token).
  log?.info({ endpoint: url, sampleRatio: config.OTEL_TRACES_SAMPLER_ARG }, 'tracing: exporting spans over OTLP/HTTP');
  return {
    enabled: true,
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
