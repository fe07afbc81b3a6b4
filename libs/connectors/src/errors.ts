/**
 * Typed connector errors. Every failure of a connector call surfaces as one of these (never as a
 * raw transport or SDK error, never as a crash); callers match on `code`.
 */
export const ConnectorErrorCode = {
  /** The manifest failed validation; `problems` lists every issue. */
  BadManifest: 'bad_manifest',
  /** The upstream could not be reached (connection refused, DNS, TLS, closed transport). */
  Unreachable: 'upstream_unreachable',
  /** The egress guard refused the upstream URL (private address, bad scheme, ...). */
  EgressRefused: 'egress_refused',
  /** The credential is missing, expired or revoked: the user or admin must authorise again. */
  AuthRequired: 'auth_required',
  /** The arguments were refused (schema validation, a path leaving its folder, ...). */
  BadArguments: 'bad_arguments',
  /** The upstream answered with an error. */
  Upstream: 'upstream_error',
  /** No answer within the time limit. */
  Timeout: 'timeout',
  /** The result is larger than the limit. */
  ResultTooLarge: 'result_too_large',
  /** No such tool on this connector. */
  UnknownTool: 'unknown_tool',
  /** The tool's definition changed since an admin approved it: held until re-approved. */
  ToolHeld: 'tool_held',
  /** No such connector registered on the hub. */
  UnknownConnector: 'unknown_connector',
  /** The target does not exist upstream (file, message, record). */
  NotFound: 'not_found',
  /** The target already exists (write-new on an existing path). */
  Conflict: 'conflict',
} as const;
export type ConnectorErrorCode = (typeof ConnectorErrorCode)[keyof typeof ConnectorErrorCode];

export class ConnectorError extends Error {
  constructor(
    readonly code: ConnectorErrorCode,
    message: string,
    readonly details: { connector?: string; tool?: string; status?: number; [key: string]: unknown } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ConnectorError';
  }

  /**
   * Whether the upstream may have acted although the call failed: no answer in time, the
   * connection lost while the call was under way, a server error (HTTP 5xx) in answer to it, or an
   * answer larger than the limit (it acted, and what it said is not kept).
   * Not when the call surely never reached it (connection refused, no such host, no MCP endpoint,
   * the egress guard) nor when the upstream answered that it failed (a tool error, a JSON-RPC error).
   * For a write that cannot be made twice safely, the gate then records the outcome as unknown.
   */
  get mayHaveActed(): boolean {
    // The upstream answered, with more than the limit: the call was carried out.
    if (this.code === 'timeout' || this.code === 'result_too_large') return true;
    if (this.code === 'upstream_error') return (this.details.status ?? 0) >= 500;
    if (this.code !== 'upstream_unreachable') return false;
    if (this.details.midCall === true) return true;
    const network = typeof this.details.network === 'string' ? this.details.network : null;
    return network !== null && !NEVER_SENT.has(network);
  }

  /** Whether retrying the same call later could succeed. */
  get retryable(): boolean {
    return this.code === 'upstream_unreachable' || this.code === 'timeout' || (this.code === 'upstream_error' && (this.details.status ?? 0) >= 500);
  }

  toJSON(): { code: ConnectorErrorCode; message: string; details: ConnectorError['details'] } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Network errors that mean the request never reached the upstream. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID']);

export class ManifestError extends ConnectorError {
  constructor(readonly problems: string[]) {
    super('bad_manifest', `connector manifest refused: ${problems.length} problem(s):\n- ${problems.join('\n- ')}`, { problems });
    this.name = 'ManifestError';
  }
}

export const isConnectorError = (e: unknown): e is ConnectorError => e instanceof ConnectorError;

export function badArguments(message: string, details: ConnectorError['details'] = {}): ConnectorError {
  return new ConnectorError('bad_arguments', message, details);
}

export function authRequired(message: string, details: ConnectorError['details'] = {}): ConnectorError {
  return new ConnectorError('auth_required', message, details);
}

/** Maps an HTTP status of an upstream REST API to a connector error. */
export function fromHttpStatus(service: string, status: number, detail: string, details: ConnectorError['details'] = {}): ConnectorError {
  const text = detail ? `: ${detail.slice(0, 300)}` : '';
  if (status === 401) return new ConnectorError('auth_required', `${service}: the credential was refused (HTTP 401)${text}; authorise the connector again`, { ...details, status });
  if (status === 403) return new ConnectorError('auth_required', `${service}: access denied (HTTP 403)${text}; the credential lacks a scope or was revoked`, { ...details, status });
  if (status === 404) return new ConnectorError('not_found', `${service}: not found (HTTP 404)${text}`, { ...details, status });
  if (status === 409) return new ConnectorError('conflict', `${service}: conflict (HTTP 409)${text}`, { ...details, status });
  // A conditional write (If-Match) whose target changed since it was read: refused, nothing written.
  if (status === 412) return new ConnectorError('conflict', `${service}: the target changed since it was read (HTTP 412)${text}; nothing was done`, { ...details, status });
  if (status === 400 || status === 422) return new ConnectorError('bad_arguments', `${service}: request refused (HTTP ${status})${text}`, { ...details, status });
  if (status === 413) return new ConnectorError('result_too_large', `${service}: payload too large (HTTP 413)${text}`, { ...details, status });
  return new ConnectorError('upstream_error', `${service}: HTTP ${status}${text}`, { ...details, status });
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ETIMEDOUT']);

/** Finds a Node network error code anywhere in an error's cause chain. */
export function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 6 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    const errno = (e as { errno?: unknown }).errno;
    if (typeof errno === 'string' && NETWORK_CODES.has(errno)) return errno;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
