import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import request from 'supertest';
import { createLogger, type EgressResolver, newId, parseConfig, type Config } from '@steward/common';
import { createDataSource, type DataSource, inOrg, Membership, Org, RoleAssignment, User } from '@steward/db';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-db';
import { redisUrl } from '../../../../test/support/db-urls';
import { createApp } from '../../src/create-app';
import { ApiMetrics } from '../../src/core/metrics';
import type { TxtResolver } from '../../src/core/tokens';
import { API_REDIS_OPTIONS } from '../../src/core/redis';
import { hashPassword } from '../../src/auth/passwords';
import { provisionPolicy } from '../../src/policies/provision';

export const PASSWORD = 'correct horse battery staple';
export const ROLES = ['owner', 'admin', 'security', 'auditor', 'approver', 'member'] as const;
export type RoleKey = (typeof ROLES)[number];

let passwordHash: Promise<string> | undefined;

export interface Harness {
  app: INestApplication;
  http: ReturnType<typeof request>;
  ds: DataSource;
  db: TestDatabase;
  redis: Redis;
  config: Config;
  /** Everything the API logged, as text. */
  logs(): string;
  /** Runs `fn` when the harness closes (fakes started for this harness). */
  onClose(fn: () => Promise<void>): void;
  close(): Promise<void>;
}

export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const run = randomBytes(4).toString('hex');
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: 'postgres://unused@127.0.0.1/unused',
    STEWARD_TOKEN_PEPPER: 'test-pepper-0123456789abcdef0123456789abcdef',
    STEWARD_MASTER_KEY: `v1:${Buffer.alloc(32, 7).toString('base64')}`,
    STEWARD_AUDIT_SIGNING_KEY: Buffer.alloc(32, 9).toString('base64'),
    REDIS_URL: redisUrl(),
    REDIS_PREFIX: `steward-test-${run}`,
    // Checkpoints pushed by tests go to a temporary file, never into the work tree.
    AUDIT_CHECKPOINT_FILE: join(tmpdir(), `steward-test-${process.pid}`, 'audit-checkpoints.jsonl'),
    // Workspaces (reviews revert files there) live in a temporary folder, never in the work tree.
    STEWARD_DATA_DIR: join(tmpdir(), `steward-test-${process.pid}`, `data-${run}`),
    RATE_LIMIT_PER_MINUTE: '100000',
    AUTH_RATE_LIMIT_PER_MINUTE: '100000',
    // The operator of these tests lets an org's allowlist open loopback, where the fakes listen.
    STEWARD_EGRESS_ORG_RANGES: '127.0.0.0/8,::1',
    ...overrides,
  };
}

