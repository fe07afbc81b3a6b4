/**
 * Benchmark of the Trust Level policy engine (libs/policy), `npm run bench:policy`.
 * Not a test: it measures, prints one JSON object per line on stdout — {"measure": NAME,
 * "value": NUMBER} — and nothing else there (progress and details go to stderr). It exits
 * non-zero when a correctness check fails (a translation or a differential mismatch).
 *
 * Measures, all in one run, on one core (scripts/bench.mjs pins the process with taskset):
 *   cedar_agreement, casbin_agreement   fraction of a sample (the benchmark's 2,000 actions on its
 *                                       50-rule policy + 200 actions on each of 10 more such
 *                                       policies) on which the Cedar / casbin translation decides
 *                                       the same level as decide() (must be 1)
 *   decide_per_sec_50_rules             decide() on the realistic 50-rule policy
 *   cedar_per_sec_50_rules              Cedar (statefulIsAuthorized, preparsed) on the same policy
 *                                       and the same actions: ask autonomous, batched, watched
 *   decide_vs_cedar                     the ratio of the two (goal ≥ 100)
 *   casbin_per_sec_50_rules             casbin on the same policy, for reference
 *   decide_p99_us_500_rules             p99 of single decide() calls, 500-rule policy (goal ≤ 50)
 *   decide_per_sec_500_rules            decide() throughput on it (goal ≥ 300,000)
 *   label_and_decide_p99_us_10kb        labelArguments() on ~10 KB of arguments + decide(), p99
 *                                       (500-rule policy; goal ≤ 100)
 *   differential_cases                  random cases where decide() was checked against the CASL
 *   differential_casl_mismatches        form (caslLevel) — 1,000,000, mismatches must be 0
 *   differential_reference_cases        the first of those cases also checked (level and rule ids)
 *   differential_reference_mismatches   against the naive reference evaluator, for ~3 minutes at most
 *
 * Knobs (environment, for quick local runs only): BENCH_DIFFERENTIAL_CASES (default 1000000),
 * BENCH_REFERENCE_SECONDS (default 180), BENCH_SECONDS_SCALE (default 1; scales timed rounds).
 */
import {
  type ActionContext,
  caslLevel,
  compileAbility,
  type CompiledAbility,
  compilePolicy,
  type CompiledPolicy,
  decide,
  type Decision,
  eachValue,
  type Level,
  labelArguments,
  type OrgInfo,
  type PolicyDocument,
  rank,
  toFacts,
  validatePolicy,
} from '@steward/policy';
import { referenceDecide } from '../../libs/policy/test/reference';
import { type CasbinPolicy, casbinLevel, compileCasbin } from './policy-casbin';
import { type CedarPolicy, cedarLevel, cedarPermitAll, cedarVersion, compileCedar } from './policy-cedar';
import { type Case, DENSE_ORG, densePolicy, denseCase, int, pick, realisticCase, realisticPolicy, realisticWorld, rng, tenKbArguments, type World } from './policy-gen';

const env = (name: string, fallback: number): number => (process.env[name] ? Number(process.env[name]) : fallback);
const DIFFERENTIAL_CASES = env('BENCH_DIFFERENTIAL_CASES', 1_000_000);
const REFERENCE_SECONDS = env('BENCH_REFERENCE_SECONDS', 180);
const SCALE = env('BENCH_SECONDS_SCALE', 1);

const print = (measure: string, value: number) => process.stdout.write(JSON.stringify({ measure, value }) + '\n');
const log = (...parts: unknown[]) => process.stderr.write(parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ') + '\n');
const gc = () => (globalThis as { gc?: () => void }).gc?.();
let failed = false;
const fail = (why: string) => {
  failed = true;
  log(`FAIL: ${why}`);
};

function mustValidate(doc: PolicyDocument, what: string): PolicyDocument {
  const v = validatePolicy(doc);
  if (!v.ok) throw new Error(`${what} is not a valid policy: ${JSON.stringify(v.problems.slice(0, 5))}`);
  return v.document;
}

function cases(n: number, seed: number, world: World, doc: PolicyDocument): Case[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => realisticCase(r, world, doc));
}

function levelMix(levels: Level[]): Record<string, number> {
  const mix: Record<string, number> = {};
  for (const l of levels) mix[l] = (mix[l] ?? 0) + 1;
  return mix;
}

