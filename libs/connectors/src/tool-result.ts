import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { ConnectorError, networkCode } from './errors';

/** `_meta` key of the labels a connector attaches to what it read. */
export const LABELS_META_KEY = 'steward/labels';
/** `_meta` key of a typed error of a built-in connector. */
export const ERROR_META_KEY = 'steward/error';
/** Where a tools/call request carries Steward's action id for upstream idempotency. */
export const IDEMPOTENCY_META_KEY = 'steward/idempotency-key';

export interface ToolOutput {
  /** Structured result (also sent as JSON text for clients that only read text). */
  data: Record<string, unknown>;
  labels?: string[];
  /** Text for the model; default: the JSON of `data`. */
  text?: string;
}

export function toResult(out: ToolOutput): CallToolResult {
  const labels = [...new Set(out.labels ?? [])].sort();
  return {
    content: [{ type: 'text', text: out.text ?? JSON.stringify(out.data) }],
    structuredContent: out.data,
    ...(labels.length ? { _meta: { [LABELS_META_KEY]: labels } } : {}),
  };
}

export function errorResult(err: unknown, service: string): CallToolResult {
  const e =
    err instanceof ConnectorError
      ? err
      : networkCode(err)
        ? new ConnectorError('upstream_unreachable', `${service}: cannot reach the service (${networkCode(err)})`, { network: networkCode(err) })
        : (err as { code?: unknown })?.code === 'egress_refused'
          ? new ConnectorError('egress_refused', (err as Error).message)
          : new ConnectorError('upstream_error', `${service}: ${(err as Error)?.message ?? String(err)}`);
  return {
    isError: true,
    content: [{ type: 'text', text: e.message }],
    _meta: { [ERROR_META_KEY]: { code: e.code, message: e.message, details: { ...e.details } } },
  };
}

type Shape = Record<string, z.ZodType>;

/**
 * Registers a tool whose handler returns a ToolOutput and may throw: thrown errors become an
 * error result carrying the typed error in `_meta` (the hub turns it back into a ConnectorError).
 */
export function defineTool<S extends Shape>(
  server: McpServer,
  service: string,
  name: string,
  config: { title?: string; description: string; inputSchema: S; readOnly?: boolean; destructive?: boolean },
  handler: (args: z.infer<z.ZodObject<S>>) => Promise<ToolOutput>,
): void {
  server.registerTool(
    name,
    {
      title: config.title,
      description: config.description,
      inputSchema: config.inputSchema,
      annotations: { readOnlyHint: config.readOnly ?? false, destructiveHint: config.destructive ?? false },
    },
    (async (args: z.infer<z.ZodObject<S>>) => {
      try {
        return toResult(await handler(args));
      } catch (err) {
        return errorResult(err, service);
      }
    }) as never,
  );
}
