// The console's own liveness/readiness probe (Docker and Kubernetes). It does not call the API:
// the console is healthy when it can serve requests.
export const dynamic = 'force-dynamic';

export function GET(): Response {
  return Response.json({ status: 'ok' }, { headers: { 'cache-control': 'no-store' } });
}
