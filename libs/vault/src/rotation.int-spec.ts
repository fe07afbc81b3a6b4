import { AuditKeyring, AUDIT_WRAPPED_KEY_SOURCES } from '@steward/audit';
import { newId, SecretBox, ssoClientSecretAad, totpAad } from '@steward/common';
import { createDataSource, type DataSource, inOrg, Org, User } from '@steward/db';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { credentialAad, incidentSecretAad, openSecret, sealSecret } from './envelope';
import { ConfigKeyProvider } from './keys';
import { kekSealedSources, kekVersionsInUse, rewrapAll, VAULT_WRAPPED_KEY_SOURCES } from './rotation';
import { resealUserSecrets, userSecretVersions } from './user-secrets';

const V1 = `v1:${Buffer.alloc(32, 11).toString('base64')}`;
const V2 = `v2:${Buffer.alloc(32, 22).toString('base64')}`;
const N = 10_000;
const SOURCES = [...VAULT_WRAPPED_KEY_SOURCES, ...AUDIT_WRAPPED_KEY_SOURCES];

describe('KEK rotation over 10,000 stored credentials (real PostgreSQL, runtime role)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  const orgs = [newId(), newId()];
  const connectors = [newId(), newId()];
  const secretOf = (i: number) => `canary-secret-${i}-${'x'.repeat(i % 50)}`;
  const ids: { org: number; id: string }[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    await ds.initialize();
    const v1 = new ConfigKeyProvider(V1);
    for (const [o, orgId] of orgs.entries()) {
      await inOrg(ds, { orgId }, async (em) => {
        await em.insert(Org, { id: orgId, name: `Org ${o}`, slug: `rot-${o}-${orgId.slice(-6)}`, domains: [], requireStepUp: false });
        await em.query(`INSERT INTO connectors (org_id, id, kind, name, url, auth, credential_scope) VALUES ($1, $2, 'remote', 'partner', 'https://mcp.partner.example/mcp', '{"kind":"header","header":"authorization","scheme":"Bearer"}', 'user')`, [orgId, connectors[o]]);
        // An audit month key under v1 too: rotation must move it, or v1 could never be removed.
        await new AuditKeyring(v1).key(em, orgId, '2026-01-01', true);
        // The org's incident escalation secret (webhook signing secret) is a vault data key too.
        const w = await sealSecret(v1, `whsec-${o}`, incidentSecretAad(orgId, 'webhook_signing_secret'));
        await em.query(`INSERT INTO incident_secrets (org_id, name, sealed, wrapped_key) VALUES ($1, 'webhook_signing_secret', $2, $3)`, [orgId, w.sealed, w.wrappedKey]);
      });
    }
    // The fast bulk path: sealed in memory, multi-row INSERTs of 500 (one user credential per row).
    const rows: unknown[][] = [];
    for (let i = 0; i < N; i++) {
      const o = i % 2;
      const id = newId();
      ids.push({ org: o, id });
      // Half sealed before owners were named in the AAD (binding 1), half after: the re-wrap opens each with its own.
      const owner = newId();
      const binding = i % 2 ? 2 : 1;
      const s = await sealSecret(v1, secretOf(i), credentialAad(orgs[o], connectors[o], id, owner, binding));
      rows.push([orgs[o], id, connectors[o], owner, s.sealed, s.wrappedKey, binding]);
    }
    for (const [o, orgId] of orgs.entries()) {
      const mine = rows.filter((r) => r[0] === orgId);
      for (let i = 0; i < mine.length; i += 500) {
        const chunk = mine.slice(i, i + 500);
        await inOrg(ds, { orgId }, (em) =>
          em.query(
            `INSERT INTO credentials (org_id, id, connector_id, user_id, kind, status, sealed, wrapped_key, aad_version) VALUES ${chunk.map((_, j) => `($${j * 7 + 1}, $${j * 7 + 2}, $${j * 7 + 3}, $${j * 7 + 4}, 'secret', 'active', $${j * 7 + 5}, $${j * 7 + 6}, $${j * 7 + 7})`).join(', ')}`,
            chunk.flat(),
          ),
        );
      }
      expect(o).toBeLessThan(2);
    }
  }, 60_000);

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('re-wraps every data key in resumable batches; every credential still opens; v1 can then be removed', async () => {
    expect(await kekVersionsInUse(ds, SOURCES)).toEqual({ v1: { credentials: N, audit_keys: 2, incident_secrets: 2 } });
    const rotated = new ConfigKeyProvider(`${V1},${V2}`);

    // A worker that dies after three batches...
    const ctrl = new AbortController();
    let batches = 0;
    await expect(
      rewrapAll(ds, rotated, SOURCES, {
        signal: ctrl.signal,
        onBatch: () => {
          if (++batches === 3) ctrl.abort(new Error('worker killed'));
        },
      }),
    ).rejects.toThrow('worker killed');
    const partial = await kekVersionsInUse(ds, SOURCES);
    expect(partial.v2.credentials).toBe(1500);
    expect(partial.v1.credentials).toBe(N - 1500);

    // ...and the next run picks up exactly what is left.
    const report = await rewrapAll(ds, rotated, SOURCES);
    expect(report.rewrapped.credentials).toBe(N - 1500);
    expect(report.rewrapped.audit_keys).toBe(2);
    expect(report.rewrapped.incident_secrets).toBe(2);
    expect(Object.values(report.failed).every((n) => n === 0)).toBe(true);
    expect(await kekVersionsInUse(ds, SOURCES)).toEqual({ v2: { credentials: N, audit_keys: 2, incident_secrets: 2 } });
    // Nothing left: a second run is a no-op.
    expect((await rewrapAll(ds, rotated, SOURCES)).rewrapped.credentials).toBe(0);

    // v1 removed from the configuration: every one of the 10,000 still decrypts, to its own value.
    const v2only = new ConfigKeyProvider(V2);
    const v1only = new ConfigKeyProvider(V1);
    let opened = 0;
    for (const [o, orgId] of orgs.entries()) {
      await inOrg(ds, { orgId }, async (em) => {
        const stored: { id: string; user_id: string; aad_version: number; sealed: Buffer; wrapped_key: string }[] = await em.query('SELECT id, user_id, aad_version, sealed, wrapped_key FROM credentials WHERE org_id = $1', [orgId]);
        const index = new Map(ids.map((x, i) => [x.id, i]));
        for (const row of stored) {
          const plain = await openSecret(v2only, { sealed: row.sealed, wrappedKey: row.wrapped_key }, credentialAad(orgId, connectors[o], row.id, row.user_id, row.aad_version));
          expect(plain.toString('utf8')).toBe(secretOf(index.get(row.id)!));
          opened++;
        }
        await expect(openSecret(v1only, { sealed: stored[0].sealed, wrappedKey: stored[0].wrapped_key }, credentialAad(orgId, connectors[o], stored[0].id, stored[0].user_id, stored[0].aad_version))).rejects.toThrow(/unknown key-encryption key version "v2"/);
        // The audit month key opens under v2 alone.
        expect(await new AuditKeyring(v2only).key(em, orgId, '2026-01-01', false)).toBeInstanceOf(Buffer);
        const [w] = await em.query(`SELECT sealed, wrapped_key FROM incident_secrets WHERE org_id = $1`, [orgId]);
        expect((await openSecret(v2only, { sealed: w.sealed, wrappedKey: w.wrapped_key }, incidentSecretAad(orgId, 'webhook_signing_secret'))).toString('utf8')).toBe(`whsec-${o}`);
      });
    }
    expect(opened).toBe(N);
  }, 60_000);

  it("re-seals users' TOTP secrets (sealed under the KEK itself) so that v1 can be removed", async () => {
    const v1 = new SecretBox(V1);
    const users = Array.from({ length: 1203 }, () => newId());
    const secretOf = (u: string) => `JBSWY3DPEHPK3PXP${u.slice(-6)}`;
    for (const id of users) {
      await inOrg(ds, { orgId: orgs[0], userId: id }, (em) =>
        em.insert(User, { id, email: `u-${id}@acme.example`, name: 'U', passwordHash: 'x', totpSecretSealed: v1.seal(secretOf(id), totpAad(id)), totpEnabledAt: new Date(), totpLastStep: null }),
      );
    }
    // One secret copied onto another user's row (its AAD names the first user): it must not open, and stays as it was.
    const [victim, source] = [users[7], users[8]];
    const copied = v1.seal(secretOf(source), totpAad(source));
    await inOrg(ds, { orgId: orgs[0], userId: victim }, (em) => em.update(User, { id: victim }, { totpSecretSealed: copied }));
    expect(await userSecretVersions(ds)).toEqual({ v1: users.length });

    const rotated = new SecretBox(`${V1},${V2}`);
    expect(await resealUserSecrets(ds, rotated, { batchSize: 200 })).toEqual({ target: 'v2', resealed: users.length - 1, failed: 1 });
    expect(await userSecretVersions(ds)).toEqual({ v1: 1, v2: users.length - 1 });
    expect(await resealUserSecrets(ds, rotated)).toEqual({ target: 'v2', resealed: 0, failed: 1 });

    const v2only = new SecretBox(V2);
    const stored: { id: string; totp_secret_sealed: string }[] = await inOrg(ds, { orgId: orgs[0], userId: users[0] }, (em) => em.query('SELECT id, totp_secret_sealed FROM users WHERE id = $1', [users[0]]));
    expect(v2only.open(stored[0].totp_secret_sealed, totpAad(users[0]))).toBe(secretOf(users[0]));
    const [{ sealed }] = await ds.query('SELECT sealed FROM steward_user_secrets_to_reseal($1, NULL, 10)', ['v2']);
    expect(sealed).toBe(copied);
  }, 60_000);

  it("re-seals orgs' SSO client secrets (sealed under the KEK itself) so that v1 can be removed", async () => {
    const v1 = new SecretBox(V1);
    const secret = 'oidc-client-secret-of-org-0';
    const sealed0 = v1.seal(secret, ssoClientSecretAad(orgs[0]));
    const insert = (orgId: string, value: string) =>
      inOrg(ds, { orgId }, (em) => em.query(`INSERT INTO sso_configs (org_id, issuer, client_id, client_secret_sealed) VALUES ($1, 'https://idp.example', 'steward', $2)`, [orgId, value]));
    await insert(orgs[0], sealed0);
    // Org 0's sealed secret copied onto org 1's row: its AAD names org 0, so it must not open, and stays as it was.
    await insert(orgs[1], sealed0);
    const rotated = new SecretBox(`${V1},${V2}`);
    const sources = kekSealedSources(rotated);
    expect(await kekVersionsInUse(ds, sources)).toEqual({ v1: { sso_client_secrets: 2 } });

    const report = await rewrapAll(ds, new ConfigKeyProvider(`${V1},${V2}`), sources);
    expect(report).toMatchObject({ target: 'v2', rewrapped: { sso_client_secrets: 1 }, failed: { sso_client_secrets: 1 } });
    expect(await kekVersionsInUse(ds, sources)).toEqual({ v1: { sso_client_secrets: 1 }, v2: { sso_client_secrets: 1 } });
    // Again: nothing more to do (the copied one still fails, untouched).
    expect(await rewrapAll(ds, new ConfigKeyProvider(`${V1},${V2}`), sources)).toMatchObject({ rewrapped: { sso_client_secrets: 0 }, failed: { sso_client_secrets: 1 } });

    const read = async (orgId: string) => (await inOrg(ds, { orgId }, (em) => em.query('SELECT client_secret_sealed AS s FROM sso_configs WHERE org_id = $1', [orgId])))[0].s as string;
    const now0 = await read(orgs[0]);
    expect(now0.startsWith('v2.')).toBe(true);
    expect(new SecretBox(V2).open(now0, ssoClientSecretAad(orgs[0]))).toBe(secret);
    expect(await read(orgs[1])).toBe(sealed0);
  }, 60_000);
});
