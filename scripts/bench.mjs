#!/usr/bin/env node
// Runs the benchmarks in test/bench/*.bench.ts (benchmarks are not tests: Jest never runs them).
//   node scripts/bench.mjs            every benchmark          (npm run bench)
//   node scripts/bench.mjs policy     only test/bench/policy.bench.ts (npm run bench:policy)
//   node scripts/bench.mjs audit      only test/bench/audit.bench.ts  (npm run bench:audit; needs PostgreSQL)
//   node scripts/bench.mjs gate       only test/bench/gate.bench.ts   (npm run bench:gate; PostgreSQL and Redis)
//   node scripts/bench.mjs gateway    only test/bench/gateway.bench.ts (npm run bench:gateway; the API, PostgreSQL and Redis, loopback)
//   node scripts/bench.mjs oversight  only test/bench/oversight.bench.ts (npm run bench:oversight; PostgreSQL; BENCH_OVERSIGHT_SCALE=0.1 for 500k events)
//
// It first builds what the benchmarks load (libs/policy, libs/audit, libs/gate and libs/jobs with tsc -b, incremental, so a no-op when
// up to date), then runs each benchmark in its own Node process, TypeScript transpiled on load by
// test/bench/register.cjs (@swc/core), with --expose-gc (and one V8 workaround, below), pinned to one CPU with `taskset -c 0`
// where available (BENCH_NO_PIN=1 to run unpinned). Stdout carries only the benchmarks' JSON lines
// ({"measure": NAME, "value": NUMBER}); everything else goes to stderr. Exits non-zero if a build
// or a benchmark fails. BENCH_CPU_PROF=DIR writes a V8 CPU profile of each benchmark process there
// (--cpu-prof: the gateway benchmark's holds the API's own work; open it in Chrome DevTools).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const benchDir = path.join(root, 'test', 'bench');
const all = fs
  .readdirSync(benchDir)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const names = all.map((f) => f.slice(0, -'.bench.ts'.length));
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !names.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')} (have: ${names.join(', ')})`);
  process.exit(2);
}
const selected = wanted.length ? wanted : names;

const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

// Build the libraries (their tsc output is what the API and the worker run, and what the benchmarks measure).
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
// The gateway benchmark runs the API itself (its tsc build).
const build = spawnSync(process.execPath, [tsc, '-b', 'libs/policy', 'libs/audit', 'libs/gate', 'libs/jobs', 'libs/oversight', ...(selected.includes('gateway') ? ['apps/api'] : [])], { cwd: root, stdio: ['ignore', process.stderr, 'inherit'] });
if (build.status !== 0) {
  console.error('bench: building the libraries failed');
  process.exit(build.status ?? 1);
}

const canPin = process.platform === 'linux' && !process.env.BENCH_NO_PIN && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
if (!canPin) console.error('bench: not pinned to one CPU (taskset unavailable or BENCH_NO_PIN set)');

let failed = 0;
for (const name of selected) {
  const file = path.join(benchDir, `${name}.bench.ts`);
  // --no-turbo-inline-js-wasm-calls: with JS→Wasm calls inlined, Node 20's V8 aborts ("Fatal error …
  // unreachable code" in Deoptimizer::DoComputeBuiltinContinuation, SIGTRAP) when a GC during a
  // Cedar (wasm) call lazily deoptimises the caller. Only the Cedar calls are affected by the flag.
  // The gate and the gateway run as the API and the worker run in production (their Dockerfiles and
  // `npm start`): with a 64 MiB young generation.
  const service = name === 'gate' || name === 'gateway' ? ['--max-semi-space-size=64'] : [];
  const nodeArgs = [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_CPU_PROF] : []), '--expose-gc', '--no-turbo-inline-js-wasm-calls', ...service, '-r', path.join(benchDir, 'register.cjs'), file];
  // The policy benchmark measures one core; the database ones run beside PostgreSQL, unpinned.
  const pin = canPin && name === 'policy';
  console.error(`bench: ${name}${pin ? ' (taskset -c 0)' : ''}`);
  const res = pin ? run('taskset', ['-c', '0', process.execPath, ...nodeArgs]) : run(process.execPath, nodeArgs);
  if (res.status !== 0) {
    console.error(`bench: ${name} failed (exit ${res.status ?? res.signal})`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
