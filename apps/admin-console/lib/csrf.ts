/**
 * CSRF protection for the console's `/api` proxy, on top of the API's SameSite=Strict session cookie.
 * A state-changing request (anything but GET/HEAD/OPTIONS) is forwarded only when
 *  - it carries the `x-steward-csrf: 1` header: a cross-site form cannot set it, and a cross-site
 *    script cannot either without a CORS preflight, which neither the console nor the API answers;
 *  - its `Origin` (when the browser sends one) names the host the request was sent to; and
 *  - its `Sec-Fetch-Site` (when sent) is `same-origin`.
 */
export const CSRF_HEADER = 'x-steward-csrf';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** `ownHost`: the host the browser addressed (Host, or X-Forwarded-Host behind a reverse proxy). */
export function csrfProblem(method: string, headers: Headers): Response | null {
  if (SAFE.has(method.toUpperCase())) return null;
  let why: string | null = null;
  const ownHost = headers.get('x-forwarded-host') ?? headers.get('host');
  const origin = headers.get('origin');
  const site = headers.get('sec-fetch-site');
  if (headers.get(CSRF_HEADER) !== '1') why = `the ${CSRF_HEADER} header is missing`;
  else if (origin !== null && hostOf(origin) !== ownHost) why = `the request came from another origin (${origin.slice(0, 200)})`;
  else if (site !== null && site !== 'same-origin') why = `the browser marked the request ${site.slice(0, 40)}`;
  if (!why) return null;
  return Response.json(
    { type: 'about:blank', title: 'Cross-site request refused', status: 403, code: 'csrf_rejected', detail: `Refused: ${why}.` },
    { status: 403, headers: { 'content-type': 'application/problem+json' } },
  );
}

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}
