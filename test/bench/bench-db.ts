/**
 * What the database benchmarks share: a fresh database of their own on the test PostgreSQL
 * (TEST_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres), migrated by the owner
 * role, used through the runtime role steward_app as the product uses it, dropped at the end
 * (BENCH_KEEP_DB=1 keeps it for a look).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import { createDataSource, type DataSource, runMigrations } from '@steward/db';

export const adminUrl = process.env.TEST_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

export function urlFor(role: string, db: string): string {
  const u = new URL(adminUrl);
  u.username = role;
  u.password = '';
  u.pathname = `/${db}`;
  return u.toString();
}

export interface BenchDatabase {
  name: string;
  appUrl: string;
  ds: DataSource;
  owner: DataSource;
  drop(): Promise<void>;
}

export async function createBenchDatabase(prefix: string, poolMax = 6): Promise<BenchDatabase> {
  const name = `steward_bench_${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'steward_owner') THEN CREATE ROLE steward_owner LOGIN CREATEDB CREATEROLE NOSUPERUSER NOBYPASSRLS; END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'steward_app') THEN CREATE ROLE steward_app LOGIN NOSUPERUSER NOBYPASSRLS; END IF;
      END $$`);
    await admin.query(`CREATE DATABASE ${name} OWNER steward_owner`);
  } finally {
    await admin.end();
  }
  const owner = createDataSource({ url: urlFor('steward_owner', name), poolMax: 2, applicationName: 'bench-owner' });
  await owner.initialize();
  await runMigrations(owner);
  const appUrl = urlFor('steward_app', name);
  const ds = createDataSource({ url: appUrl, poolMax, applicationName: 'bench' });
  await ds.initialize();
  return {
    name,
    appUrl,
    ds,
    owner,
    async drop() {
      if (ds.isInitialized) await ds.destroy();
      if (owner.isInitialized) await owner.destroy();
      if (process.env.BENCH_KEEP_DB || process.env.BENCH_AUDIT_KEEP_DB) {
        process.stderr.write(`bench: kept database ${name}\n`);
        return;
      }
      const c = new Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export const out = (measure: string, value: number) => process.stdout.write(`${JSON.stringify({ measure, value: Number(value.toPrecision(6)) })}\n`);

/** The p-quantile of values, p a fraction in (0, 1] (0.99 for p99). */
export function percentile(values: number[], p: number): number {
  if (!(p > 0 && p <= 1)) throw new Error(`percentile: p must be a fraction in (0, 1], got ${p}`);
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * p) - 1))];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The whole machine's CPU time (every process: PostgreSQL, Redis, this one, its children), from
 * /proc/stat, for figures that say what a measure costs on this machine rather than how busy it was
 * (null where /proc/stat is missing). Busy = all but idle and iowait.
 */
export interface MachineCpu {
  busyMs: number;
  idleMs: number;
}

export function machineCpu(): MachineCpu | null {
  let line: string;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  } catch {
    return null;
  }
  // cpu  user nice system idle iowait irq softirq steal ... in clock ticks (USER_HZ, 100 a second on Linux)
  const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = t[3]! + t[4]!;
  const total = t.reduce((a, b) => a + b, 0);
  return { busyMs: (total - idle) * 10, idleMs: idle * 10 };
}

/** Machine CPU spent since `before`: busy milliseconds and the idle share of all cores (0..1). */
export function machineCpuSince(before: MachineCpu | null): { busyMs: number; idleShare: number } | null {
  const now = machineCpu();
  if (!before || !now) return null;
  const busyMs = now.busyMs - before.busyMs;
  const idleMs = now.idleMs - before.idleMs;
  return { busyMs, idleShare: idleMs / Math.max(1, busyMs + idleMs) };
}
