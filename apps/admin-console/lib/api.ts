// Browser-side helpers for the Steward API. Every call goes to `/api/...` on the console's own
// origin; app/api/[...path]/route.ts forwards it to the API, so the HTTP-only session cookie is sent as is.

export interface Health {
  status: string;
  mode?: 'embedded' | 'external' | string;
  version?: string;
}

export interface OrgSummary {
  id: string;
  name: string;
  slug: string;
}

export interface Session {
  user: { id: string; email: string; name?: string | null };
  org: OrgSummary;
  roles: string[];
}

export interface LoginRequest {
  email: string;
  password: string;
  totpCode?: string;
  org?: string;
}

/** RFC 9457 problem details, with Steward's machine-readable `code`. */
export interface Problem {
  status: number;
  title: string;
  detail?: string;
  code?: string;
  /** Field problems of a validation error (400). */
  errors?: { path: string; message: string }[];
}

export type Result<T> = { ok: true; data: T } | { ok: false; problem: Problem };

import { CSRF_HEADER } from './csrf';

const JSON_HEADERS = { accept: 'application/json, application/problem+json' } as const;

async function readProblem(res: Response): Promise<Problem> {
  let body: unknown = undefined;
  try {
    body = await res.json();
  } catch {
    // Not JSON (for example the proxy's own error page when the API is down).
  }
  const obj = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
  return {
    status: res.status,
    title: str(obj.title) ?? (res.statusText || 'Request failed'),
    detail: str(obj.detail),
    code: str(obj.code),
    errors: Array.isArray(obj.errors)
      ? obj.errors.filter((e): e is { path: string; message: string } => !!e && typeof e === 'object' && typeof e.path === 'string' && typeof e.message === 'string')
      : undefined,
  };
}

/**
 * The orgs a person may sign in to, when the API asks which (a person in several orgs signs in to
 * one at a time: "you belong to several orgs; choose one of: a, b").
 */
export function orgChoices(p: Problem): string[] {
  const m = p.errors?.find((e) => e.path === 'org')?.message.match(/choose one of: (.+)$/);
  return m ? m[1].split(',').map((s) => s.trim()).filter((s) => /^[a-z0-9-]+$/.test(s)) : [];
}

/** The message a person should read for a problem: its detail, else its title. */
export function problemMessage(p: Problem): string {
  if (p.detail) return p.detail;
  if (p.status === 0) return p.title;
  if (p.status >= 500 && !p.code) return `The Steward API is unavailable (HTTP ${p.status}).`;
  return p.title || `Request failed (HTTP ${p.status}).`;
}

async function request<T>(path: string, init: RequestInit = {}): Promise<Result<T>> {
  let res: Response;
  try {
    res = await fetch(`/api${path}`, {
      credentials: 'same-origin',
      cache: 'no-store',
      ...init,
      headers: { ...JSON_HEADERS, ...(init.method && init.method !== 'GET' ? { [CSRF_HEADER]: '1' } : {}), ...(init.headers ?? {}) },
    });
  } catch {
    return { ok: false, problem: { status: 0, title: 'Cannot reach the Steward API.' } };
  }
  if (!res.ok) return { ok: false, problem: await readProblem(res) };
  if (res.status === 204) return { ok: true, data: undefined as T };
  try {
    return { ok: true, data: (await res.json()) as T };
  } catch {
    return { ok: false, problem: { status: res.status, title: 'The Steward API sent an unreadable answer.' } };
  }
}

export function getHealth(): Promise<Result<Health>> {
  return request<Health>('/healthz');
}

export function getSession(): Promise<Result<Session>> {
  return request<Session>('/v1/auth/session');
}

export function login(body: LoginRequest): Promise<Result<{ user: Session['user']; org: OrgSummary }>> {
  return request('/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export function logout(): Promise<Result<unknown>> {
  return request('/v1/auth/logout', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
}

export interface SetupRequest {
  setupToken: string;
  org: { name: string; slug: string };
  owner: { email: string; name: string; password: string };
}

export function getSetupStatus(): Promise<Result<{ completed: boolean }>> {
  return request<{ completed: boolean }>('/v1/setup');
}

export function completeSetup(body: SetupRequest): Promise<Result<{ orgId: string; userId: string }>> {
  return request('/v1/setup', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export function startSso(body: { email?: string; org?: string }): Promise<Result<{ authorizationUrl: string; org: { slug: string } }>> {
  return request('/v1/auth/sso/start', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export interface AcceptInvitationRequest {
  token: string;
  /** A new account's name (ignored when the invited email already has an account). */
  name?: string;
  /** A new account's password, or the existing account's; left out to join as the signed-in account. */
  password?: string;
}

/** Joins an org with an invitation token (public; with a session cookie, as that account when no password is given). */
export function acceptInvitation(body: AcceptInvitationRequest): Promise<Result<{ orgId: string; userId: string }>> {
  return request('/v1/invitations/accept', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Sets a new password with a recovery link's token (public); the account's sessions, API keys and MCP grants end. */
export function recoverAccount(body: { token: string; newPassword: string }): Promise<Result<void>> {
  return request('/v1/auth/recover', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** A problem's detail followed by what was wrong with which field (a validation failure). */
export function problemWithFields(p: Problem): string {
  const fields = (p.errors ?? []).slice(0, 5).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message));
  return fields.length ? `${problemMessage(p)} ${fields.join('; ')}` : problemMessage(p);
}
