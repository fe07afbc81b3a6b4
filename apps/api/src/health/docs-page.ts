/** A self-contained API reference page (no scripts, nothing fetched from elsewhere). */
const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function docsPage(doc: Record<string, unknown>): string {
  const paths = doc.paths as Record<string, Record<string, { summary?: string; tags?: string[]; operationId?: string; security?: unknown[] }>>;
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const pub = Array.isArray(op.security) && op.security.length === 0;
      rows.push(
        `<tr><td>${esc(op.tags?.[0])}</td><td class="m">${esc(method.toUpperCase())}</td><td><code>${esc(path)}</code></td><td>${esc(op.summary)}</td><td>${pub ? 'public' : 'signed in'}</td></tr>`,
      );
    }
  }
  const info = doc.info as { title: string; version: string; description: string };
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;color:#1d232a}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #dde;padding:.4rem;text-align:left}.m{font-weight:600}code{background:#f3f4f8;padding:0 .3rem}</style></head>
<body><h1>${esc(info.title)} <small>${esc(info.version)}</small></h1><p>${esc(info.description)}</p>
<p>The machine-readable document is at <a href="/openapi.json"><code>/openapi.json</code></a> (OpenAPI 3.1). Errors are RFC 9457 <code>application/problem+json</code> with a stable <code>code</code>.</p>
<table><thead><tr><th>Area</th><th>Method</th><th>Path</th><th>What it does</th><th>Auth</th></tr></thead><tbody>${rows.join('')}</tbody></table></body></html>`;
}
