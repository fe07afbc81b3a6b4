// Lets `node -r ./test/bench/register.cjs x.bench.ts` load TypeScript: each .ts file is transpiled
// to CommonJS by @swc/core (already a dev dependency, used by Jest), types stripped, nothing checked.
// The policy library itself is loaded from its tsc build (libs/policy/dist) — scripts/bench.mjs
// builds it first — so what is measured is the code the API runs.
const fs = require('node:fs');
const { transformSync } = require('@swc/core');

require.extensions['.ts'] = function compileTs(module, filename) {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  });
  module._compile(code, filename);
};
