import { Client } from 'pg';
import { sealOrg, verifyOrg } from '@steward/audit';
import { createDataSource, runMigrations } from '@steward/db';
import { type OwnPostgres, startOwnPostgres } from '../../../test/support/own-services';
import { type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

/**
 * Fault test (issue 6, acceptance 3): PostgreSQL stops under a running API and starts again. On a
 * private cluster of this test's own (never the shared one): meanwhile the API answers 503
 * problem+json on /readyz and on ordinary routes (never a 500, never a hang), it recovers by
 * itself once the database is back, and the org's audit chain verifies afterwards.
 */
describe('PostgreSQL stops and starts under the API', () => {
  let pg: OwnPostgres;
  let h: Harness;
  let org: SeededOrg;
  let owner: string;

  beforeAll(async () => {
    pg = await startOwnPostgres();
    const admin = new Client({ connectionString: pg.adminUrl });
    await admin.connect();
    await admin.query(`CREATE ROLE steward_owner LOGIN CREATEDB CREATEROLE NOSUPERUSER NOBYPASSRLS`);
    await admin.query(`CREATE ROLE steward_app LOGIN NOSUPERUSER NOBYPASSRLS`);
    await admin.query(`CREATE DATABASE steward_faults OWNER steward_owner`);
    await admin.end();
    const url = (role: string) => `postgres://${role}@127.0.0.1:${pg.port}/steward_faults`;
    const owner = createDataSource({ url: url('steward_owner') });
    await owner.initialize();
    await runMigrations(owner);
    await owner.destroy();
    h = await startHarness({ db: { name: 'steward_faults', appUrl: url('steward_app'), ownerUrl: url('steward_owner'), drop: async () => undefined } });
    org = await seedOrg(h.ds, 'pgfault');
  }, 120_000);
  afterAll(async () => {
    await h?.close().catch(() => undefined);
    pg?.destroy();
  });

  it('answers 503 problem+json while the database is down, recovers by itself, and the audit chain verifies', async () => {
    owner = await login(h, org.users.owner.email);
    for (const name of ['Finance', 'Legal']) expect((await h.http.post('/v1/groups').set('Cookie', owner).send({ name })).status).toBe(201);
    await sealOrg(h.ds, org.id, { holder: 'test' });
    expect((await h.http.get('/readyz')).status).toBe(200);

    pg.stop();
    const ready = await h.http.get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(ready.body).toMatchObject({ status: 503, code: 'service_unavailable', detail: expect.stringMatching(/database/) });
    for (const res of [await h.http.get('/v1/groups').set('Cookie', owner), await h.http.post('/v1/groups').set('Cookie', owner).send({ name: 'Strategy' }), await h.http.get('/v1/tasks').set('Cookie', owner)]) {
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 503, code: 'service_unavailable' });
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
    }

    pg.start();
    // Nobody restarts the API: it answers again once its pool reconnects.
    let status = 0;
    for (let i = 0; i < 150 && status !== 200; i++) {
      status = (await h.http.get('/readyz')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    expect((await h.http.get('/v1/groups').set('Cookie', owner)).status).toBe(200);
    expect((await h.http.post('/v1/groups').set('Cookie', owner).send({ name: 'Strategy' })).status).toBe(201);

    // The audit trail written before and after the outage is one unbroken chain.
    await sealOrg(h.ds, org.id, { holder: 'test' });
    const verified = await verifyOrg(h.ds, org.id, null);
    expect(verified).toMatchObject({ ok: true, firstBadSeq: null });
    expect(verified.checked).toBeGreaterThan(3);
  }, 120_000);
});
