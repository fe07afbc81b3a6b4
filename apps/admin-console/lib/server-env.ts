/**
 * The console's server-side settings. Where the Steward API is (never NEXT_PUBLIC_*, never
 * sent to the browser). Read at request time, so one build serves any deployment (`next start`
 * or the container image) — unlike next.config rewrites, which `next build` freezes.
 */
export function apiBaseUrl(): string {
  return (process.env.STEWARD_API_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
}

/** `next dev` (its hot reload evaluates code, so the page's Content-Security-Policy allows eval there only). */
export function isDevServer(): boolean {
  return process.env.NODE_ENV === 'development';
}
