import { fork } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg, Org } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { adminUrl } from '../../../test/support/db-urls';
import { checkpointOrg, FileSink } from './checkpoint';
import { AuditKeyring } from './keyring';
import { recordEvent } from './record';
import { sealOrg, sealingLagSeconds } from './sequencer';
import { Ed25519Signer } from './signing';
import { verifyOrg } from './verify';
import { exportLines, exportText, type ExportLine } from './export';
import { formatPage } from './export-format';
import { sealAll } from '../../../test/support/seal';

const MASTER_KEY = `v1:${Buffer.alloc(32, 3).toString('base64')}`;
const keyring = new AuditKeyring(new ConfigKeyProvider(MASTER_KEY));
const signer = new Ed25519Signer(randomBytes(32).toString('base64'));

async function newOrg(ds: DataSource): Promise<string> {
  const id = newId();
  await inOrg(ds, { orgId: id }, (em) => em.insert(Org, { id, name: 'Acme', slug: `acme-${id.slice(-8)}`, domains: ['acme.example'], requireStepUp: false }));
  return id;
}

async function record(ds: DataSource, orgId: string, n: number, action = 'file.read', extra: Record<string, unknown> = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = newId();
    ids.push(id);
    await inOrg(ds, { orgId }, (em) =>
      recordEvent(em, keyring, { id, orgId, occurredAt: new Date(), actor: { type: 'user', id: null }, action, outcome: 'success', client: 'rest', payload: { i, ...extra } }),
    );
  }
  return ids;
}

async function seqOf(ds: DataSource, orgId: string, eventId: string): Promise<number> {
  const [row] = await inOrg(ds, { orgId }, (em) => em.query('SELECT seq FROM audit_chain WHERE org_id = $1 AND event_id = $2', [orgId, eventId]));
  return Number(row.seq);
}

