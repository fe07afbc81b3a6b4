/**
 * npm run bench:oversight — the anomaly report and the policy replay on a generated org of 500
 * people over 180 days: 5,000,000 audit events at scale 1 (BENCH_OVERSIGHT_SCALE=0.1 for half a
 * million, to try it). Prints JSON lines:
 *   oversight_events                 events generated (gate decisions and approvals)
 *   oversight_generate_events_per_s  generation and insert rate (multi-row INSERT through RLS)
 *   anomaly_report_5m_events_s       one monthly report: the period against 180 days of history (goal ≤ 30)
 *   anomaly_report_findings          findings of that report (planted anomalies included)
 *   replay_180d_5m_events_s          a draft replayed over the 180 days (goal ≤ 60)
 *   replay_decisions                 decisions replayed
 * A database of its own, dropped at the end (BENCH_KEEP_DB=1 keeps it).
 */
import { createBenchDatabase, out } from './bench-db';
import { inOrg } from '@steward/db';
import { buildAnomalyReport, monthStart, replayPolicy, writeGeneratedOrg } from '@steward/oversight';

const SCALE = Number(process.env.BENCH_OVERSIGHT_SCALE ?? '1');
const TZ = 'Europe/Berlin';
/** Actions per person on a working day for 5M events over 180 days (measured: 64.7 a day gave 4.63M events). */
const PER_DAY = ((64.7 * 5_000_000) / 4_630_000) * SCALE;
const log = (m: string) => process.stderr.write(`bench:oversight ${m}\n`);
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

async function main(): Promise<void> {
  if (!(SCALE > 0)) throw new Error('BENCH_OVERSIGHT_SCALE must be a positive number');
  const bench = await createBenchDatabase('oversight', 4);
  try {
    const end = monthStart(TZ, new Date());
    log(`generating 500 people × 180 days at ${PER_DAY.toFixed(1)} actions a working day (scale ${SCALE})`);
    let t0 = process.hrtime.bigint();
    const org = await writeGeneratedOrg(bench.ds, { seed: 2026, end, timeZone: TZ, eventsPerUserDay: PER_DAY, plant: true });
    const genSeconds = seconds(t0);
    out('oversight_events', org.events);
    out('oversight_generate_events_per_s', org.events / genSeconds);
    log(`${org.events} events, ${org.tasks} tasks in ${genSeconds.toFixed(1)} s; analysing`);
    // What autovacuum does to an append-only table after a load (statistics, the visibility map for index-only scans).
    await bench.owner.query('VACUUM (ANALYZE) audit_events');
    await bench.owner.query('VACUUM (ANALYZE) tasks');
    await bench.owner.query('VACUUM (ANALYZE) approvals');
    await bench.owner.query('VACUUM (ANALYZE) approval_votes');

    t0 = process.hrtime.bigint();
    const report = await inOrg(bench.ds, { orgId: org.orgId }, (em) => buildAnomalyReport(em, { orgId: org.orgId, from: org.periodStart, to: org.end, timeZone: TZ }));
    out('anomaly_report_5m_events_s', seconds(t0));
    out('anomaly_report_findings', report.findings.length);
    const missed = org.planted.filter((p) => !report.findings.some((f) => f.kind === p.kind && (f.subject.id === p.subject || f.subject.id === p.connector)));
    if (missed.length) log(`planted anomalies not found at this scale: ${missed.map((m) => m.kind).join(', ')}`);

    t0 = process.hrtime.bigint();
    const replay = await replayPolicy(bench.ds, { orgId: org.orgId, policy: org.draft, now: org.end, days: 181 });
    out('replay_180d_5m_events_s', seconds(t0));
    out('replay_decisions', replay.replayed);
    if (replay.changed !== org.predictedChanges.length) log(`replay changed ${replay.changed}, the generator predicted ${org.predictedChanges.length}`);
  } finally {
    await bench.drop();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