/** The real app on a database and Redis prefix of this test file's own. */
export async function startHarness(options: { db?: TestDatabase; env?: Record<string, string>; resolver?: EgressResolver; txtResolver?: TxtResolver } = {}): Promise<Harness> {
  const db = options.db ?? (await createTestDatabase());
  const config = parseConfig(testEnv({ DATABASE_URL: db.appUrl, ...options.env }));
  let captured = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      captured += chunk.toString();
      done();
    },
  });
  const log = createLogger({ level: config.LOG_LEVEL, name: 'steward-api', destination: sink });
  const ds = createDataSource({ url: db.appUrl, poolMax: 8 });
  await ds.initialize();
  const redis = new Redis(config.REDIS_URL, API_REDIS_OPTIONS);
  await redis.connect();
  const app = await createApp({ config, log, dataSource: ds, redis, metrics: new ApiMetrics(), resolver: options.resolver, txtResolver: options.txtResolver });
  const closers: (() => Promise<void>)[] = [];
  const server = app.getHttpServer();
  return {
    app,
    http: request(server),
    ds,
    db,
    redis,
    config,
    logs: () => captured,
    onClose: (fn) => closers.push(fn),
    async close() {
      await app.close();
      for (const fn of closers) await fn().catch(() => undefined);
      const keys = await redis.keys(`${config.REDIS_PREFIX}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      await ds.destroy();
      if (config.STEWARD_DATA_DIR.startsWith(tmpdir())) rmSync(config.STEWARD_DATA_DIR, { recursive: true, force: true });
      if (!options.db) await db.drop();
    },
  };
}

export interface SeededUser {
  id: string;
  email: string;
  role: RoleKey;
}

export interface SeededOrg {
  id: string;
  slug: string;
  users: Record<RoleKey, SeededUser>;
}

/** An org with one active member per built-in role, written through the runtime role with RLS set. */
export async function seedOrg(ds: DataSource, slug: string): Promise<SeededOrg> {
  passwordHash ??= hashPassword(PASSWORD);
  const hash = await passwordHash;
  const orgId = newId();
  const users = {} as Record<RoleKey, SeededUser>;
  for (const role of ROLES) {
    const user = { id: newId(), email: `${role}@${slug}.example`, role };
    users[role] = user;
    await inOrg(ds, { orgId, userId: user.id }, async (em) => {
      if (role === 'owner') {
        await em.insert(Org, { id: orgId, name: `${slug} Inc`, slug, domains: [`${slug}.example`], requireStepUp: false });
        // Its mail domain is its own (as if its DNS record had been checked).
        await em.query(`INSERT INTO verified_domains (domain, org_id, method) VALUES ($1, $2, 'dns')`, [`${slug}.example`, orgId]);
      }
      await em.insert(User, { id: user.id, email: user.email, name: `${role} of ${slug}`, passwordHash: hash, totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
      await em.insert(Membership, { id: newId(), orgId, userId: user.id, status: 'active', suspendedAt: null, suspendedReason: null });
      await em.insert(RoleAssignment, { id: newId(), orgId, userId: user.id, role, customRoleId: null });
      if (role === 'owner') await provisionPolicy(em, orgId, user.id);
    });
  }
  return { id: orgId, slug, users };
}

/** One more member with a role, for tests that change or end their user. */
export async function addUser(ds: DataSource, org: SeededOrg, role: RoleKey, label = randomBytes(3).toString('hex')): Promise<SeededUser> {
  passwordHash ??= hashPassword(PASSWORD);
  const user = { id: newId(), email: `${role}-${label}@${org.slug}.example`, role };
  await inOrg(ds, { orgId: org.id, userId: user.id }, async (em) => {
    await em.insert(User, { id: user.id, email: user.email, name: `${role} ${label}`, passwordHash: await passwordHash!, totpSecretSealed: null, totpEnabledAt: null, totpLastStep: null });
    await em.insert(Membership, { id: newId(), orgId: org.id, userId: user.id, status: 'active', suspendedAt: null, suspendedReason: null });
    await em.insert(RoleAssignment, { id: newId(), orgId: org.id, userId: user.id, role, customRoleId: null });
  });
  return user;
}

/** Signs in through the API and returns the session cookie. */
export async function login(h: Harness, email: string, extra: Record<string, string> = {}): Promise<string> {
  const res = await h.http.post('/v1/auth/login').send({ email, password: PASSWORD, ...extra });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0];
  return cookie.split(';')[0];
}

/** Row counts and a digest of every tenant table for one org, seen through RLS. */
export async function orgSnapshot(ds: DataSource, orgId: string): Promise<Record<string, string>> {
  const tables = ['orgs', 'memberships', 'roles', 'role_assignments', 'groups', 'group_members', 'invitations', 'api_keys', 'sessions', 'audit_events', 'policies', 'workflows', 'tasks', 'task_actions', 'approvals', 'approval_votes', 'violations'];
  return inOrg(ds, { orgId }, async (em) => {
    const out: Record<string, string> = {};
    for (const t of tables) {
      const [row] = await em.query(`SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest FROM "${t}" t`);
      out[t] = `${row.n}:${row.digest}`;
    }
    return out;
  });
}
