/**
 * Benchmark of the audit trail (libs/audit), `npm run bench:audit`. Not a test: it prints one
 * JSON object per line on stdout — {"measure": NAME, "value": NUMBER} — and nothing else there
 * (progress goes to stderr). Everything runs in one run against the same PostgreSQL (the one of
 * the tests: TEST_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres), in a fresh
 * database of its own (migrated, runtime role steward_app), dropped at the end.
 *
 *   raw_insert_rows_per_sec      300,000 events inserted by multi-row INSERTs (500 rows a
 *                                statement, one connection): the baseline
 *   seal_events_per_sec          one org's sequencer working through that backlog of 300,000
 *                                unsealed events while writer threads keep recording for the
 *                                same org at full speed, one event per transaction
 *   seal_vs_raw_insert           the ratio of the two (goal ≥ 0.7)
 *   writer_events_per_sec        what the writers recorded meanwhile
 *   sealing_lag_p99_ms           commit → sealed, per event, writers at full speed, no backlog,
 *                                sealing by the worker's own maintenance loop (goal ≤ 500)
 *   verify_1m_events_s           verifyOrg() over 1,000,000 sealed events from the database
 *                                (goal ≤ 15)
 *   export_ndjson_vs_copy        time of COPY (the same rows) TO STDOUT ÷ time of the NDJSON
 *                                export of 1,000,000 events (goal ≥ 0.5)
 *   export_ocsf_events_per_sec   OCSF export of the same events (goal ≥ 50,000)
 *   export_rss_growth_mb_1m      peak RSS growth during the 1,000,000-event NDJSON export (goal < 100)
 *   purge_month_s                one retention run — two orgs with different retention (3 and 6
 *                                months), a month past both with 1% of its events under a legal
 *                                hold (re-sealed under the hold key) and an older month whose
 *                                partition is detached and dropped — with appenders running
 *                                (goal ≤ 1)
 *   purge_failed_appends         appends that failed during the purge (must be 0)
 *
 * Knobs (environment, for quick local runs only): BENCH_AUDIT_SCALE (default 1) scales every
 * event count; BENCH_AUDIT_PHASES (default "seal,lag,verify,purge") runs some parts only;
 * BENCH_KEEP_DB=1 keeps the database afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { Client } from 'pg';
import { createBenchDatabase, out, percentile, sleep } from './bench-db';
import { to as copyTo } from 'pg-copy-streams';
import { newId, createLogger } from '@steward/common';
import { type DataSource, inOrg } from '@steward/db';
import {
  AuditKeyring,
  canonical,
  dropExpiredPartitions,
  Ed25519Signer,
  exportText,
  FileSink,
  monthOf,
  purgeOrg,
  sealOrg,
  startAuditMaintenance,
  toCanonicalEvent,
  type PageFormat,
  type SubjectKey,
  verifyOrg,
} from '@steward/audit';
import { ConfigKeyProvider } from '@steward/vault';

const SCALE = Number(process.env.BENCH_AUDIT_SCALE ?? 1);
/** Which parts to run (for quick local runs): seal, lag, verify (with the exports), purge. */
const PHASES = new Set((process.env.BENCH_AUDIT_PHASES ?? 'seal,lag,verify,purge').split(','));
const n = (count: number) => Math.max(1000, Math.round(count * SCALE));
const BACKLOG = n(300_000);
const VERIFY_EVENTS = n(1_000_000);
const PURGE_MONTH_EVENTS = n(100_000);
const LAG_SECONDS = 15;
const WRITER_THREADS = 2;
const WRITER_CONNECTIONS = 4;

const MASTER_KEY = `v1:${randomBytes(32).toString('base64')}`;
const keyring = new AuditKeyring(new ConfigKeyProvider(MASTER_KEY));

const log = (msg: string) => process.stderr.write(`bench:audit ${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

// ---------------------------------------------------------------------------------------------
// Events as the product records them: agent actions with their sealed fields, admin operations.

const ACTIONS = [
  { action: 'file.read', level: 'autonomous', decision: 'allowed', connector: 'workspace', sensitive: (i: number) => ({ path: `finance/receipts/2026-10/receipt-${i}.pdf` }) },
  { action: 'drive.read', level: 'autonomous', decision: 'allowed', connector: 'google-drive', sensitive: (i: number) => ({ query: `IR transcript Q${i % 4} FY2025` }) },
  { action: 'email.draft', level: 'batched', decision: 'allowed', connector: 'gmail', sensitive: (i: number) => ({ recipients: [`analyst${i % 50}@investor.example`], subject: 'Analyst call follow-up' }) },
  { action: 'email.send', level: 'watched', decision: 'approved', connector: 'gmail', sensitive: (i: number) => ({ recipients: [`cfo${i % 7}@acme.example`], subject: 'Rolling forecast' }) },
  { action: 'web.read', level: 'autonomous', decision: 'allowed', connector: 'web', sensitive: (i: number) => ({ url: `https://news.example/markets/${i}` }) },
  { action: 'member.update', level: null, decision: null, connector: null, sensitive: null },
] as const;

