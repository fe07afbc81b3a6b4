#!/usr/bin/env node
// The `steward` command the workspace installs (node_modules/.bin/steward): the CLI's build, once
// `npm run build:backend` has made it. This file exists before the build, so that `npm install`
// links the command on a fresh clone (a bin pointing into dist/ is not linked while dist/ is empty).
let cli;
try {
  cli = require('../dist/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    process.stderr.write('steward: the CLI is not built yet: run "npm run build:backend" first\n');
    process.exit(2);
  }
  throw err;
}
void cli.main(process.argv).then((code) => {
  process.exitCode = code;
});
