import { AuditKeyring, prepareEvent } from '@steward/audit';
import { newId } from '@steward/common';
import { createDataSource, type DataSource, type EntityManager, inOrg } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-db';
import { insertTask, type NewTask, openPrompt, TaskAccepter } from './task-store';

/**
 * Tasks accepted in batches (TaskAccepter over steward_task_accept_batch): each task with its
 * outbox row, first event and audit event, in its own org only; a task that cannot be written fails
 * alone, not the tasks batched with it; inside a caller's transaction the org and user set stay.
 */
describe('task acceptance in batches', () => {
  let db: TestDatabase;
  let ds: DataSource;
  const keys = new ConfigKeyProvider(`v1:${Buffer.alloc(32, 3).toString('base64')}`);
  const keyring = new AuditKeyring(keys);
  const orgs = [newId(), newId()];
  const users = [newId(), newId()];

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    await ds.initialize();
    for (const orgId of orgs) await inOrg(ds, { orgId }, (em) => em.query(`INSERT INTO orgs (id, name, slug, domains) VALUES ($1, 'Acme', $2, '{acme.example}')`, [orgId, `acme-${orgId.slice(-8)}`]));
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  const task = (i: number, orgId = orgs[i % 2]!, userId = users[i % 2]!): NewTask => ({ orgId, userId, prompt: `Summarise invoice batch ${i}`, workflow: null, connectors: ['workspace-files'], modelPreference: null, maxSteps: 5, budgetMicros: 500_000 });
  const audit = (t: NewTask) => (taskId: string) =>
    prepareEvent(null as unknown as EntityManager, keyring, { id: newId(), orgId: t.orgId, occurredAt: new Date(), actor: { type: 'user', id: t.userId }, action: 'task.create', target: { type: 'Task', id: taskId }, outcome: 'success', client: 'rest', payload: {} });

  it('accepts tasks sent together, each with its outbox row, first event and audit event, in its own org only', async () => {
    const accepter = new TaskAccepter(ds);
    const all = Array.from({ length: 30 }, (_, i) => task(i));
    const ids = (await Promise.all(all.map((t) => accepter.accept(keys, t, audit(t))))).map((r) => r.id);
    expect(new Set(ids).size).toBe(30);
    for (const [k, orgId] of orgs.entries()) {
      const mine = ids.filter((_, i) => i % 2 === k);
      const rows: { id: string; state: string; user_id: string; prompt_sealed: Buffer; prompt_key: string; jobs: number; events: string[]; audits: number }[] = await inOrg(ds, { orgId }, (em) =>
        em.query(
          `SELECT t.id, t.state, t.user_id, t.prompt_sealed, t.prompt_key,
                  (SELECT count(*)::int FROM outbox o WHERE o.org_id = t.org_id AND o.job_id = t.id || '-1') AS jobs,
                  ARRAY(SELECT e.data->>'state' FROM task_events e WHERE e.org_id = t.org_id AND e.task_id = t.id ORDER BY e.seq) AS events,
                  (SELECT count(*)::int FROM audit_events a WHERE a.org_id = t.org_id AND a.canonical::jsonb->>'action' = 'task.create' AND a.canonical::jsonb->'target'->>'id' = t.id::text) AS audits
             FROM tasks t ORDER BY t.id`,
        ),
      );
      // Row-level security: the other org's tasks are not there.
      expect(rows.map((r) => r.id).sort()).toEqual([...mine].sort());
      for (const r of rows) {
        expect(r).toMatchObject({ state: 'queued', user_id: users[k], jobs: 1, events: ['queued'], audits: 1 });
        expect(await openPrompt(keys, orgId, r.id, r)).toBe(`Summarise invoice batch ${ids.indexOf(r.id)}`);
      }
    }
  });

  it('fails a task that cannot be written alone, not the tasks batched with it', async () => {
    const accepter = new TaskAccepter(ds);
    // The first goes at once; the next three arrive while it is written and go as one batch.
    const first = accepter.accept(keys, task(100));
    const rest = [task(101), task(102, newId()), task(103)].map((t) => accepter.accept(keys, t));
    const settled = await Promise.allSettled([first, ...rest]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/foreign key|row-level security/);
    const ids = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.id] : []));
    const found = await Promise.all(ids.map((id, i) => inOrg(ds, { orgId: orgs[[100, 101, 103][i]! % 2]! }, (em) => em.query(`SELECT 1 FROM tasks WHERE id = $1`, [id]))));
    expect(found.map((f) => f.length)).toEqual([1, 1, 1]);
  });

  it('inside a caller transaction: the task is written and the org and user the caller set stay', async () => {
    const seen = await inOrg(ds, { orgId: orgs[0]! }, async (em) => {
      const { id } = await insertTask(em, keys, task(200, orgs[0]!, users[0]!));
      const [s]: { org: string; usr: string }[] = await em.query(`SELECT current_setting('app.org_id') AS org, current_setting('app.user_id') AS usr`);
      const [t]: { n: number }[] = await em.query(`SELECT count(*)::int AS n FROM tasks WHERE id = $1`, [id]);
      return { ...s, n: t!.n };
    });
    expect(seen).toEqual({ org: orgs[0], usr: '', n: 1 });
  });
});
