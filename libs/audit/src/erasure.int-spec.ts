import { Client } from 'pg';
import { newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg, LegalHold, Org } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { adminUrl } from '../../../test/support/db-urls';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import type { CanonicalEvent } from './event';
import { AuditKeyring } from './keyring';
import { recordEvent } from './record';
import { eraseSubject, ErasureBlockedError, lockHolds, purgeOrg, readSealed } from './retention';
import { verifyOrg } from './verify';
import { sealAll } from '../../../test/support/seal';

const MASTER = `v1:${Buffer.alloc(32, 9).toString('base64')}`;
const keyring = new AuditKeyring(new ConfigKeyProvider(MASTER));

describe('erasure of one person (crypto-shredding, real PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let su: Client;
  const alice = newId();
  const bob = newId();

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    await ds.initialize();
    const url = new URL(adminUrl());
    url.pathname = `/${db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
  });
  afterAll(async () => {
    await su?.end();
    await ds?.destroy();
    await db?.drop();
  });

  async function newOrg(): Promise<string> {
    const id = newId();
    await inOrg(ds, { orgId: id }, (em) => em.insert(Org, { id, name: 'Acme', slug: `acme-${id.slice(-8)}`, domains: ['acme.example'], requireStepUp: false }));
    return id;
  }

  const canary = (who: string, n: number) => `canary-${who}-${n}@customer.example`;

  async function send(orgId: string, user: string, who: string, n: number, at = new Date()): Promise<string> {
    const id = newId();
    await inOrg(ds, { orgId }, (em) =>
      recordEvent(em, keyring, { id, orgId, occurredAt: at, actor: { type: 'user', id: user }, action: 'email.send', outcome: 'success', client: 'mcp', payload: { n }, sensitive: { recipients: [canary(who, n)] } }),
    );
    return id;
  }

  /** Reads every email.send event's fields with a keyring that has nothing cached (another process). */
  async function readAll(orgId: string): Promise<Record<string, string | null>> {
    const fresh = new AuditKeyring(new ConfigKeyProvider(MASTER));
    return inOrg(ds, { orgId }, async (em) => {
      const rows: { canonical: string }[] = await em.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND action = 'email.send'`, [orgId]);
      const out: Record<string, string | null> = {};
      for (const r of rows) {
        const e = JSON.parse(r.canonical) as CanonicalEvent;
        const fields = await readSealed(em, fresh, orgId, e);
        out[e.id] = fields ? (fields.recipients as string[])[0] : null;
      }
      return out;
    });
  }

  it("shreds every month of one person's fields, leaves others readable, is audited, and the chain still verifies", async () => {
    const org = await newOrg();
    const lastMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 12));
    const aliceIds = [await send(org, alice, 'alice', 1, lastMonth), await send(org, alice, 'alice', 2), await send(org, alice, 'alice', 3)];
    const bobIds = [await send(org, bob, 'bob', 1, lastMonth), await send(org, bob, 'bob', 2)];
    await sealAll(ds, org);
    const before = await readAll(org);
    expect(aliceIds.map((id) => before[id])).toEqual([canary('alice', 1), canary('alice', 2), canary('alice', 3)]);

    const erasure = await eraseSubject(ds, keyring, org, alice, 'APPI deletion request #4411');
    expect(erasure).toMatchObject({ subject: alice, keysDestroyed: 2 }); // two months

    const after = await readAll(org);
    expect(aliceIds.map((id) => after[id])).toEqual([null, null, null]);
    expect(bobIds.map((id) => after[id])).toEqual([canary('bob', 1), canary('bob', 2)]);
    // Nothing of alice's left in clear anywhere in the database (as a superuser sees it).
    const dump = await su.query(`SELECT string_agg(t::text, '') AS all FROM (SELECT canonical FROM audit_events UNION ALL SELECT wrapped FROM audit_keys) t`);
    expect(dump.rows[0].all).not.toContain('canary-alice');
    // Audited, with the reason sealed under the org's key (not alice's), chain intact.
    await sealAll(ds, org);
    const [event] = await inOrg(ds, { orgId: org }, (em) => em.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND action = 'audit.erase'`, [org]));
    const e = JSON.parse(event.canonical) as CanonicalEvent;
    expect(e).toMatchObject({ target: { type: 'User', id: alice }, payload: { erasure: erasure.id, keysDestroyed: 2 } });
    expect(e.sealed?.subject).toBeUndefined();
    expect(await inOrg(ds, { orgId: org }, (em) => readSealed(em, keyring, org, e))).toEqual({ reason: 'APPI deletion request #4411' });
    expect(await verifyOrg(ds, org, null)).toMatchObject({ ok: true, firstBadSeq: null });

    // Alice's events after the erasure are sealed under a fresh key, readable again.
    const later = await send(org, alice, 'alice', 4);
    expect((await readAll(org))[later]).toBe(canary('alice', 4));
    // Erased again: one key this time (this month's), and the count says so.
    expect(await eraseSubject(ds, keyring, org, alice, 'second request')).toMatchObject({ subject: alice, keysDestroyed: 1 });
  });

  it('is refused while a legal hold covers the person or the org, and changes nothing', async () => {
    const org = await newOrg();
    const id = await send(org, bob, 'bob', 7);
    await inOrg(ds, { orgId: org }, (em) => em.insert(LegalHold, { id: newId(), orgId: org, userId: bob, fromAt: new Date(Date.now() - 86_400_000), untilAt: null, reason: 'litigation', createdBy: alice, releasedAt: null }));
    await expect(eraseSubject(ds, keyring, org, bob, 'request')).rejects.toBeInstanceOf(ErasureBlockedError);
    expect((await readAll(org))[id]).toBe(canary('bob', 7));
    const [n] = await inOrg(ds, { orgId: org }, (em) => em.query('SELECT count(*)::int AS n FROM audit_erasures WHERE org_id = $1', [org]));
    expect(n.n).toBe(0);
  });

  it('a hold being placed while an erasure starts: the erasure waits for it and is refused, nothing is destroyed', async () => {
    const org = await newOrg();
    const id = await send(org, bob, 'bob', 6);
    let placed!: () => void;
    const committed = new Promise<void>((r) => (placed = r));
    // A legal hold being placed (as the API does: the org's holds locked first), not yet committed.
    const placing = inOrg(ds, { orgId: org }, async (em) => {
      await lockHolds(em, org);
      await em.insert(LegalHold, { id: newId(), orgId: org, userId: bob, fromAt: new Date(Date.now() - 86_400_000), untilAt: null, reason: 'litigation', createdBy: alice, releasedAt: null });
      await committed;
    });
    await new Promise((r) => setTimeout(r, 100));
    const erasing = eraseSubject(ds, keyring, org, bob, 'request').then(
      () => 'erased',
      (err: unknown) => (err instanceof ErasureBlockedError ? 'blocked' : String(err)),
    );
    await new Promise((r) => setTimeout(r, 200));
    placed();
    await placing;
    expect(await erasing).toBe('blocked');
    expect((await readAll(org))[id]).toBe(canary('bob', 6));
  });

  it('retention destroys the person keys of a month too', async () => {
    const org = await newOrg();
    await inOrg(ds, { orgId: org }, (em) => em.query('UPDATE orgs SET audit_retention_months = 1 WHERE id = $1', [org]));
    const old = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 3, 5));
    const id = await send(org, alice, 'alice', 9, old);
    expect((await readAll(org))[id]).toBe(canary('alice', 9));
    const r = await purgeOrg(ds, keyring, org);
    expect(r.destroyedMonths).toHaveLength(1);
    expect((await readAll(org))[id]).toBeNull();
  });
});
