import { AppError, type EgressOptions, ErrorCode } from '@steward/common';
import { ConnectorClient, ConnectorError, type ToolDefinition } from '@steward/connectors';
import { OAuthError } from '@steward/vault';

export interface UpstreamLimits {
  timeoutMs: number;
  maxResultBytes: number;
}

export const UPSTREAM_LIMITS: UpstreamLimits = { timeoutMs: 15_000, maxResultBytes: 1024 * 1024 };

/** Lists a remote MCP server's tools through the egress guard (one short-lived client). */
export async function listRemoteTools(connectorId: string, url: string, headers: Record<string, string>, egress: EgressOptions, limits: UpstreamLimits = UPSTREAM_LIMITS): Promise<ToolDefinition[]> {
  const client = await ConnectorClient.remote(connectorId, { url, headers, egress, timeoutMs: limits.timeoutMs, maxResultBytes: limits.maxResultBytes });
  try {
    return await client.listTools();
  } finally {
    await client.close().catch(() => undefined);
  }
}

const clip = (s: string, n = 500) => (s.length > n ? `${s.slice(0, n)}…` : s);

/** A connector or OAuth failure as the API's problem: clear, typed, never a crash or a leaked stack. */
export function upstreamProblem(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ConnectorError) {
    const m = clip(err.message);
    switch (err.code) {
      case 'egress_refused':
        return new AppError(400, ErrorCode.EgressRefused, 'Upstream address refused', m);
      case 'upstream_unreachable':
        return new AppError(502, ErrorCode.UpstreamUnreachable, 'Upstream unreachable', m);
      case 'timeout':
        return new AppError(504, ErrorCode.UpstreamTimeout, 'Upstream timeout', m);
      case 'result_too_large':
        return new AppError(502, ErrorCode.ResultTooLarge, 'Upstream result too large', m);
      case 'auth_required':
        return new AppError(409, ErrorCode.ReauthorizationRequired, 'Re-authorisation required', m);
      case 'tool_held':
        return new AppError(409, ErrorCode.ToolHeld, 'Tool held', m);
      case 'bad_arguments':
        return AppError.validation([], m);
      case 'unknown_tool':
      case 'not_found':
        return AppError.notFound('tool');
      default:
        return new AppError(502, ErrorCode.UpstreamError, 'Upstream error', m);
    }
  }
  if (err instanceof OAuthError) {
    const m = clip(err.message);
    if (err.kind === 'invalid_grant' || err.kind === 'refused') return new AppError(409, ErrorCode.ReauthorizationRequired, 'Re-authorisation required', m);
    if (err.kind === 'bad_callback') return AppError.validation([], m);
    if (err.kind === 'bad_response') return new AppError(502, ErrorCode.UpstreamError, 'Upstream error', m);
    return new AppError(502, ErrorCode.UpstreamUnreachable, 'Upstream unreachable', m);
  }
  if ((err as { code?: unknown })?.code === 'egress_refused') return new AppError(400, ErrorCode.EgressRefused, 'Upstream address refused', clip((err as Error).message));
  throw err;
}
