import { newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-db';
import { acquireLease, insertTask, releaseLease, releaseParked } from './task-store';

/**
 * An org's limit on tasks running at once, on real PostgreSQL: a task over it is parked (no job),
 * every task in `running` counts whatever its lease says, parked tasks are released oldest first as
 * places free, a task not yet parked waits behind parked ones, and a parked task that was cancelled
 * no longer waits.
 */
describe('tasks running at once per org', () => {
  let db: TestDatabase;
  let ds: DataSource;
  const keys = new ConfigKeyProvider(`v1:${Buffer.alloc(32, 5).toString('base64')}`);
  const orgId = newId();
  const other = newId();
  const userId = newId();

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    await ds.initialize();
    for (const id of [orgId, other]) await inOrg(ds, { orgId: id }, (em) => em.query(`INSERT INTO orgs (id, name, slug, domains, max_running_tasks) VALUES ($1, 'Acme', $2, '{acme.example}', $3)`, [id, `acme-${id.slice(-8)}`, id === orgId ? 1 : null]));
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  const newTask = async (org = orgId) =>
    (await inOrg(ds, { orgId: org, userId }, (em) => insertTask(em, keys, { orgId: org, userId, prompt: 'Reconcile the ledger', workflow: null, connectors: [], modelPreference: null, maxSteps: 5, budgetMicros: 500_000 }))).id;
  const row = (id: string, org = orgId) =>
    inOrg(ds, { orgId: org }, async (em) => (await em.query(`SELECT state, epoch, parked, parked_since IS NOT NULL AS waited, (SELECT count(*)::int FROM outbox o WHERE o.org_id = $1 AND o.job_id = $2::text || '-' || t.epoch) AS jobs FROM tasks t WHERE org_id = $1 AND id = $2::uuid`, [org, id]))[0]) as Promise<{ state: string; epoch: number; parked: boolean; waited: boolean; jobs: number }>;
  const take = async (id: string, holder: string, org = orgId, limit = 20) => acquireLease(ds, { orgId: org, taskId: id, epoch: (await row(id, org)).epoch }, holder, 30, { limit, keys });
  const setState = (id: string, state: string) => inOrg(ds, { orgId }, (em) => em.query(`UPDATE tasks SET state = $3, lease_holder = NULL, lease_until = NULL WHERE org_id = $1 AND id = $2`, [orgId, id, state]));

  it('parks what is over the limit, counts a running task whose lease lapsed, and releases the parked oldest first as places free', async () => {
    const a = await newTask();
    const b = await newTask();
    const c = await newTask();
    expect(await take(a, 'w1')).toEqual({ userId });
    expect(await take(b, 'w2')).toBe('busy');
    expect(await take(c, 'w2')).toBe('busy');
    expect(await row(b)).toMatchObject({ state: 'queued', parked: true, waited: true });
    // Nothing to release while A runs, even once its lease lapsed (a crashed worker's task holds its place until taken over).
    expect(await releaseParked(ds)).toBe(0);
    await releaseLease(ds, { orgId, taskId: a, epoch: (await row(a)).epoch, holder: 'w1', userId });
    expect(await releaseParked(ds)).toBe(0);
    // Taken over, A is not held back by the limit (it was counted already).
    expect(await take(a, 'w3')).toEqual({ userId });
    // A ends: one place, for B (parked first), with a job under a new epoch; C still waits.
    await setState(a, 'completed');
    expect(await releaseParked(ds)).toBe(1);
    const released = await row(b);
    expect(released).toMatchObject({ state: 'queued', parked: false, waited: true, jobs: 1 });
    expect(await row(c)).toMatchObject({ parked: true, epoch: 1 });
    // Released and not yet started, B holds the place: nothing more is released, and a new task parks behind C.
    expect(await releaseParked(ds)).toBe(0);
    const d = await newTask();
    expect(await take(d, 'w4')).toBe('busy');
    expect(await take(b, 'w2')).toEqual({ userId });
    expect(await row(b)).toMatchObject({ state: 'running', waited: false });
    // Another org's tasks are not held by this org's limit.
    const elsewhere = await newTask(other);
    expect(await take(elsewhere, 'w5', other)).toEqual({ userId });
  });

  it('a parked task that was cancelled no longer waits; the next one gets the place', async () => {
    const running: string[] = await inOrg(ds, { orgId }, async (em) => (await em.query(`SELECT id FROM tasks WHERE org_id = $1 AND state = 'running'`, [orgId])).map((r: { id: string }) => r.id));
    const parked: string[] = await inOrg(ds, { orgId }, async (em) => (await em.query(`SELECT id FROM tasks WHERE org_id = $1 AND parked ORDER BY parked_since, id`, [orgId])).map((r: { id: string }) => r.id));
    expect(parked).toHaveLength(2);
    await setState(parked[0]!, 'cancelled');
    for (const id of running) await setState(id, 'completed');
    expect(await releaseParked(ds)).toBe(1);
    expect(await row(parked[0]!)).toMatchObject({ state: 'cancelled', parked: false, epoch: 1 });
    expect(await row(parked[1]!)).toMatchObject({ state: 'queued', parked: false, jobs: 1 });
  });
});
