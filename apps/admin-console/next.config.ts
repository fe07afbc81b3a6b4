import type { NextConfig } from 'next';

/**
 * The console talks to the Steward API same-origin: the browser calls `/api/...` on the console and
 * the route handler app/api/[...path]/route.ts forwards it (CSRF-checked) to STEWARD_API_URL, read
 * at request time, so the API's HTTP-only session cookie just works and one build fits every deployment.
 */
const nextConfig: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // `next dev` only: let a browser (or a browser test) on 127.0.0.1 load the dev assets too.
  allowedDevOrigins: ['127.0.0.1'],
  // `next dev` only: forwarding browser console output writes under .next/dev, which the dev
  // server (rooted at the monorepo) saw as a change and reloaded the page in a loop.
  logging: { browserToTerminal: false },
  experimental: { optimizePackageImports: ['@mantine/core', '@mantine/hooks', 'recharts'] },
  // The anomaly report's HTML download (opened from /api/v1/reports/{id}/download) links its
  // evidence as /v1/audit-events/{id}: on the console that is the event in the audit page.
  async redirects() {
    return [{ source: '/v1/audit-events/:id([0-9a-fA-F-]{36})', destination: '/audit?event=:id', permanent: false }];
  },
  // Every page: never framed by another site (clickjacking), no type sniffing, no URL (with its
  // ids) sent to other sites in Referer, no powerful browser features. The API's own answers
  // forwarded under /api keep the API's headers (its CSP included).
  async headers() {
    return [
      {
        source: '/:path*',
        headers: [
          { key: 'X-Frame-Options', value: 'DENY' },
          { key: 'Content-Security-Policy', value: "frame-ancestors 'none'; base-uri 'self'; object-src 'none'" },
          { key: 'X-Content-Type-Options', value: 'nosniff' },
          { key: 'Referrer-Policy', value: 'same-origin' },
          { key: 'Permissions-Policy', value: 'camera=(), microphone=(), geolocation=(), payment=(), usb=()' },
        ],
      },
    ];
  },
};

export default nextConfig;
