import { type NextRequest, NextResponse } from 'next/server';
import { isDevServer } from '@/lib/server-env';

/**
 * A strict Content-Security-Policy on every page: scripts run only when they carry this response's
 * nonce (Next.js puts it on its own scripts, read from the request's CSP header; the root layout
 * gives it to Mantine's color-scheme script), and whatever those load ('strict-dynamic'). So text an
 * agent or an upstream wrote that reached a page as markup cannot run. Styles allow inline (React
 * renders style attributes; Mantine and the charts use them). `next dev` also needs eval.
 * The API's answers forwarded under /api keep the API's own headers.
 */
export function proxy(request: NextRequest) {
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(18))));
  const dev = isDevServer();
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ''}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
  const headers = new Headers(request.headers);
  headers.set('x-nonce', nonce);
  headers.set('content-security-policy', csp);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set('content-security-policy', csp);
  return response;
}

export const config = {
  // Pages only: not the API proxy, the health check, or static files (which run nothing inline).
  matcher: [{ source: '/((?!api/|healthz|_next/static|_next/image|icon.svg|favicon.ico).*)' }],
};
