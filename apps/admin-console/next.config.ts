import type { NextConfig } from 'next';

/**
 * The console talks to the Steward API same-origin: the browser calls `/api/...` on the console
 * and Next proxies it to the API, so the API's HTTP-only session cookie (path `/`) just works.
 *
 * STEWARD_API_URL is a server-side setting (never NEXT_PUBLIC_*, never sent to the browser).
 * Caution: `next start` serves the rewrites recorded by `next build` (.next/routes-manifest.json),
 * so the value in effect is the one present at *build* time; `next dev` reads it at start-up.
 */
const apiUrl = (process.env.STEWARD_API_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

const nextConfig: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // `next dev` only: let a browser (or a browser test) on 127.0.0.1 load the dev assets too.
  allowedDevOrigins: ['127.0.0.1'],
  // `next dev` only: forwarding browser console output writes under .next/dev, which the dev
  // server (rooted at the monorepo) saw as a change and reloaded the page in a loop.
  logging: { browserToTerminal: false },
  async rewrites() {
    return [{ source: '/api/:path*', destination: `${apiUrl}/:path*` }];
  },
};

export default nextConfig;