describe('audit trail (real PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let su: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 12 });
    await ds.initialize();
    const url = new URL(adminUrl());
    url.pathname = `/${db.name}`;
    su = new Client({ connectionString: url.toString() });
    await su.connect();
    // The attacker: a database superuser with triggers out of the way.
    await su.query(`SET session_replication_role = replica`);
  });
  afterAll(async () => {
    await su?.end();
    await ds?.destroy();
    await db?.drop();
  });

  it('seals events into a chain that verifies, with checkpoints pushed off the box', async () => {
    const org = await newOrg(ds);
    await record(ds, org, 25);
    expect(await sealingLagSeconds(ds, org)).toBeGreaterThanOrEqual(0);
    const first = await sealOrg(ds, org, { holder: 'test', batchSize: 10 });
    expect(first).toMatchObject({ busy: false, fenced: false });
    expect(first.sealed + (await sealAll(ds, org, { batchSize: 10 }))).toBe(25);
    expect(await sealingLagSeconds(ds, org)).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'steward-cp-'));
    const cp = await checkpointOrg(ds, org, signer, new FileSink(join(dir, 'checkpoints.jsonl')));
    expect(cp).toMatchObject({ org, seq: 25, kid: signer.keyId });
    expect(JSON.parse(readFileSync(join(dir, 'checkpoints.jsonl'), 'utf8').trim())).toEqual(cp);
    const result = await verifyOrg(ds, org, signer.publicKeyPem);
    expect(result).toMatchObject({ ok: true, checked: 25, lastSeq: 25, checkpointsVerified: 1, firstBadSeq: null });
  });

  it('seals in batches bounded by bytes as well as by count (large events never load a whole batch at once), and the chain verifies', async () => {
    const org = await newOrg(ds);
    await record(ds, org, 12);
    const [{ size, least }] = await inOrg(ds, { orgId: org }, (em) => em.query(`SELECT max(octet_length(canonical))::int AS size, min(octet_length(canonical))::int AS least FROM audit_events WHERE org_id = $1`, [org]));
    const batches: number[] = [];
    // Room for about three events a batch (a batch stops at the first event that starts past its bytes): every event sealed once, in order.
    const r = await sealOrg(ds, org, { holder: 'bytes', batchSize: 2000, batchBytes: size * 3, onBatch: (ids) => batches.push(ids.length) });
    expect(r).toMatchObject({ sealed: 12, busy: false, fenced: false });
    const most = Math.ceil((size * 3) / least);
    expect(Math.max(...batches)).toBeLessThanOrEqual(most);
    expect(batches.length).toBeGreaterThanOrEqual(Math.ceil(12 / most));
    expect(batches.length).toBeGreaterThan(1);
    // An event larger than a whole batch's bytes still goes (alone).
    await record(ds, org, 2);
    const alone: number[] = [];
    expect((await sealOrg(ds, org, { holder: 'bytes', batchBytes: 1, onBatch: (ids) => alone.push(ids.length) })).sealed).toBe(2);
    expect(alone).toEqual([1, 1]);
    expect(await verifyOrg(ds, org, null)).toMatchObject({ ok: true, checked: 14 });
  });

  it('refuses a checkpoint under another public key', async () => {
    const org = await newOrg(ds);
    await record(ds, org, 3);
    await sealAll(ds, org);
    await checkpointOrg(ds, org, signer, new FileSink(join(mkdtempSync(join(tmpdir(), 'steward-cp-')), 'c.jsonl')));
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(await verifyOrg(ds, org, other)).toMatchObject({ ok: false, firstBadSeq: 3, reason: expect.stringContaining('signature') });
  });

  describe('tampering by a database superuser is named by sequence number', () => {
    let org: string;
    let ids: string[];
    // One walk, and the same chain walked as two halves at once in pages of three (as long chains are): the same answer.
    const verifyBoth = async (o: string) => {
      const whole = await verifyOrg(ds, o, signer.publicKeyPem);
      expect(await verifyOrg(ds, o, signer.publicKeyPem, 3, 2)).toEqual(whole);
      return whole;
    };
    beforeEach(async () => {
      org = await newOrg(ds);
      ids = await record(ds, org, 12, 'member.suspend');
      await sealAll(ds, org);
      await checkpointOrg(ds, org, signer, new FileSink(join(mkdtempSync(join(tmpdir(), 'steward-cp-')), 'c.jsonl')));
      expect((await verifyBoth(org)).ok).toBe(true);
    });

    it('one field of one event changed', async () => {
      await su.query(`UPDATE audit_events SET canonical = replace(canonical, 'member.suspend', 'member.reactivate') WHERE id = $1`, [ids[6]]);
      expect(await verifyBoth(org)).toMatchObject({ ok: false, firstBadSeq: await seqOf(ds, org, ids[6]) });
    });

    it('one event deleted', async () => {
      await su.query('DELETE FROM audit_events WHERE id = $1', [ids[3]]);
      expect(await verifyBoth(org)).toMatchObject({ ok: false, firstBadSeq: await seqOf(ds, org, ids[3]), reason: expect.stringContaining('missing') });
    });

    it('events deleted and the purge point moved past them, with no partition drop on record', async () => {
      // As if retention had dropped them: the purge point alone does not make a gap a purge.
      await su.query('DELETE FROM audit_events WHERE id = ANY($1)', [ids.slice(2, 5)]);
      await su.query(`UPDATE audit_heads SET purged_before = now() + interval '1 day' WHERE org_id = $1`, [org]);
      expect(await verifyBoth(org)).toMatchObject({ ok: false, firstBadSeq: await seqOf(ds, org, ids[2]), reason: expect.stringContaining('missing') });
    });

    // A first drop (of this month, as the test sees it) and its partition's events gone, its own drop
    // event among them (a later drop removed that partition); then that later drop's event.
    const dropTwice = async (later: { months?: (month: string) => string[] }) => {
      const month = new Date().toISOString().slice(0, 8) + '01';
      const [first] = await record(ds, org, 1, 'audit.partition_drop', { month, partition: 'p1' });
      await sealAll(ds, org);
      await su.query('DELETE FROM audit_events WHERE id = ANY($1)', [[...ids.slice(2, 5), first]]);
      await su.query(`UPDATE audit_heads SET purged_before = now() + interval '1 day' WHERE org_id = $1`, [org]);
      await record(ds, org, 1, 'audit.partition_drop', { month: '2999-01-01', partition: 'p2', ...(later.months ? { months: later.months(month) } : {}) });
      await sealAll(ds, org);
    };

    it('a purge survives later drops: the newest drop event names every month dropped before, also once the older drop events were dropped themselves', async () => {
      await dropTwice({ months: (m: string) => [m, '2999-01-01'] });
      expect(await verifyBoth(org)).toMatchObject({ ok: true, purged: 4 });
    });

    it('a gap whose drop is on record nowhere any more (the later drop event does not name it) is named', async () => {
      await dropTwice({});
      expect(await verifyBoth(org)).toMatchObject({ ok: false, firstBadSeq: await seqOf(ds, org, ids[2]), reason: expect.stringContaining('missing') });
    });

    it("more entries missing in a dropped month than its drop recorded: events deleted to pass as that month's purge", async () => {
      // A real drop of this month (as the test sees it), which held 3 of the org's entries: they are gone, as a drop leaves them.
      const month = new Date().toISOString().slice(0, 8) + '01';
      await record(ds, org, 1, 'audit.partition_drop', { month, partition: 'p1', months: [month], counts: { [month]: 3 } });
      await sealAll(ds, org);
      await su.query('DELETE FROM audit_events WHERE id = ANY($1)', [ids.slice(2, 5)]);
      await su.query(`UPDATE audit_heads SET purged_before = now() + interval '1 day' WHERE org_id = $1`, [org]);
      expect(await verifyBoth(org)).toMatchObject({ ok: true, purged: 3 });
      // One more event deleted (its entry dated in that month, as moving its date there would make it): named.
      await su.query('DELETE FROM audit_events WHERE id = $1', [ids[7]]);
      expect(await verifyBoth(org)).toMatchObject({ ok: false, firstBadSeq: await seqOf(ds, org, ids[7]), reason: expect.stringMatching(/4 entries dated .* have no event, but that month's partition held 3/) });
    });

    it('two events swapped', async () => {
      const [a, b] = [await seqOf(ds, org, ids[4]), await seqOf(ds, org, ids[8])];
      await su.query(
        `UPDATE audit_chain SET event_id = CASE event_id WHEN $1::uuid THEN $2::uuid ELSE $1::uuid END, hash = hash WHERE event_id IN ($1, $2)`,
        [ids[4], ids[8]],
      ).catch(async () => {
        // Unique event ids: swap through a placeholder.
        await su.query(`UPDATE audit_chain SET event_id = '00000000-0000-0000-0000-000000000001' WHERE event_id = $1`, [ids[4]]);
        await su.query(`UPDATE audit_chain SET event_id = $1 WHERE event_id = $2`, [ids[4], ids[8]]);
        await su.query(`UPDATE audit_chain SET event_id = $1 WHERE event_id = '00000000-0000-0000-0000-000000000001'`, [ids[8]]);
      });
      expect(await verifyBoth(org)).toMatchObject({ ok: false, firstBadSeq: Math.min(a, b) });
    });

    it('the tail cut behind a pushed checkpoint', async () => {
      await su.query('DELETE FROM audit_events WHERE id = ANY($1)', [ids.slice(9)]);
      await su.query('DELETE FROM audit_chain WHERE org_id = $1 AND seq > 9', [org]);
      await su.query(`UPDATE audit_heads SET seq = 9, hash = (SELECT hash FROM audit_chain WHERE org_id = $1 AND seq = 9) WHERE org_id = $1`, [org]);
      expect(await verifyBoth(org)).toMatchObject({ ok: false, firstBadSeq: 10, reason: expect.stringContaining('cut') });
    });
  });

  it('makes one chain from four writer processes and two racing sequencer processes; rolled-back events never appear', async () => {
    const org = await newOrg(ds);
    // The acceptance size (4 processes × 10,000 events, ~1 min here); STEWARD_AUDIT_RACE_EVENTS lowers it for quick local runs.
    const PER_WRITER = Number(process.env.STEWARD_AUDIT_RACE_EVENTS ?? 10_000);
    const child = (args: Record<string, unknown>) => {
      const p = fork(join(__dirname, '../../../test/support/audit-race-child.ts'), [JSON.stringify({ url: db.appUrl, org, masterKey: MASTER_KEY, ...args })], {
        execArgv: ['-r', join(__dirname, '../../../test/support/ts-child.cjs')],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const result = new Promise<{ rolledBack?: string[]; sealed?: number; pid: number }>((resolve, reject) => {
        p.once('message', (m) => resolve(m as { pid: number }));
        p.once('exit', (code) => (code ? reject(new Error(`${String(args.role)} process exited with ${code}`)) : undefined));
      });
      return { p, result };
    };
    const sequencers = ['seq-a', 'seq-b'].map((holder) => child({ role: 'sequencer', holder }));
    const writers = [0, 1, 2, 3].map((k) => child({ role: 'writer', k, n: PER_WRITER }));
    let written;
    try {
      written = await Promise.all(writers.map((w) => w.result));
    } finally {
      for (const s of sequencers) s.p.send('stop');
    }
    const sealedBy = await Promise.all(sequencers.map((s) => s.result));
    // Six distinct OS processes.
    expect(new Set([...written, ...sealedBy].map((r) => r.pid)).size).toBe(6);
    const byRacers = sealedBy.reduce((sum, r) => sum + (r.sealed ?? 0), 0);
    // The racers' leases run out; then whoever comes next finishes the backlog.
    let rest = await sealOrg(ds, org, { holder: 'seq-final', leaseSeconds: 2 });
    for (let i = 0; rest.busy && i < 30; i++) {
      await new Promise((res) => setTimeout(res, 200));
      rest = await sealOrg(ds, org, { holder: 'seq-final', leaseSeconds: 2 });
    }
    expect(rest.busy).toBe(false);
    const total = 4 * PER_WRITER;
    expect(byRacers + rest.sealed).toBe(total);
    const result = await verifyOrg(ds, org, null);
    expect(result).toMatchObject({ ok: true, checked: total, lastSeq: total });
    const rolledBack = written.flatMap((w) => w.rolledBack ?? []);
    expect(rolledBack.length).toBe(4 * Math.ceil(PER_WRITER / 250));
    const [{ n }] = await inOrg(ds, { orgId: org }, (em) => em.query('SELECT count(*)::int AS n FROM audit_events WHERE id = ANY($1)', [rolledBack]));
    expect(n).toBe(0);
  }, 300_000);

  it('seals sensitive fields under the org-month key and keeps no clear value', async () => {
    const org = await newOrg(ds);
    const canary = `canary-${randomBytes(6).toString('hex')}@customer.example`;
    await inOrg(ds, { orgId: org }, (em) =>
      recordEvent(em, keyring, { id: newId(), orgId: org, occurredAt: new Date(), actor: { type: 'user', id: null }, action: 'email.send', outcome: 'success', client: 'mcp', payload: { recipients: 1 }, sensitive: { recipients: [canary] } }),
    );
    const { rows } = await su.query('SELECT canonical FROM audit_events WHERE org_id = $1', [org]);
    expect(rows[0].canonical).not.toContain(canary);
    const event = JSON.parse(rows[0].canonical);
    const key = await inOrg(ds, { orgId: org }, (em) => keyring.key(em, org, event.sealed.month, false));
    expect(keyring.open(key!, event.id, event.sealed.ct)).toEqual({ recipients: [canary] });
    expect(event.blind).toEqual([keyring.blind(key!, 'recipients', canary)]);
  });

  it('writes the NDJSON export in the database byte for byte as JSON.stringify writes each line', async () => {
    const org = await newOrg(ds);
    // Every character class JSON string escaping treats specially, and some it must leave alone.
    const tricky = ['quote " backslash \\ slash /', 'controls \u0000\u0001\u0008\t\n\u000b\f\r\u001f\u007f', 'unicode é ü 中文 \u2028\u2029 😀', '<script>&amp;</script>'];
    await record(ds, org, 30, 'file.read', { tricky, long: 'x'.repeat(5000) });
    await sealAll(ds, org);
    const expected: string[] = [];
    for await (const line of exportLines(ds, org, 1, 30)) expected.push(`${JSON.stringify(line)}\n`);
    let text = '';
    let chunks = 0;
    for await (const chunk of exportText(ds, org, 1, 30, 'ndjson', 'test')) {
      text += chunk;
      chunks++;
    }
    expect(text).toBe(expected.join(''));
    expect(chunks).toBeGreaterThan(1); // ~150 kB in chunks under 60,000 characters
    expect(JSON.parse(text.split('\n')[0]).canonical).toContain('\u2028');
  });

  let formatsOrg: Promise<string> | undefined;
  it.each(['ocsf', 'ecs', 'cef', 'csv'] as const)('exports %s from tab-separated pages exactly as it formats the entries themselves', async (format) => {
    formatsOrg ??= (async () => {
      const org = await newOrg(ds);
      const tricky = ['tab \t newline \n carriage \r', 'unicode é 中文 \u2028 😀', 'quote " backslash \\'];
      // Enough entries for pages to go to the formatting threads (pages of 2,000, worker above 100 kB).
      await record(ds, org, 2300, 'email.send', { tricky, pad: 'y'.repeat(200) });
      await sealAll(ds, org);
      return org;
    })();
    const org = await formatsOrg;
    const entries: ExportLine[] = [];
    for await (const line of exportLines(ds, org, 1, 2300)) entries.push(line);
    let text = '';
    for await (const chunk of exportText(ds, org, 1, 2300, format, 'test')) text += chunk;
    expect(text).toBe(formatPage(entries, format, 'test').join(''));
    expect(text.split('\n')).toHaveLength(2301);
  });
});