interface Row {
  id: string;
  at: Date;
  canonical: string;
}

/**
 * One event. With `forUser`, as the product records work done for a person: an agent action's
 * actor is its task and its fields are sealed under that person's own key (`subjectKey`, the
 * subject named in the event); an admin operation's actor is the person.
 */
function makeRow(orgId: string, at: Date, key: Buffer, i: number, forUser: { id: string; key: SubjectKey } | null = null): Row {
  const a = ACTIONS[i % ACTIONS.length];
  const id = newId();
  const fields = a.sensitive?.(i);
  let sealed;
  let blind: string[] | undefined;
  if (fields) {
    const month = monthOf(at);
    sealed = forUser ? { month, subject: forUser.id, gen: forUser.key.gen, ct: keyring.seal(forUser.key.key, id, fields) } : { month, ct: keyring.seal(key, id, fields) };
    blind = Object.entries(fields).flatMap(([f, v]) => (Array.isArray(v) ? v : [v]).map((x) => keyring.blind(key, f, x)));
  }
  const e = toCanonicalEvent(
    {
      id,
      orgId,
      occurredAt: at,
      actor: a.decision ? { type: 'agent_task', id: forUser ? newId() : null } : { type: 'user', id: forUser?.id ?? null },
      action: a.action,
      target: a.decision ? null : { type: 'Member', id: newId() },
      level: a.level,
      decision: a.decision,
      outcome: 'success',
      policyVersion: a.decision ? 3 : null,
      task: a.decision ? newId() : null,
      connector: a.connector,
      client: a.decision ? 'worker' : 'console',
      sourceIp: a.decision ? null : '203.0.113.10',
      requestId: newId(),
      payload: a.decision ? { tool: `${a.connector}.${a.action.split('.')[1]}`, bytes: 400 + (i % 5000), ms: 20 + (i % 300) } : { changes: ['role'], role: 'analyst' },
    },
    sealed,
    blind,
  );
  return { id, at, canonical: canonical(e) };
}

async function monthKey(ds: DataSource, orgId: string, month: string): Promise<Buffer> {
  return (await inOrg(ds, { orgId }, (em) => keyring.key(em, orgId, month, true)))!;
}

async function insertRows(ds: DataSource, orgId: string, rows: Row[]): Promise<void> {
  const params: unknown[] = [];
  const values = rows.map((r, i) => {
    params.push(r.id, orgId, r.at, r.canonical);
    return `($${4 * i + 1}, $${4 * i + 2}, $${4 * i + 3}, $${4 * i + 4})`;
  });
  await inOrg(ds, { orgId }, (em) => em.query(`INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES ${values.join(', ')}`, params));
}

/**
 * Generates `count` events at times from `at` (one per `stepMs`), done for the person `forUserOf`
 * names (see makeRow), and inserts them, 500 rows a statement. Returns the seconds spent inserting.
 */
async function load(ds: DataSource, orgId: string, count: number, at: Date, stepMs: number, forUserOf: (i: number) => string | null = () => null): Promise<number> {
  const month = monthOf(at);
  const key = await monthKey(ds, orgId, month);
  const userKeys = new Map<string, SubjectKey>();
  let insertSeconds = 0;
  for (let done = 0; done < count; ) {
    const rows: Row[] = [];
    for (let i = 0; i < 500 && done + i < count; i++) {
      const user = forUserOf(done + i);
      let forUser = null;
      if (user) {
        let k = userKeys.get(user);
        if (!k) userKeys.set(user, (k = await inOrg(ds, { orgId }, (em) => keyring.subjectKey(em, orgId, month, user))));
        forUser = { id: user, key: k };
      }
      rows.push(makeRow(orgId, new Date(at.getTime() + (done + i) * stepMs), key, done + i, forUser));
    }
    const t0 = process.hrtime.bigint();
    await insertRows(ds, orgId, rows);
    insertSeconds += seconds(t0);
    done += rows.length;
  }
  return insertSeconds;
}

