/**
 * The console's HTTP server: Next.js behind a plain Node server, so that the console can say who
 * its caller is. `next start` keeps an X-Forwarded-For header the browser sent and drops the
 * connection's own address; the console forwards that header to the API, which believes it from
 * the console, so any browser could pick the address the API's per-address limits count.
 *
 * Here every request's X-Forwarded-For gets the connection's address appended, as a proxy should.
 * What the browser wrote stays to its left, where the API believes it only as far as its
 * TRUST_PROXY names the hops in front of the console (a load balancer, say).
 *
 *   node server.mjs [--dev] [-H host]   on PORT (3000), all interfaces unless -H names one
 *
 * (Not $HOSTNAME: containers and pods set it to their own name, which resolves to one address.)
 */
import { createServer } from 'node:http';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const dev = process.argv.includes('--dev');
process.env.NODE_ENV ??= dev ? 'development' : 'production';
process.env.NEXT_TELEMETRY_DISABLED ??= '1';
const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, not ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
const hostFlag = process.argv.indexOf('-H');
const hostname = hostFlag > 0 ? process.argv[hostFlag + 1] : undefined;
if (hostFlag > 0 && !hostname) {
  console.error('-H takes the address to listen on');
  process.exit(2);
}

const { default: next } = await import('next');

/** The caller's X-Forwarded-For with this connection's peer appended (one header, however many were sent). */
function forwardedFor(headers, socketAddress) {
  // Listening on every interface, IPv4 callers arrive IPv4-mapped (::ffff:a.b.c.d): passed on as IPv4.
  const peer = socketAddress?.replace(/^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i, '$1');
  const sent = headers['x-forwarded-for'];
  const chain = (Array.isArray(sent) ? sent.join(', ') : (sent ?? '')).trim();
  if (!peer) return chain || undefined;
  return chain ? `${chain}, ${peer}` : peer;
}

const server = createServer();
const app = next({ dev, dir: dirname(fileURLToPath(import.meta.url)), hostname, port, httpServer: server });
const handle = app.getRequestHandler();
await app.prepare();
server.on('request', (req, res) => {
  const value = forwardedFor(req.headers, req.socket.remoteAddress);
  if (value === undefined) delete req.headers['x-forwarded-for'];
  else req.headers['x-forwarded-for'] = value;
  handle(req, res).catch((err) => {
    console.error('console: request failed', err);
    if (!res.headersSent) res.statusCode = 500;
    res.end();
  });
});
server.listen(port, hostname, () => {
  console.log(`console ${dev ? '(development) ' : ''}listening on http://${hostname ?? 'localhost'}:${port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.close();
    app.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5_000).unref();
  });
}
