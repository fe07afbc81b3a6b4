import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { adminUrl } from '../../../test/support/db-urls';
import type { AddressInfo } from 'node:net';
import { newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg, LegalHold, Org } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import type { CanonicalEvent } from './event';
import { AuditKeyring, monthOf } from './keyring';
import { recordEvent } from './record';
import { dropExpiredPartitions, lockAgainstPartitionDrop, lockHolds, PartitionDropUnderway, purgeOrg, readSealed } from './retention';
import { verifyOrg } from './verify';
import { type ExportLine, exportManifest, exportRange, exportText, manifestStatementOf } from './export';
import { verifyExport } from './offline-verify';
import { Ed25519Signer } from './signing';
import type { PageFormat } from './export-format';
import { pushToSiem, sealSinkToken } from './siem';
import { sealAll } from '../../../test/support/seal';

const keys = new ConfigKeyProvider(`v1:${Buffer.alloc(32, 5).toString('base64')}`);
const keyring = new AuditKeyring(keys);

function monthStart(back: number, now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));
}

describe('retention and legal hold (real PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let owner: DataSource;
  const alice = newId();
  const bob = newId();

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 8 });
    owner = createDataSource({ url: db.ownerUrl, poolMax: 2 });
    await Promise.all([ds.initialize(), owner.initialize()]);
  });
  afterAll(async () => {
    await owner?.destroy();
    await ds?.destroy();
    await db?.drop();
  });

  async function org(slug: string, months: number): Promise<string> {
    const id = newId();
    await inOrg(ds, { orgId: id }, (em) => em.insert(Org, { id, name: slug, slug, domains: [], requireStepUp: false, auditRetentionMonths: months }));
    for (let back = 7; back >= 0; back--) {
      const at = back === 0 ? new Date(Date.now() - 60_000) : new Date(monthStart(back).getTime() + 9 * 86_400_000);
      for (const [name, user] of [['alice', alice], ['bob', bob]] as const) {
        await inOrg(ds, { orgId: id }, (em) =>
          recordEvent(em, keyring, { id: newId(), orgId: id, occurredAt: at, actor: { type: 'user', id: user }, action: 'email.send', outcome: 'success', client: 'mcp', payload: { back }, sensitive: { recipients: [`${name}-${back}@customer.example`] } }),
        );
      }
      // An agent task acting for alice, as the gate records it: the task is the actor, alice the subject.
      await inOrg(ds, { orgId: id }, (em) =>
        recordEvent(em, keyring, { id: newId(), orgId: id, occurredAt: at, actor: { type: 'agent_task', id: newId() }, subject: alice, action: 'email.send', outcome: 'success', client: 'worker', payload: { back }, sensitive: { recipients: [`agent-${back}@customer.example`] } }),
      );
    }
    return id;
  }

  /** For each event still stored: "<user>-<months back>" → readable or not. */
  async function readable(orgId: string): Promise<Record<string, boolean>> {
    return inOrg(ds, { orgId }, async (em) => {
      const rows: { canonical: string }[] = await em.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND action = 'email.send'`, [orgId]);
      const out: Record<string, boolean> = {};
      for (const r of rows) {
        const e = JSON.parse(r.canonical) as CanonicalEvent;
        const who = e.actor.type === 'agent_task' ? 'agent' : e.actor.id === alice ? 'alice' : 'bob';
        const fields = await readSealed(em, keyring, orgId, e);
        out[`${who}-${(e.payload as { back: number }).back}`] = fields !== null && (fields.recipients as string[])[0] === `${who}-${(e.payload as { back: number }).back}@customer.example`;
      }
      return out;
    });
  }

  it("a month key another process destroyed (the worker's purge) opens nothing in this one after its time in memory", async () => {
    const id = newId();
    await inOrg(ds, { orgId: id }, (em) => em.insert(Org, { id, name: 'keys', slug: `keys-${id.slice(-8)}`, domains: [], requireStepUp: false, auditRetentionMonths: 6 }));
    const at = new Date(monthStart(7).getTime() + 9 * 86_400_000);
    // An event whose fields are the org's (no person): sealed under the org's month key.
    await inOrg(ds, { orgId: id }, (em) =>
      recordEvent(em, keyring, { id: newId(), orgId: id, occurredAt: at, actor: { type: 'system', id: null }, subject: null, action: 'legal_hold.place', outcome: 'success', client: 'system', sensitive: { reason: 'litigation with Initech' } }),
    );
    const api = new AuditKeyring(keys, { monthKeyTtlMs: 200 }); // the API process, reading
    const read = () =>
      inOrg(ds, { orgId: id }, async (em) => {
        const [r]: { canonical: string }[] = await em.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND action = 'legal_hold.place'`, [id]);
        return readSealed(em, api, id, JSON.parse(r!.canonical) as CanonicalEvent);
      });
    expect(await read()).toEqual({ reason: 'litigation with Initech' });
    // The worker's retention destroys the month's key, with its own keyring.
    expect((await purgeOrg(ds, new AuditKeyring(keys), id)).destroyedMonths).toContain(monthOf(at));
    await new Promise((r) => setTimeout(r, 250));
    expect(await read()).toBeNull();
  });

  it('leaves exactly what retention and the hold say readable, is audited, and verify passes afterwards', async () => {
    const a = await org('short', 3);
    const b = await org('long', 6);
    // Legal hold on alice in org A over months 5 and 4 back.
    await inOrg(ds, { orgId: a }, (em) =>
      em.insert(LegalHold, { id: newId(), orgId: a, userId: alice, fromAt: monthStart(5), untilAt: monthStart(3), reason: 'litigation', createdBy: bob, releasedAt: null }),
    );
    for (const o of [a, b]) expect(await sealAll(ds, o)).toBe(24);

    const purgeA = await purgeOrg(ds, keyring, a);
    const purgeB = await purgeOrg(ds, keyring, b);
    expect(purgeA.destroyedMonths).toEqual([7, 6, 5, 4].map((m) => monthOf(monthStart(m))));
    expect(purgeA.heldEvents).toBe(4); // alice's own and the agent's for her, two months
    expect(purgeB.destroyedMonths).toEqual([monthOf(monthStart(7))]);

    // Appends go on while a month's partition is detached and dropped.
    let appending = true;
    let appended = 0;
    let failed = 0;
    const appender = (async () => {
      while (appending && failed < 100) {
        await inOrg(ds, { orgId: b }, (em) => recordEvent(em, keyring, { id: newId(), orgId: b, occurredAt: new Date(), actor: { type: 'system', id: null }, action: 'file.read', outcome: 'success', client: 'worker' }))
          .then(() => appended++)
          .catch(() => failed++);
      }
    })();
    let dropped;
    try {
      dropped = await dropExpiredPartitions(ds, owner, keyring);
    } finally {
      appending = false;
      await appender;
    }
    expect(dropped.map((d) => d.month)).toEqual([monthOf(monthStart(7))]);
    expect(failed).toBe(0);
    expect(appended).toBeGreaterThan(0);

    const expectA: Record<string, boolean> = {};
    const expectB: Record<string, boolean> = {};
    for (let back = 6; back >= 0; back--) {
      for (const who of ['alice', 'bob', 'agent']) {
        expectA[`${who}-${back}`] = back <= 3 || (who !== 'bob' && (back === 4 || back === 5));
        expectB[`${who}-${back}`] = true;
      }
    }
    expect(await readable(a)).toEqual(expectA);
    expect(await readable(b)).toEqual(expectB);

    for (const o of [a, b]) {
      const [{ n }] = await inOrg(ds, { orgId: o }, (em) => em.query(`SELECT count(*)::int AS n FROM audit_events WHERE org_id = $1 AND action IN ('audit.purge', 'audit.partition_drop')`, [o]));
      expect(n).toBe(2);
      await sealAll(ds, o);
      const v = await verifyOrg(ds, o, null);
      expect(v).toMatchObject({ ok: true, purged: 3 }); // the three events of the dropped month
      // The drop recorded how many of the org's entries the month held: no more may go missing there.
      const [drop] = await inOrg(ds, { orgId: o }, (em) => em.query(`SELECT canonical::jsonb->'payload' AS p FROM audit_events WHERE org_id = $1 AND action = 'audit.partition_drop'`, [o]));
      expect(drop.p.counts).toEqual({ [monthOf(monthStart(7))]: 3 });
    }

    // After the drop, exports and SIEM pushes go on over the purged entries: NDJSON keeps them (null,
    // for the verifier); the event formats and the sink leave them out, and the sink moves past them.
    const { toSeq } = await exportRange(ds, b);
    const lines = async (format: PageFormat) => {
      let text = '';
      for await (const chunk of exportText(ds, b, 1, toSeq, format, 'test')) text += chunk;
      return text.split('\n').filter(Boolean);
    };
    const ndjson = await lines('ndjson');
    expect(ndjson).toHaveLength(toSeq);
    expect(ndjson.filter((l) => JSON.parse(l).canonical === 'null')).toHaveLength(3);
    for (const format of ['csv', 'cef', 'ocsf', 'ecs'] as const) expect(await lines(format)).toHaveLength(toSeq - 3);
    // Offline, with nothing but the file, the signed manifest and the public key: the manifest names
    // the purged runs and what the month held, so the export verifies; an event deleted elsewhere
    // (its line written as purged) does not, nor does a manifest whose purged runs were widened to cover it.
    const signer = new Ed25519Signer(Buffer.alloc(32, 3).toString('base64'));
    const manifest = await exportManifest(ds, b, 1, toSeq, signer);
    const purgedSeqs = ndjson.map((l) => JSON.parse(l) as ExportLine).filter((l) => l.canonical === 'null').map((l) => l.seq);
    expect(manifest.purged).toEqual([{ month: monthOf(monthStart(7)), held: 3, runs: [[purgedSeqs[0], purgedSeqs[2]]] }]);
    const dir = mkdtempSync(join(tmpdir(), 'steward-purged-'));
    try {
      writeFileSync(join(dir, 'export.ndjson'), `${ndjson.join('\n')}\n`);
      expect(await verifyExport(join(dir, 'export.ndjson'), manifest, signer.publicKeyPem)).toMatchObject({ ok: true, checked: toSeq, purged: 3 });
      const victim = purgedSeqs[2]! + 1;
      const deleted = ndjson.map((l) => (JSON.parse(l).seq === victim ? JSON.stringify({ ...JSON.parse(l), canonical: 'null' }) : l));
      writeFileSync(join(dir, 'deleted.ndjson'), `${deleted.join('\n')}\n`);
      expect(await verifyExport(join(dir, 'deleted.ndjson'), manifest, signer.publicKeyPem)).toMatchObject({ ok: false, firstBadSeq: victim, reason: expect.stringMatching(/no event.*deleted/) });
      // The server's own key could sign a widened run; the month's count at its drop (a chain event) still limits it.
      const widened = { ...manifest, purged: [{ ...manifest.purged![0]!, runs: [[purgedSeqs[0]!, victim]] as [number, number][] }] };
      const statement = manifestStatementOf(widened);
      const bySigner = { ...widened, statement, signature: await signer.sign(Buffer.from(statement, 'utf8')) };
      expect(await verifyExport(join(dir, 'deleted.ndjson'), bySigner, signer.publicKeyPem)).toMatchObject({ ok: false, reason: expect.stringMatching(/held 3 when it was dropped/) });
      // A manifest changed after signing (a run added) is refused before any line is read.
      expect(await verifyExport(join(dir, 'deleted.ndjson'), { ...manifest, purged: widened.purged }, signer.publicKeyPem)).toMatchObject({ ok: false, checked: 0, reason: expect.stringMatching(/differs from what its signature covers/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const received: unknown[] = [];
    const hec = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(...body.split('\n').filter(Boolean));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
      });
    });
    await new Promise<void>((r) => hec.listen(0, '127.0.0.1', r));
    try {
      const sinkId = newId();
      const { tokenSealed, tokenWrappedKey } = await sealSinkToken(keys, b, sinkId, 'hec-token');
      await inOrg(ds, { orgId: b }, (em) =>
        em.query('INSERT INTO audit_siem_sinks (org_id, id, url, token_sealed, token_wrapped_key, batch_size) VALUES ($1, $2, $3, $4, $5, 5)', [b, sinkId, `http://127.0.0.1:${(hec.address() as AddressInfo).port}`, tokenSealed, tokenWrappedKey]),
      );
      expect(await pushToSiem(ds, keys, b, { allowHosts: ['127.0.0.1'], baseDelayMs: 1 })).toEqual([{ sinkId, delivered: toSeq - 3, deadLettered: 0, lastSeq: toSeq, error: null }]);
      expect(received).toHaveLength(toSeq - 3);
    } finally {
      await new Promise((r) => hec.close(r));
    }

    // The hold is released: what it kept past retention is no longer readable, and the next purge deletes the copies.
    await inOrg(ds, { orgId: a }, (em) => em.query(`UPDATE legal_holds SET released_at = now() WHERE org_id = $1`, [a]));
    expect(await readable(a)).toEqual({ ...expectA, 'alice-4': false, 'alice-5': false, 'agent-4': false, 'agent-5': false });
    await purgeOrg(ds, keyring, a);
    const [{ left }] = await inOrg(ds, { orgId: a }, (em) => em.query(`SELECT count(*)::int AS left FROM audit_held_payloads WHERE org_id = $1`, [a]));
    expect(left).toBe(0);
  }, 60_000);

  it("a hold placed after the drop read the holds, before it took its lock, keeps its month: every org's holds are read again under the lock, before any org records the drop", async () => {
    const url = new URL(adminUrl());
    url.pathname = `/${db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    try {
      await su.query('UPDATE orgs SET audit_retention_months = 3');
      const orgs: string[] = (await su.query('SELECT id FROM orgs ORDER BY id')).rows.map((r) => r.id);
      // The drop lists the partitions (after its first read of the holds, before its lock): a hold over
      // month 6 back is placed in the last org just then, as an admin's would be.
      let placed = false;
      const ownerMeanwhile = new Proxy(owner, {
        get(target, prop, receiver) {
          if (prop !== 'query') return Reflect.get(target, prop, receiver);
          return async (sql: string, params?: unknown[]) => {
            if (!placed && sql.includes('pg_inherits')) {
              placed = true;
              await su.query(`INSERT INTO legal_holds (id, org_id, from_at, until_at, reason, created_by) VALUES (gen_random_uuid(), $1, $2, $3, 'placed meanwhile', $1)`, [orgs.at(-1), monthStart(6), monthStart(5)]);
            }
            return target.query(sql, params);
          };
        },
      });
      const recordedBefore = Number((await su.query(`SELECT count(*) AS n FROM audit_events WHERE action = 'audit.partition_drop'`)).rows[0].n);
      const dropped = await dropExpiredPartitions(ds, ownerMeanwhile, keyring);
      expect(placed).toBe(true);
      expect(dropped.map((d) => d.month)).toEqual([monthOf(monthStart(5)), monthOf(monthStart(4))]);
      const partitions = (await su.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'audit_events'`)).rows.map((r) => r.relname);
      const m6 = monthOf(monthStart(6));
      expect(partitions).toContain(`audit_events_${m6.slice(0, 4)}_${m6.slice(5, 7)}`);
      // No org recorded a drop of the kept month (two months dropped, each recorded once per org).
      const recorded = (await su.query(`SELECT canonical::jsonb->'payload'->>'month' AS month FROM audit_events WHERE action = 'audit.partition_drop'`)).rows.map((r) => r.month as string);
      expect(recorded).not.toContain(m6);
      expect(recorded.length - recordedBefore).toBe(2 * orgs.length);
    } finally {
      await su.end();
    }
  }, 60_000);

  it('a hold placed while a partition is being dropped (after one org recorded the drop, before the detach) waits for the drop: it is never placed over a partition about to go', async () => {
    const url = new URL(adminUrl());
    url.pathname = `/${db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    const m3 = monthOf(monthStart(3));
    const partition = `audit_events_${m3.slice(0, 4)}_${m3.slice(5, 7)}`;
    try {
      await su.query('UPDATE orgs SET audit_retention_months = 2');
      const orgs: string[] = (await su.query('SELECT id FROM orgs')).rows.map((r) => r.id);
      expect(orgs.length).toBeGreaterThan(1);
      // Each org's record of the drop takes a while: a window between the first record and the detach.
      await su.query(`CREATE FUNCTION test_slow_record() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.4); RETURN NEW; END $$`);
      await su.query(`CREATE TRIGGER slow_record AFTER UPDATE ON audit_heads FOR EACH ROW EXECUTE FUNCTION test_slow_record()`);
      try {
        const dropping = dropExpiredPartitions(ds, owner, keyring);
        const recorded = async () => (await su.query('SELECT org_id FROM audit_heads WHERE purged_before = $1', [monthStart(2)])).rows.map((r) => r.org_id as string);
        let first: string[] = [];
        for (let i = 0; i < 200 && !first.length; i++) {
          await new Promise((r) => setTimeout(r, 20));
          first = await recorded();
        }
        expect(first).toHaveLength(1);
        const other = orgs.find((o) => !first.includes(o))!;
        // The org's admin places a hold over that month now, as the API does (the partition-drop lock first).
        const placed = await inOrg(ds, { orgId: other }, async (em) => {
          await lockAgainstPartitionDrop(em);
          await lockHolds(em, other);
          await em.insert(LegalHold, { id: newId(), orgId: other, userId: null, fromAt: monthStart(3), untilAt: monthStart(2), reason: 'placed during the drop', createdBy: other, releasedAt: null });
          const [{ present }] = await em.query('SELECT to_regclass($1) IS NOT NULL AS present', [partition]);
          return { present, recordedBefore: (await recorded()).length };
        });
        expect(await dropping).toEqual([{ partition, month: m3 }]);
        // Placed once the partition was gone (every org had recorded the drop): never over a partition about to be dropped.
        expect(placed).toEqual({ present: false, recordedBefore: orgs.length });
      } finally {
        await su.query('DROP TRIGGER slow_record ON audit_heads');
        await su.query('DROP FUNCTION test_slow_record()');
      }
    } finally {
      await su.end();
    }
  }, 60_000);
  it('a drop never waits (a hold being placed, or another worker dropping, leaves it to the next round); a hold waits for a drop only so long, then is refused with nothing placed; a detach cut short is finished next round', async () => {
    const url = new URL(adminUrl());
    url.pathname = `/${db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    const m2 = monthOf(monthStart(2));
    const partition = `audit_events_${m2.slice(0, 4)}_${m2.slice(5, 7)}`;
    const present = async () => (await su.query('SELECT to_regclass($1) IS NOT NULL AS p', [partition])).rows[0].p as boolean;
    try {
      await su.query('UPDATE orgs SET audit_retention_months = 1');
      // A hold being placed (its transaction holds the shared lock): the drop leaves the month for now.
      await su.query('BEGIN');
      await su.query(`SELECT pg_advisory_xact_lock_shared(hashtextextended('steward:audit-partition-drop', 0))`);
      expect(await dropExpiredPartitions(ds, owner, keyring)).toEqual([]);
      expect(await present()).toBe(true);
      await su.query('COMMIT');
      // A drop under way (the lock held as a drop holds it): a hold waits, then is refused; nothing of it is written.
      const org = (await su.query('SELECT id FROM orgs LIMIT 1')).rows[0].id as string;
      await su.query(`SELECT pg_advisory_lock(hashtextextended('steward:audit-partition-drop', 0))`);
      const holdsBefore = Number((await su.query('SELECT count(*) AS n FROM legal_holds')).rows[0].n);
      await expect(
        inOrg(ds, { orgId: org }, async (em) => {
          await lockAgainstPartitionDrop(em, 200);
          await em.insert(LegalHold, { id: newId(), orgId: org, userId: null, fromAt: monthStart(2), untilAt: monthStart(1), reason: 'too late', createdBy: org, releasedAt: null });
        }),
      ).rejects.toBeInstanceOf(PartitionDropUnderway);
      expect(Number((await su.query('SELECT count(*) AS n FROM legal_holds')).rows[0].n)).toBe(holdsBefore);
      // Nor does a second drop wait for the first.
      expect(await dropExpiredPartitions(ds, owner, keyring)).toEqual([]);
      await su.query(`SELECT pg_advisory_unlock(hashtextextended('steward:audit-partition-drop', 0))`);
      // A detach cut short (here by a time limit while a long read held the table) is left pending:
      // the next round finishes it, and records nothing again.
      const reader = new Client({ connectionString: url.toString() });
      await reader.connect();
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM audit_events');
      await su.query('SET statement_timeout = 300');
      await expect(su.query(`ALTER TABLE audit_events DETACH PARTITION ${partition} CONCURRENTLY`)).rejects.toThrow(/statement timeout/);
      await su.query('RESET statement_timeout');
      await reader.query('COMMIT');
      await reader.end();
      expect((await su.query(`SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = $1::regclass`, [partition])).rows).toEqual([{ inhdetachpending: true }]);
      const records = async () => Number((await su.query(`SELECT count(*) AS n FROM audit_events WHERE action = 'audit.partition_drop'`)).rows[0].n);
      const recordsBefore = await records();
      expect(await dropExpiredPartitions(ds, owner, keyring)).toEqual([{ partition, month: m2 }]);
      expect(await present()).toBe(false);
      expect(await records()).toBe(recordsBefore);
    } finally {
      await su.end();
    }
  }, 60_000);
});