async function newOrg(ds: DataSource, name: string, retentionMonths = 6): Promise<string> {
  const id = newId();
  await inOrg(ds, { orgId: id }, (em) =>
    em.query(`INSERT INTO orgs (id, name, slug, domains, audit_retention_months) VALUES ($1, $2, $3, $4, $5)`, [id, name, `${name.toLowerCase()}-${id.slice(-6)}`, ['acme.example'], retentionMonths]),
  );
  return id;
}

// ---------------------------------------------------------------------------------------------
// Writer threads.

interface Writers {
  stop(): Promise<{ ok: number; failed: number; firstError: string | null }>;
}

function startWriters(url: string, orgIds: string[], onCommitted?: (items: [string, number][]) => void): Writers {
  const workers = Array.from(
    { length: WRITER_THREADS },
    () =>
      new Worker(`require(${JSON.stringify(join(__dirname, 'audit-writer.ts'))})`, {
        eval: true,
        workerData: { url, orgIds, masterKey: MASTER_KEY, connections: WRITER_CONNECTIONS, report: !!onCommitted },
      }),
  );
  const done = workers.map(
    (w) =>
      new Promise<{ ok: number; failed: number; firstError: string | null }>((resolve, reject) => {
        w.on('message', (m) => {
          if (m.type === 'committed') onCommitted?.(m.items);
          if (m.type === 'done') resolve(m);
        });
        w.on('error', reject);
      }),
  );
  return {
    async stop() {
      for (const w of workers) w.postMessage('stop');
      const results = await Promise.all(done);
      await Promise.all(workers.map((w) => w.terminate()));
      return {
        ok: results.reduce((s, r) => s + r.ok, 0),
        failed: results.reduce((s, r) => s + Math.max(0, r.failed), 0) + (results.some((r) => r.failed < 0) ? 1 : 0),
        firstError: results.find((r) => r.firstError)?.firstError ?? null,
      };
    },
  };
}

