// Lets a child process started by a test (`node -r test/support/ts-child.cjs child.ts`) run the
// project's TypeScript sources as Jest does: each .ts file transpiled to CommonJS by @swc/core
// (decorators included), and `@steward/<lib>` resolved to libs/<lib>/src, so no build is needed.
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const { transformSync } = require('@swc/core');

const libs = path.resolve(__dirname, '../../libs');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const m = /^@steward\/(common|db|policy|connectors|jobs|vault|audit|gate|oversight)(?:\/(.*))?$/.exec(request);
  if (m) request = path.join(libs, m[1], 'src', m[2] ?? 'index.ts');
  return resolve.call(this, request, parent, ...rest);
};

require.extensions['.ts'] = function compileTs(module, filename) {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript', decorators: true }, transform: { legacyDecorator: true, decoratorMetadata: true }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  });
  module._compile(code, filename);
};
