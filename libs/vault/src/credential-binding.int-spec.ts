import { newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg, Org } from '@steward/db';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { credentialsUnbound, rebindCredentials } from './credential-binding';
import { credentialAad, openSecret, sealSecret } from './envelope';
import { ConfigKeyProvider } from './keys';

/**
 * A connector credential's seal names its owner (binding 2): moved to another user in the database
 * it no longer opens, and credentials sealed before (binding 1) are sealed again by the worker's
 * key job, after which neither the move nor a step back to binding 1 opens them.
 */
describe('connector credentials bound to their owner (real PostgreSQL, runtime role)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  const keys = new ConfigKeyProvider(`v1:${Buffer.alloc(32, 5).toString('base64')}`);
  const orgId = newId();
  const connectorId = newId();

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 2 });
    await ds.initialize();
    await inOrg(ds, { orgId }, async (em) => {
      await em.insert(Org, { id: orgId, name: 'Acme', slug: `bind-${orgId.slice(-6)}`, domains: [], requireStepUp: false });
      await em.query(`INSERT INTO connectors (org_id, id, kind, name, url, auth, credential_scope) VALUES ($1, $2, 'remote', 'partner', 'https://mcp.partner.example/mcp', '{"kind":"header","header":"authorization","scheme":"Bearer"}', 'user')`, [orgId, connectorId]);
    });
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  type Row = { id: string; user_id: string | null; aad_version: number; sealed: Buffer | null; wrapped_key: string | null };
  const insert = async (owner: string | null, secret: string | null, binding: 1 | 2, wrapped?: string) => {
    const id = newId();
    const s = secret === null ? null : await sealSecret(keys, secret, credentialAad(orgId, connectorId, id, owner, binding));
    await inOrg(ds, { orgId }, (em) =>
      em.query(`INSERT INTO credentials (org_id, id, connector_id, user_id, kind, status, sealed, wrapped_key, aad_version) VALUES ($1, $2, $3, $4, 'secret', $5, $6, $7, $8)`, [
        orgId, id, connectorId, owner, secret === null ? 'revoked' : 'active', s?.sealed ?? null, wrapped ?? s?.wrappedKey ?? null, binding,
      ]),
    );
    return id;
  };
  const row = async (id: string): Promise<Row> => (await inOrg(ds, { orgId }, (em) => em.query(`SELECT id, user_id, aad_version, sealed, wrapped_key FROM credentials WHERE org_id = $1 AND id = $2`, [orgId, id])))[0];
  const open = (r: Row, owner = r.user_id, binding = r.aad_version) => openSecret(keys, { sealed: r.sealed!, wrappedKey: r.wrapped_key! }, credentialAad(orgId, connectorId, r.id, owner, binding)).then((b) => b.toString('utf8'));
  const setOwner = (id: string, owner: string) => inOrg(ds, { orgId }, (em) => em.query(`UPDATE credentials SET user_id = $3 WHERE org_id = $1 AND id = $2`, [orgId, id, owner]));

  // One live credential per connector, kind and owner: each credential here is another member's.
  it('a credential sealed now does not open for another owner', async () => {
    const [alice, bob] = [newId(), newId()];
    const id = await insert(alice, 'alice-token', 2);
    expect(await open(await row(id))).toBe('alice-token');
    await setOwner(id, bob);
    await expect(open(await row(id))).rejects.toThrow();
  });

  it('credentials sealed before are sealed again bound to their owner; then a move or a step back to binding 1 does not open them', async () => {
    const [alice, bob, carol, dave] = [newId(), newId(), newId(), newId()];
    const users = [await insert(alice, 'alice-key', 1), await insert(bob, 'bob-key', 1)];
    const org = await insert(null, 'org-key', 1);
    const revoked = await insert(carol, null, 1);
    const broken = await insert(dave, 'lost', 1, 'v1.not-a-wrapped-key');
    expect(await credentialsUnbound(ds)).toBe(4);
    // Binding 1 names no owner: moved to another member, it still opens (what binding 2 closes).
    const before = await row(users[0]!);
    expect(await open(before, carol, 1)).toBe('alice-key');

    expect(await rebindCredentials(ds, keys, 2)).toEqual({ rebound: 3, failed: 1 });
    expect(await credentialsUnbound(ds)).toBe(1);
    expect(await open(await row(users[0]!))).toBe('alice-key');
    expect(await open(await row(users[1]!))).toBe('bob-key');
    expect(await open(await row(org))).toBe('org-key');
    expect((await row(revoked)).aad_version).toBe(2);
    expect((await row(broken)).aad_version).toBe(1);
    // Nothing left to do the second time (the broken row stays as it was, counted).
    expect(await rebindCredentials(ds, keys)).toEqual({ rebound: 0, failed: 1 });

    const moved = await row(users[0]!);
    expect(moved.aad_version).toBe(2);
    const mallory = newId();
    await setOwner(users[0]!, mallory);
    await expect(open(await row(users[0]!))).rejects.toThrow();
    await expect(open(moved, mallory, 1)).rejects.toThrow();
    await expect(open(moved, alice, 1)).rejects.toThrow();
  });
});
