/**
 * The console's only server-side setting: where the Steward API is (never NEXT_PUBLIC_*, never
 * sent to the browser). Read at request time, so one build serves any deployment (`next start`
 * or the container image) — unlike next.config rewrites, which `next build` freezes.
 */
export function apiBaseUrl(): string {
  return (process.env.STEWARD_API_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
}