/** Median decisions per second over `rounds` rounds of `roundMs`, after `warmupMs` of warm-up. */
function throughput(label: string, list: Case[], fn: (c: Case) => number, opts: { warmupMs: number; roundMs: number; rounds: number }): number {
  let sink = 0;
  let i = 0;
  const n = list.length;
  const until = performance.now() + opts.warmupMs * SCALE;
  while (performance.now() < until) for (let k = 0; k < 16; k++) sink += fn(list[i++ % n]);
  const rates: number[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    gc();
    let count = 0;
    const start = process.hrtime.bigint();
    const budget = BigInt(Math.round(opts.roundMs * SCALE * 1e6));
    let elapsed: bigint;
    do {
      for (let k = 0; k < 16; k++) sink += fn(list[i++ % n]);
      count += 16;
      elapsed = process.hrtime.bigint() - start;
    } while (elapsed < budget);
    rates.push(count / (Number(elapsed) / 1e9));
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  log(`${label}: ${rates.map((x) => Math.round(x)).join(', ')} /s (median ${Math.round(median)}; checksum ${sink})`);
  return median;
}

/** Latency percentiles (µs) of single calls, measured one by one with hrtime. */
function latency(label: string, samples: number, warmup: number, fn: (i: number) => number): { p50: number; p99: number; p999: number; max: number } {
  let sink = 0;
  for (let i = 0; i < warmup; i++) sink += fn(i);
  gc();
  const ns = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const t0 = process.hrtime.bigint();
    sink += fn(i);
    ns[i] = Number(process.hrtime.bigint() - t0);
  }
  ns.sort();
  const at = (q: number) => ns[Math.min(samples - 1, Math.floor(q * samples))] / 1000;
  const out = { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: ns[samples - 1] / 1000 };
  log(`${label}: p50 ${out.p50.toFixed(2)} µs, p99 ${out.p99.toFixed(2)} µs, p99.9 ${out.p999.toFixed(2)} µs, max ${out.max.toFixed(0)} µs over ${samples} calls (checksum ${sink})`);
  return out;
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const round0 = (x: number) => Math.round(x);

async function fiftyRules(world: World): Promise<void> {
  const doc = mustValidate(realisticPolicy(world, 50, 50), 'the 50-rule policy');
  const compiled = compilePolicy(doc);
  const list = cases(2000, 5001, world, doc);
  const decideLevel = (c: Case) => decide(compiled, c.principal, c.action, c.context, world.org).level;
  const levels = list.map(decideLevel);
  log(`50-rule policy: ${doc.rules.length} rules, ${doc.forbiddenAreas.length} forbidden areas, ${doc.rateLimits.length} rate limits; ${list.length} actions, decided ${JSON.stringify(levelMix(levels))}`);

  const cedarPolicy = compileCedar(doc);
  log(`Cedar ${cedarVersion()}: ${cedarPolicy.statements} policies, ${cedarPolicy.text.length} characters of policy text`);
  const casbinPolicy = await compileCasbin(doc);
  log(`casbin: ${casbinPolicy.lines} policy lines`);

  // Agreement: the benchmark's policy and actions, plus 10 more realistic 50-rule policies × 200
  // actions (more user/workflow/group precedence cases than one policy gives).
  const samples: { doc: PolicyDocument; list: Case[]; levels: Level[]; cedar: CedarPolicy; casbin: CasbinPolicy; split: CompiledAbility['split'] }[] = [{ doc, list, levels, cedar: cedarPolicy, casbin: casbinPolicy, split: compileAbility(doc).split }];
  for (let k = 1; k <= 10; k++) {
    const other = mustValidate(realisticPolicy(world, 50, 50 + k), `extra 50-rule policy ${k}`);
    const otherCompiled = compilePolicy(other);
    const otherList = cases(200, 6000 + k, world, other);
    samples.push({ doc: other, list: otherList, levels: otherList.map((c) => decide(otherCompiled, c.principal, c.action, c.context, world.org).level), cedar: compileCedar(other), casbin: await compileCasbin(other), split: compileAbility(other).split });
  }
  let total = 0;
  let cedarSame = 0;
  let casbinSame = 0;
  const cedarDiffs: unknown[] = [];
  const casbinDiffs: unknown[] = [];
  for (const sample of samples) {
    sample.list.forEach((c, i) => {
      // An action naming several resources (or hosts, recipient domains, labels) that rules test is decided for each alone, the most restrictive standing.
      const each = eachValue(toFacts(c.principal, c.action, c.context, world.org), sample.split[c.action] ?? [])!;
      const viaCedar = each.map((f) => cedarLevel(sample.cedar, f, { strict: true })).reduce((a, b) => (rank(b) > rank(a) ? b : a));
      const viaCasbin = each.map((f) => casbinLevel(sample.casbin, f)).reduce((a, b) => (rank(b) > rank(a) ? b : a));
      total++;
      if (viaCedar === sample.levels[i]) cedarSame++;
      else if (cedarDiffs.length < 3) cedarDiffs.push({ case: c, decide: sample.levels[i], cedar: viaCedar });
      if (viaCasbin === sample.levels[i]) casbinSame++;
      else if (casbinDiffs.length < 3) casbinDiffs.push({ case: c, decide: sample.levels[i], casbin: viaCasbin });
    });
  }
  log(`agreement sample: ${total} actions on ${samples.length} policies`);
  print('cedar_agreement', cedarSame / total);
  print('casbin_agreement', casbinSame / total);
  if (cedarSame !== total) fail(`Cedar disagrees with decide() on ${total - cedarSame} of ${total} actions: ${JSON.stringify(cedarDiffs).slice(0, 3000)}`);
  if (casbinSame !== total) fail(`casbin disagrees with decide() on ${total - casbinSame} of ${total} actions: ${JSON.stringify(casbinDiffs).slice(0, 3000)}`);

  const ours = throughput('decide(), 50 rules', list, (c) => rank(decideLevel(c)), { warmupMs: 1500, roundMs: 1000, rounds: 5 });
  const theirs = throughput('Cedar, 50 rules', list, (c) => rank(cedarLevel(cedarPolicy, toFacts(c.principal, c.action, c.context, world.org))), { warmupMs: 1500, roundMs: 1000, rounds: 5 });
  print('decide_per_sec_50_rules', round0(ours));
  print('cedar_per_sec_50_rules', round0(theirs));
  print('decide_vs_cedar', round2(ours / theirs));
  const permitAll = cedarPermitAll(cedarPolicy);
  throughput('Cedar, permit-all policy (one call per decision: the fixed cost of a call)', list, (c) => rank(cedarLevel(permitAll, toFacts(c.principal, c.action, c.context, world.org))), { warmupMs: 500, roundMs: 1000, rounds: 3 });
  const casbin = throughput('casbin, 50 rules', list, (c) => rank(casbinLevel(casbinPolicy, toFacts(c.principal, c.action, c.context, world.org))), { warmupMs: 1000, roundMs: 1000, rounds: 3 });
  print('casbin_per_sec_50_rules', round0(casbin));
}

function fiveHundredRules(world: World): CompiledPolicy {
  const doc = mustValidate(realisticPolicy(world, 500, 500), 'the 500-rule policy');
  const compiled = compilePolicy(doc);
  const list = cases(4096, 5002, world, doc);
  const one = (c: Case) => rank(decide(compiled, c.principal, c.action, c.context, world.org).level);
  log(`500-rule policy: ${doc.rules.length} rules, ${doc.forbiddenAreas.length} forbidden areas, ${doc.rateLimits.length} rate limits; decided ${JSON.stringify(levelMix(list.map((c) => decide(compiled, c.principal, c.action, c.context, world.org).level)))}`);
  const l = latency('decide(), 500 rules, single calls', 300_000, 100_000, (i) => one(list[i % list.length]));
  print('decide_p99_us_500_rules', round2(l.p99));
  const rate = throughput('decide(), 500 rules', list, one, { warmupMs: 1000, roundMs: 1000, rounds: 5 });
  print('decide_per_sec_500_rules', round0(rate));
  return compiled;
}

function labelAndDecide(world: World, compiled: CompiledPolicy): void {
  const r = rng(10_240);
  const payloads = Array.from({ length: 32 }, () => {
    const { action, args } = tenKbArguments(r);
    const principal = pick(r, world.users);
    const context: ActionContext =
      action === 'email.send'
        ? { recipients: ['jane.doe@partner.example', 'bob@acme.example', 'raj@bigclient.example'], connector: 'gmail' }
        : action === 'saas.write'
          ? { hosts: ['acme.my.salesforce.com'], connector: 'salesforce' }
          : { resources: ['/projects/steward/board-update.md'], connector: 'local-fs' };
    context.at = new Date(Date.UTC(2026, 2, 2) + int(r, 0, 7 * 24 * 60) * 60_000);
    if (r() < 0.2) context.tainted = true;
    return { action, args, principal, context };
  });
  const sizes = payloads.map((p) => JSON.stringify(p.args).length);
  const found = payloads.map((p) => labelArguments(p.args, world.org.domains).findings.map((f) => `${f.kind}×${f.count}`).join(' '));
  log(`10 KB arguments: ${payloads.length} payloads of ${Math.min(...sizes)}–${Math.max(...sizes)} bytes of JSON; findings e.g. ${found.slice(0, 3).join(' | ')}`);
  const one = (i: number) => {
    const p = payloads[i % payloads.length];
    const { labels } = labelArguments(p.args, world.org.domains);
    const d: Decision = decide(compiled, p.principal, p.action, { ...p.context, labels }, world.org);
    return rank(d.level) + labels.length;
  };
  const l = latency('labelArguments(10 KB) + decide(), 500 rules', 30_000, 5_000, one);
  print('label_and_decide_p99_us_10kb', round2(l.p99));
  const labelOnly = latency('labelArguments(10 KB) alone', 10_000, 1_000, (i) => labelArguments(payloads[i % payloads.length].args, world.org.domains).labels.length);
  void labelOnly;
}

interface Source {
  doc: PolicyDocument;
  org: OrgInfo;
  next: () => Case;
  kind: string;
}

/** Policy i of the differential stream: 60 % dense (≤ 20 rules), 30 % realistic 10–100 rules, 10 % 200–500. */
function source(i: number, world: World): Source {
  const seed = 1_000_003 + i * 7919;
  const r = rng(seed);
  const kind = i % 10;
  if (kind < 6) {
    const doc = densePolicy(r, 20);
    return { doc, org: DENSE_ORG, next: () => denseCase(r), kind: 'dense' };
  }
  const n = kind < 9 ? int(r, 10, 100) : int(r, 200, 500);
  const doc = realisticPolicy(world, n, seed);
  return { doc, org: world.org, next: () => realisticCase(r, world, doc), kind: `realistic-${n}` };
}

function differential(world: World): void {
  const PER_POLICY = 1000;
  let cases = 0;
  let caslMismatches = 0;
  let refCases = 0;
  let refMismatches = 0;
  let refNs = 0n;
  const refBudget = BigInt(Math.round(REFERENCE_SECONDS * 1e9));
  const examples: unknown[] = [];
  const started = performance.now();
  for (let i = 0; cases < DIFFERENTIAL_CASES; i++) {
    const s = source(i, world);
    const doc = mustValidate(s.doc, `differential policy ${i} (${s.kind})`);
    const compiled = compilePolicy(doc);
    const ability = compileAbility(doc);
    const count = Math.min(PER_POLICY, DIFFERENTIAL_CASES - cases);
    for (let k = 0; k < count; k++) {
      const c = s.next();
      const d = decide(compiled, c.principal, c.action, c.context, s.org);
      const viaCasl = caslLevel(ability, toFacts(c.principal, c.action, c.context, s.org));
      cases++;
      if (viaCasl !== d.level) {
        caslMismatches++;
        if (examples.length < 5) examples.push({ against: 'casl', policy: i, kind: s.kind, case: c, decide: d.level, casl: viaCasl });
      }
      if (refNs < refBudget) {
        const t0 = process.hrtime.bigint();
        const ref = referenceDecide(doc, { ...c.context, at: c.context.at as Date, userId: c.principal.userId, groups: c.principal.groupIds, email: c.principal.email, action: c.action, orgDomains: s.org.domains });
        refNs += process.hrtime.bigint() - t0;
        refCases++;
        if (ref.level !== d.level || ref.ruleIds.join() !== d.ruleIds.join()) {
          refMismatches++;
          if (examples.length < 5) examples.push({ against: 'reference', policy: i, kind: s.kind, case: c, decide: [d.level, d.ruleIds], reference: [ref.level, ref.ruleIds] });
        }
      }
    }
    if (i % 50 === 49) log(`differential: ${cases} cases (${refCases} with the reference) in ${((performance.now() - started) / 1000).toFixed(0)} s; mismatches casl ${caslMismatches}, reference ${refMismatches}`);
  }
  log(`differential: done, ${cases} cases in ${((performance.now() - started) / 1000).toFixed(0)} s (reference evaluator: ${refCases} cases in ${(Number(refNs) / 1e9).toFixed(0)} s)`);
  print('differential_cases', cases);
  print('differential_casl_mismatches', caslMismatches);
  print('differential_reference_cases', refCases);
  print('differential_reference_mismatches', refMismatches);
  if (caslMismatches || refMismatches) fail(`differential mismatches, first ones: ${JSON.stringify(examples).slice(0, 5000)}`);
}

async function main(): Promise<void> {
  log(`policy bench: node ${process.version}, pid ${process.pid}`);
  const world = realisticWorld(1);
  await fiftyRules(world);
  gc();
  const compiled500 = fiveHundredRules(world);
  gc();
  labelAndDecide(world, compiled500);
  gc();
  differential(world);
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  log(`FAIL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
});
