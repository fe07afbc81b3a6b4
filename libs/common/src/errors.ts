/**
 * Stable error codes. An API error carries one of these as `code` in its
 * RFC 9457 problem document; clients match on the code, never on the text.
 */
export const ErrorCode = {
  ValidationFailed: 'validation_failed',
  MalformedJson: 'malformed_json',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
  Unauthenticated: 'unauthenticated',
  InvalidCredentials: 'invalid_credentials',
  MfaRequired: 'mfa_required',
  StepUpRequired: 'step_up_required',
  Forbidden: 'forbidden',
  NotFound: 'not_found',
  Conflict: 'conflict',
  /** A monthly budget (the org's or the user's) is spent: no new agent work until the next month or a higher budget. */
  BudgetExceeded: 'budget_exceeded',
  MethodNotAllowed: 'method_not_allowed',
  RateLimited: 'rate_limited',
  SetupUnavailable: 'setup_unavailable',
  Internal: 'internal_error',
  Unavailable: 'service_unavailable',
  /** A connector's upstream could not be reached (connection refused, DNS, no MCP endpoint). */
  UpstreamUnreachable: 'upstream_unreachable',
  /** The upstream answered with an error. */
  UpstreamError: 'upstream_error',
  UpstreamTimeout: 'upstream_timeout',
  /** The upstream's answer (a tool result, a tool list) is larger than the limit. */
  ResultTooLarge: 'result_too_large',
  /** The URL resolves to a loopback, private, link-local or metadata address that nobody allowlisted. */
  EgressRefused: 'egress_refused',
  /** The credential was refused or its refresh failed: the user (or admin) must authorise again. */
  ReauthorizationRequired: 'reauthorization_required',
  /** The tool is not approved, or its definition changed since approval. */
  ToolHeld: 'tool_held',
  /** The domain's DNS does not (yet) carry the org's verification record. */
  DomainUnverified: 'domain_unverified',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ProblemField {
  path: string;
  message: string;
}

/** A domain error that the API turns into problem+json. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: ProblemField[],
  ) {
    super(detail ?? title);
    this.name = 'AppError';
  }

  static notFound(what = 'resource'): AppError {
    return new AppError(404, ErrorCode.NotFound, 'Not found', `The ${what} does not exist.`);
  }
  static conflict(detail: string): AppError {
    return new AppError(409, ErrorCode.Conflict, 'Conflict', detail);
  }
  static validation(errors: ProblemField[], detail = 'The request is not valid.'): AppError {
    return new AppError(400, ErrorCode.ValidationFailed, 'Validation failed', detail, errors);
  }
  static unauthenticated(detail = 'Sign in or send a valid API key.'): AppError {
    return new AppError(401, ErrorCode.Unauthenticated, 'Unauthenticated', detail);
  }
  static forbidden(detail = 'You are not allowed to do this.'): AppError {
    return new AppError(403, ErrorCode.Forbidden, 'Forbidden', detail);
  }
}
