import type { NextRequest } from 'next/server';
import { apiBaseUrl } from '@/lib/server-env';
import { csrfProblem } from '@/lib/csrf';

/**
 * Same-origin proxy to the Steward API: the browser calls `/api/<path>` on the console and this
 * handler forwards it to `<STEWARD_API_URL>/<path>`, so the API's HTTP-only, SameSite=Strict session
 * cookie travels as is and the API needs no CORS. Responses stream through (server-sent events,
 * audit exports). Every state-changing request must pass the CSRF check first (lib/csrf.ts).
 */
export const dynamic = 'force-dynamic';

const FORWARD_REQUEST = ['accept', 'content-type', 'cookie', 'user-agent', 'last-event-id', 'accept-language'];
// fetch() decodes the body and re-frames it: these no longer describe what we send back.
const DROP_RESPONSE = new Set(['content-encoding', 'content-length', 'transfer-encoding', 'connection', 'keep-alive']);

// Only the API's own routes for browsers: /v1/..., its health and its OpenAPI document (not /metrics).
const TOP_LEVEL = new Set(['healthz', 'readyz', 'openapi.json']);

async function proxy(req: NextRequest, ctx: { params: Promise<{ path: string[] }> }): Promise<Response> {
  const refused = csrfProblem(req.method, req.headers);
  if (refused) return refused;
  const { path } = await ctx.params;
  if (path[0] !== 'v1' && !(path.length === 1 && TOP_LEVEL.has(path[0]))) {
    return Response.json(
      { type: 'about:blank', title: 'Not found', status: 404, code: 'not_found', detail: 'The console forwards only /api/v1/..., /api/healthz, /api/readyz and /api/openapi.json.' },
      { status: 404, headers: { 'content-type': 'application/problem+json' } },
    );
  }
  const target = `${apiBaseUrl()}/${path.map(encodeURIComponent).join('/')}${req.nextUrl.search}`;
  const headers = new Headers();
  for (const name of FORWARD_REQUEST) {
    const value = req.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  // server.mjs has appended this connection's peer, so the API (believing the console) counts the
  // caller's address, not one the caller wrote.
  const forwardedFor = req.headers.get('x-forwarded-for');
  if (forwardedFor) headers.set('x-forwarded-for', forwardedFor);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method: req.method,
      headers,
      body: hasBody ? await req.arrayBuffer() : undefined,
      redirect: 'manual',
      cache: 'no-store',
      signal: req.signal,
    });
  } catch {
    return Response.json(
      { type: 'about:blank', title: 'Cannot reach the Steward API', status: 502, code: 'api_unreachable', detail: 'The console could not connect to the Steward API.' },
      { status: 502, headers: { 'content-type': 'application/problem+json' } },
    );
  }
  const out = new Headers();
  upstream.headers.forEach((value, name) => {
    if (!DROP_RESPONSE.has(name) && name !== 'set-cookie') out.set(name, value);
  });
  for (const cookie of upstream.headers.getSetCookie()) out.append('set-cookie', cookie);
  return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: out });
}

export { proxy as GET, proxy as POST, proxy as PUT, proxy as PATCH, proxy as DELETE };
