#!/usr/bin/env node
// `npm run lint:api`: builds the API, writes its OpenAPI document (the one served at
// /openapi.json) to apps/api/dist/openapi.json, and lints it with Redocly (redocly.yaml:
// the recommended rules) and Spectral (.spectral.yaml: spectral:oas + the OWASP API Security
// ruleset). Exits non-zero when either tool reports an error; warnings are printed, not fatal.
// Needs no database, Redis or network.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'apps', 'api', 'dist', 'openapi.json');
const rel = relative(root, out);
const say = (line) => process.stdout.write(`[lint:api] ${line}\n`);
const env = {
  ...process.env,
  // Offline and quiet: no usage telemetry, no update check.
  REDOCLY_TELEMETRY: 'off',
  REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
  SCARF_ANALYTICS: 'false',
  DO_NOT_TRACK: '1',
};

function run(args, options = {}) {
  const result = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) throw result.error;
  return result;
}

say('building apps/api (tsc -b)');
const build = run([join('node_modules', 'typescript', 'bin', 'tsc'), '-b', 'apps/api'], { stdio: 'inherit' });
if (build.status !== 0) {
  say('the build failed');
  process.exit(build.status ?? 1);
}

const gen = run([join('apps', 'api', 'dist', 'cli', 'openapi.js'), out], { stdio: 'inherit' });
if (gen.status !== 0) {
  say('generating the OpenAPI document failed');
  process.exit(gen.status ?? 1);
}

// --- Redocly ----------------------------------------------------------------------------
say(`redocly lint ${rel} (redocly.yaml: recommended)`);
const redoclyCli = join('node_modules', '@redocly', 'cli', 'bin', 'cli.js');
const redoclyArgs = [redoclyCli, 'lint', rel, '--config', 'redocly.yaml'];
// Human-readable findings first, then the JSON report for the counts.
const redoclyText = run([...redoclyArgs, '--format', 'stylish']);
process.stdout.write(stripBanner(redoclyText.stdout + redoclyText.stderr));
const redoclyJson = run([...redoclyArgs, '--format', 'json']);
let redocly;
try {
  redocly = JSON.parse(redoclyJson.stdout.slice(redoclyJson.stdout.indexOf('{'))).totals;
} catch {
  process.stderr.write(redoclyJson.stdout + redoclyJson.stderr);
  say('could not read the Redocly report');
  process.exit(1);
}
const redoclySummary = `Redocly: ${redocly.errors} error(s), ${redocly.warnings} warning(s), ${redocly.ignored} ignored`;

// --- Spectral ---------------------------------------------------------------------------
say(`spectral lint ${rel} (.spectral.yaml: spectral:oas + @stoplight/spectral-owasp-ruleset)`);
const spectralCli = join('node_modules', '@stoplight', 'spectral-cli', 'dist', 'index.js');
const spectralJsonFile = join(root, 'apps', 'api', 'dist', 'spectral-report.json');
// One run: stylish text on stdout, the JSON report into a file for the counts.
// --fail-severity=error: the exit status reflects errors only; warnings are reported.
const spectral = run([
  spectralCli,
  'lint',
  rel,
  '--ruleset',
  '.spectral.yaml',
  '--fail-severity',
  'error',
  '--format',
  'stylish',
  '--format',
  'json',
  '--output.json',
  relative(root, spectralJsonFile),
]);
process.stdout.write(spectral.stdout + spectral.stderr);
let results;
try {
  results = JSON.parse(readFileSync(spectralJsonFile, 'utf8'));
} catch {
  say('could not read the Spectral report');
  process.exit(1);
}
const count = (severity) => results.filter((r) => r.severity === severity).length;
const spectralCounts = { errors: count(0), warnings: count(1), infos: count(2), hints: count(3) };
const spectralSummary = `Spectral: ${spectralCounts.errors} error(s), ${spectralCounts.warnings} warning(s), ${spectralCounts.infos} info(s), ${spectralCounts.hints} hint(s)`;

say(redoclySummary);
say(spectralSummary);
const failed = redocly.errors > 0 || redoclyText.status !== 0 || spectralCounts.errors > 0 || spectral.status !== 0;
say(failed ? 'FAILED: the OpenAPI document has lint errors' : 'OK: 0 errors');
process.exit(failed ? 1 : 0);

/** Redocly prints a boxed Node.js deprecation notice on Node 20; it is noise here. */
function stripBanner(text) {
  return text.replace(/\n?\s*╔[\s\S]*?╝\n?/g, '\n');
}
