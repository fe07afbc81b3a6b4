import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { renderOpenApiDocument } from './openapi-document';

/**
 * Writes the OpenAPI document the API serves at /openapi.json, without a database or Redis:
 *   node apps/api/dist/cli/openapi.js [out.json]    (stdout when no path is given)
 * (see openapi-document.ts).
 */

// `... | head` closes the pipe early: that is not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));

async function main(): Promise<void> {
  const out = process.argv[2];
  const json = await renderOpenApiDocument();
  if (out) {
    const path = resolve(out);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, json);
    process.stderr.write(`steward-openapi: wrote ${path}\n`);
  } else {
    // Wait for the pipe to drain: process.exit() below would cut a large write short.
    await new Promise<void>((done, fail) => process.stdout.write(json, (err) => (err ? fail(err) : done())));
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`steward-openapi: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