const p99 = (values: number[]) => percentile(values, 0.99);

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const bench = await createBenchDatabase('audit');
  const { ds, owner, appUrl, name: dbName } = bench;
  let failed = false;
  try {
    const pg = await ds.query(`SELECT current_setting('server_version') AS v`);
    log(`database ${dbName} (PostgreSQL ${pg[0].v}), scale ${SCALE}`);

    // 1. seal_vs_raw_insert ------------------------------------------------------------------
    if (PHASES.has('seal')) {
      const p = await newOrg(ds, 'Backlog');
      log(`loading a backlog of ${BACKLOG} events (multi-row INSERT, 500 a statement)`);
      const rawSeconds = await load(ds, p, BACKLOG, new Date(), 1);
      const rawRate = BACKLOG / rawSeconds;
      log(`sealing the backlog while ${WRITER_THREADS}×${WRITER_CONNECTIONS} writers record for the same org`);
      const writers = startWriters(appUrl, [p]);
      await sleep(1000); // writers up to speed
      let sealedBacklog = 0;
      const t0 = process.hrtime.bigint();
      while (sealedBacklog < BACKLOG) {
        const r = await sealOrg(ds, p, { holder: 'bench', batchSize: 5000, maxBatches: 1 });
        sealedBacklog += r.sealed;
      }
      const sealSeconds = seconds(t0);
      const w1 = await writers.stop();
      if (w1.failed) throw new Error(`writers failed: ${w1.firstError}`);
      const sealRate = sealedBacklog / sealSeconds;
      out('raw_insert_rows_per_sec', rawRate);
      out('seal_events_per_sec', sealRate);
      out('writer_events_per_sec', w1.ok / (sealSeconds + 1));
      out('seal_vs_raw_insert', sealRate / rawRate);
      while ((await sealOrg(ds, p, { holder: 'bench', batchSize: 5000 })).sealed > 0);
    }

    // 2. sealing_lag_p99_ms ------------------------------------------------------------------
    if (PHASES.has('lag')) {
      const l = await newOrg(ds, 'Lag');
      const committed = new Map<string, number>();
      const lags: number[] = [];
      const maintenance = startAuditMaintenance({
        dataSource: ds,
        signer: new Ed25519Signer(randomBytes(32).toString('base64')),
        sink: new FileSink(join(mkdtempSync(join(tmpdir(), 'steward-bench-')), 'checkpoints.jsonl')),
        log: createLogger({ level: 'warn' }),
        sealEveryMs: 200, // the configuration default (AUDIT_SEAL_INTERVAL_MS)
        checkpointEverySeconds: 300,
        keyring,
        purgeEveryHours: 1e6,
        onSealed: (_org, ids) => {
          const now = Date.now();
          for (const id of ids) {
            const c = committed.get(id);
            if (c !== undefined) {
              lags.push(now - c);
              committed.delete(id);
            } else committed.set(id, -now); // sealed before its commit time arrived from the writer thread
          }
        },
      });
      log(`lag: writers at full speed for ${LAG_SECONDS} s, sealing by the maintenance loop`);
      const lagWriters = startWriters(appUrl, [l], (items) => {
        for (const [id, t] of items) {
          const s = committed.get(id);
          if (s !== undefined && s < 0) {
            lags.push(-s - t);
            committed.delete(id);
          } else committed.set(id, t);
        }
      });
      await sleep(LAG_SECONDS * 1000);
      const w2 = await lagWriters.stop();
      if (w2.failed) throw new Error(`writers failed: ${w2.firstError}`);
      for (let i = 0; i < 50 && lags.length < w2.ok; i++) await sleep(100);
      await maintenance.stop();
      if (lags.length < w2.ok) throw new Error(`only ${lags.length} of ${w2.ok} events were seen sealed`);
      out('sealing_lag_events', lags.length);
      out('sealing_lag_p50_ms', lags.sort((a, b) => a - b)[Math.floor(lags.length / 2)]);
      out('sealing_lag_p99_ms', p99(lags));
    }

    // 3. verify_1m_events_s, and 4. the exports of the same events -----------------------------
    if (PHASES.has('verify')) {
      const v = await newOrg(ds, 'Verify');
      log(`loading ${VERIFY_EVENTS} events`);
      const start = new Date(Date.now() - VERIFY_EVENTS * 2); // all in the current month
      await load(ds, v, VERIFY_EVENTS, start.getUTCMonth() === new Date().getUTCMonth() ? start : new Date(), 1);
      log('sealing them');
      const ts = process.hrtime.bigint();
      while ((await sealOrg(ds, v, { holder: 'bench', batchSize: 5000 })).sealed > 0);
      log(`sealed ${VERIFY_EVENTS} in ${seconds(ts).toFixed(1)} s (no concurrent writers)`);
      const tv = process.hrtime.bigint();
      const verified = await verifyOrg(ds, v, null);
      const verifySeconds = seconds(tv);
      if (!verified.ok || verified.checked !== VERIFY_EVENTS) throw new Error(`verify failed: ${JSON.stringify(verified)}`);
      out('verify_1m_events_s', (verifySeconds * 1_000_000) / VERIFY_EVENTS);

      // 4. exports -----------------------------------------------------------------------------
      const copyClient = new Client({ connectionString: appUrl });
      await copyClient.connect();
      await copyClient.query(`SELECT set_config('app.org_id', $1, false), set_config('enable_seqscan', 'off', false), set_config('enable_hashjoin', 'off', false)`, [v]);
      let copyBytes = 0;
      const tc = process.hrtime.bigint();
      await pipeline(
        copyClient.query(
          copyTo(`COPY (SELECT c.seq, c.hash, e.canonical FROM audit_chain c
                          JOIN LATERAL (SELECT ev.canonical FROM audit_events ev
                                         WHERE ev.org_id = c.org_id AND ev.occurred_at = c.occurred_at AND ev.id = c.event_id) e ON true
                         WHERE c.org_id = '${v}' ORDER BY c.seq) TO STDOUT`),
        ),
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            copyBytes += chunk.length;
            cb();
          },
        }),
      );
      const copySeconds = seconds(tc);
      await copyClient.end();
      log(`COPY TO STDOUT: ${VERIFY_EVENTS} rows, ${(copyBytes / 1e6).toFixed(0)} MB in ${copySeconds.toFixed(1)} s`);

      const sink = () =>
        new Writable({
          highWaterMark: 1 << 16,
          write(_chunk, _enc, cb) {
            cb();
          },
        });
      const exportTo = async (format: PageFormat, sampleRss: boolean) => {
        const target = sink();
        global.gc?.();
        const base = process.memoryUsage().rss;
        let peak = base;
        const sampler = sampleRss ? setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50) : null;
        let count = 0;
        const t = process.hrtime.bigint();
        // As the API streams an export: text chunks of thousands of lines written with backpressure.
        for await (const text of exportText(ds, v, 1, VERIFY_EVENTS, format, 'bench')) {
          for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) count++;
          if (!target.write(text)) await new Promise((r) => target.once('drain', r));
        }
        const s = seconds(t);
        if (sampler) clearInterval(sampler);
        peak = Math.max(peak, process.memoryUsage().rss);
        if (count !== VERIFY_EVENTS) throw new Error(`export produced ${count} lines`);
        return { seconds: s, rssGrowthMb: (peak - base) / (1 << 20) };
      };
      const nd = await exportTo('ndjson', true);
      log(`NDJSON export: ${VERIFY_EVENTS} events in ${nd.seconds.toFixed(1)} s`);
      out('export_ndjson_events_per_sec', VERIFY_EVENTS / nd.seconds);
      out('export_ndjson_vs_copy', copySeconds / nd.seconds);
      out('export_rss_growth_mb_1m', nd.rssGrowthMb);
      const oc = await exportTo('ocsf', false);
      out('export_ocsf_events_per_sec', VERIFY_EVENTS / oc.seconds);
    }

    // 5. purge_month_s -----------------------------------------------------------------------
    if (PHASES.has('purge')) {
      const a = await newOrg(ds, 'RetainThree', 3);
      const b = await newOrg(ds, 'RetainSix', 6);
      const now = new Date();
      const monthBack = (k: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - k, 1));
      const m1 = monthBack(7); // past both retentions; a hold on one user of org A covers it
      const m2 = monthBack(8); // past both, no hold: its partition is dropped
      await owner.query(`SELECT steward_audit_ensure_partitions($1::date, 2)`, [monthOf(m2)]);
      const held = newId();
      const others = Array.from({ length: 99 }, () => newId());
      log(`loading ${PURGE_MONTH_EVENTS} events in each of two old months for each of two orgs`);
      for (const org of [a, b]) {
        await load(ds, org, PURGE_MONTH_EVENTS, m1, 10, (i) => (org === a && i % 100 === 0 ? held : others[i % 99]));
        await load(ds, org, PURGE_MONTH_EVENTS, m2, 10, (i) => others[i % 99]);
      }
      await inOrg(ds, { orgId: a }, (em) =>
        em.query(`INSERT INTO legal_holds (id, org_id, user_id, from_at, until_at, reason, created_by) VALUES ($1, $2, $3, $4, $5, 'Litigation: vendor dispute', $6)`, [
          newId(),
          a,
          held,
          m1,
          monthBack(6),
          others[0],
        ]),
      );
      for (const org of [a, b]) while ((await sealOrg(ds, org, { holder: 'bench', batchSize: 5000 })).sealed > 0);
      // A month past retention was analysed by autovacuum months ago; these were loaded a moment ago.
      await owner.query(`ANALYZE audit_events`);
      log('retention run with appenders on both orgs');
      const appenders = startWriters(appUrl, [a, b]);
      await sleep(1000);
      const tp = process.hrtime.bigint();
      const purgedA = await purgeOrg(ds, keyring, a);
      const tA = seconds(tp);
      const purgedB = await purgeOrg(ds, keyring, b);
      const tB = seconds(tp);
      const dropped = await dropExpiredPartitions(ds, owner, keyring);
      const purgeSeconds = seconds(tp);
      log(`purge steps: org A (hold) ${tA.toFixed(3)} s, org B ${(tB - tA).toFixed(3)} s, partition drop ${(purgeSeconds - tB).toFixed(3)} s`);
      await sleep(500);
      const w3 = await appenders.stop();
      log(`purge: A ${JSON.stringify(purgedA.destroyedMonths)} held ${purgedA.heldEvents}, B ${JSON.stringify(purgedB.destroyedMonths)}, dropped ${dropped.map((d) => d.partition).join(', ')}; ${w3.ok} appends meanwhile`);
      if (purgedA.heldEvents !== PURGE_MONTH_EVENTS / 100 || !dropped.some((d) => d.month === monthOf(m2)) || !purgedB.destroyedMonths.includes(monthOf(m1))) {
        throw new Error('the retention run did not do what the benchmark set up');
      }
      out('purge_month_s', purgeSeconds);
      out('purge_failed_appends', w3.failed);
      if (w3.failed) log(`first failed append: ${w3.firstError}`);
      for (const org of [a, b]) {
        while ((await sealOrg(ds, org, { holder: 'bench', batchSize: 5000 })).sealed > 0);
        const r = await verifyOrg(ds, org, null);
        if (!r.ok) throw new Error(`verify after purge failed for ${org}: ${JSON.stringify(r)}`);
      }
    }
  } catch (err) {
    failed = true;
    log(`failed: ${(err as Error).stack ?? err}`);
  } finally {
    await bench.drop();
  }
  process.exit(failed ? 1 : 0);
}

void main();
