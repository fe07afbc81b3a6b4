import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Client } from 'pg';
import { adminUrl } from '../../../test/support/db-urls';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createLogger, newId } from '@steward/common';
import { createDataSource, type DataSource, inOrg, Org } from '@steward/db';
import { ConfigKeyProvider } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import type { Checkpoint } from './checkpoint';
import { AuditKeyring } from './keyring';
import { startAuditMaintenance } from './maintenance';
import { Ed25519Signer } from './signing';
import { recordEvent } from './record';
import { checkSinkUrl, pushToSiem, sealSinkToken, validateSinkUrl } from './siem';
import { sealAll } from '../../../test/support/seal';
import { exportText } from './export';
import type { PageFormat } from './export-format';

const keys = new ConfigKeyProvider(`v1:${Buffer.alloc(32, 5).toString('base64')}`);
const keyring = new AuditKeyring(keys);
const TOKEN = 'hec-token-7f3a9c1e-5b2d-4e8f-a6c0-d1e2f3a4b5c6';

interface Hec {
  url: string;
  received: { time: number; host: string; source: string; sourcetype: string; event: { steward?: { seq?: number }; event?: { action?: string; sequence?: number } } }[];
  requests: number;
  /** Answers with this status while it returns one (else 200). */
  fail: () => number | null;
  close(): Promise<void>;
}

async function fakeHec(): Promise<Hec> {
  const hec: Hec = { url: '', received: [], requests: 0, fail: () => null, close: async () => {} };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hec.requests++;
      if (req.method !== 'POST' || req.url !== '/services/collector/event') return void res.writeHead(404).end('{"text":"not found","code":404}');
      if (req.headers.authorization !== `Splunk ${TOKEN}`) return void res.writeHead(401).end('{"text":"Invalid token","code":4}');
      const status = hec.fail();
      if (status) return void res.writeHead(status).end('{"text":"Server busy","code":9}');
      for (const line of body.split('\n').filter(Boolean)) hec.received.push(JSON.parse(line));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hec.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hec.close = () => new Promise((r) => server.close(() => r()));
  return hec;
}

async function newOrg(ds: DataSource): Promise<string> {
  const id = newId();
  await inOrg(ds, { orgId: id }, (em) => em.insert(Org, { id, name: 'Acme', slug: `acme-${id.slice(-8)}`, domains: ['acme.example'], requireStepUp: false }));
  return id;
}

async function recordAndSeal(ds: DataSource, orgId: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await inOrg(ds, { orgId }, (em) =>
      recordEvent(em, keyring, { id: newId(), orgId, occurredAt: new Date(), actor: { type: 'user', id: null }, action: 'file.read', outcome: 'success', client: 'rest', payload: { i } }),
    );
  }
  await sealAll(ds, orgId);
}

async function addSink(ds: DataSource, orgId: string, url: string, batchSize = 10): Promise<string> {
  const id = newId();
  const { tokenSealed, tokenWrappedKey } = await sealSinkToken(keys, orgId, id, TOKEN);
  await inOrg(ds, { orgId }, (em) =>
    em.query('INSERT INTO audit_siem_sinks (org_id, id, url, token_sealed, token_wrapped_key, batch_size) VALUES ($1, $2, $3, $4, $5, $6)', [orgId, id, url, tokenSealed, tokenWrappedKey, batchSize]),
  );
  return id;
}

async function sinkRow(ds: DataSource, orgId: string, id: string) {
  const [row] = await inOrg(ds, { orgId }, (em) => em.query('SELECT * FROM audit_siem_sinks WHERE org_id = $1 AND id = $2', [orgId, id]));
  return row as { last_seq: string; last_error: string | null; token_sealed: Buffer; token_wrapped_key: string; url: string };
}

const LOOPBACK = ['127.0.0.1'];

const seqs = (hec: Hec) => hec.received.map((r) => r.event.steward?.seq ?? r.event.event?.sequence);

describe('SIEM push (Splunk HEC, real PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let hec: Hec;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 4 });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });
  beforeEach(async () => {
    hec = await fakeHec();
  });
  afterEach(async () => {
    await hec.close();
  });

  it('delivers every sealed event once, in order, in HEC format, and advances last_seq', async () => {
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 23);
    // Recorded but not sealed yet: not pushed.
    await inOrg(ds, { orgId: org }, (em) => recordEvent(em, keyring, { id: newId(), orgId: org, occurredAt: new Date(), actor: { type: 'user', id: null }, action: 'file.read', outcome: 'success', client: 'rest' }));
    const sink = await addSink(ds, org, hec.url, 10);
    const [r] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1 });
    expect(r).toMatchObject({ sinkId: sink, delivered: 23, deadLettered: 0, lastSeq: 23, error: null });
    expect(hec.requests).toBe(3);
    expect(hec.received).toHaveLength(23);
    for (const e of hec.received) {
      expect(e).toMatchObject({ host: 'steward', source: 'steward:audit', sourcetype: '_json' });
      expect(typeof e.time).toBe('number');
      expect(e.time).toBeGreaterThan(1.7e9);
      expect(e.event.event?.action).toBe('file.read');
    }
    expect(seqs(hec)).toEqual([...Array(23).keys()].map((i) => i + 1));
    expect(Number((await sinkRow(ds, org, sink)).last_seq)).toBe(23);
    // Nothing new: nothing sent again.
    await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1 });
    expect(hec.received).toHaveLength(23);
    // The 24th once sealed.
    await sealAll(ds, org);
    expect((await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1 }))[0]).toMatchObject({ delivered: 1, lastSeq: 24 });
    expect(hec.received).toHaveLength(24);
  });

  it('an event missing from the trail that retention did not purge stops the push there, said on the sink (never skipped)', async () => {
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 6);
    const sink = await addSink(ds, org, hec.url, 10);
    // Someone with the database deletes the fourth event (triggers out of the way).
    const url = new URL(adminUrl());
    url.pathname = `/${db.name}`;
    const su = new Client({ connectionString: url.toString() });
    await su.connect();
    try {
      await su.query(`SET session_replication_role = replica`);
      await su.query(`DELETE FROM audit_events WHERE id = (SELECT event_id FROM audit_chain WHERE org_id = $1 AND seq = 4)`, [org]);
    } finally {
      await su.end();
    }
    const [r] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1 });
    expect(r).toMatchObject({ delivered: 3, lastSeq: 3, error: expect.stringContaining('the event of seq 4 is missing from the trail') });
    expect(seqs(hec)).toEqual([1, 2, 3]);
    const row = await sinkRow(ds, org, sink);
    expect({ lastSeq: Number(row.last_seq), error: row.last_error }).toEqual({ lastSeq: 3, error: expect.stringContaining('not purged by retention') });
    // And again at the next round: the gap is not skipped.
    expect((await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1 }))[0]).toMatchObject({ delivered: 0, lastSeq: 3 });
    expect(seqs(hec)).toEqual([1, 2, 3]);
    // Nor does an export in an event format leave it out unsaid: it stops there. NDJSON keeps the entry (null) for the verifier.
    const exported = async (format: PageFormat) => {
      let text = '';
      for await (const chunk of exportText(ds, org, 1, 6, format, 'test')) text += chunk;
      return text.split('\n').filter(Boolean);
    };
    for (const format of ['csv', 'cef', 'ocsf', 'ecs'] as const) await expect(exported(format)).rejects.toThrow(/the event of seq 4 is missing from the trail/);
    expect((await exported('ndjson')).map((l) => JSON.parse(l).canonical === 'null')).toEqual([false, false, false, true, false, false]);
  });

  it('retries a failing server with backoff and delivers everything', async () => {
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 5);
    const sink = await addSink(ds, org, hec.url, 100);
    let failures = 2;
    hec.fail = () => (failures-- > 0 ? 503 : null);
    const [r] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 5, maxAttempts: 4 });
    expect(r).toMatchObject({ delivered: 5, deadLettered: 0, lastSeq: 5 });
    expect(hec.requests).toBe(3);
    expect(hec.received).toHaveLength(5);
    const row = await sinkRow(ds, org, sink);
    expect(row.last_error).toBeNull();
  });

  it('dead-letters a batch past the retries, audits it, and delivers the next batch once the server recovers', async () => {
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 4);
    const sink = await addSink(ds, org, hec.url, 10);
    hec.fail = () => 500;
    const [r] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1, maxAttempts: 3 });
    expect(r).toMatchObject({ delivered: 0, deadLettered: 4, lastSeq: 4 });
    expect(hec.requests).toBe(3);
    const dead = await inOrg(ds, { orgId: org }, (em) => em.query('SELECT sink_id, from_seq, to_seq, attempts, error FROM audit_siem_dead_letters WHERE org_id = $1', [org]));
    expect(dead).toEqual([{ sink_id: sink, from_seq: '1', to_seq: '4', attempts: 3, error: expect.stringContaining('HTTP 500') }]);
    const events = await inOrg(ds, { orgId: org }, (em) => em.query(`SELECT canonical FROM audit_events WHERE org_id = $1 AND canonical::jsonb->>'action' = 'audit.siem_dead_letter'`, [org]));
    expect(events).toHaveLength(1);
    expect(events[0].canonical).toContain(sink);
    expect(events[0].canonical).not.toContain(TOKEN);
    expect((await sinkRow(ds, org, sink)).last_error).toContain('HTTP 500');

    // The server recovers: the next batch (the dead-letter event itself, and new ones) goes through.
    hec.fail = () => null;
    await recordAndSeal(ds, org, 2);
    const [r2] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1 });
    expect(r2).toMatchObject({ delivered: 3, deadLettered: 0, lastSeq: 7, error: null });
    expect(hec.received.map((e) => e.event.event?.action)).toEqual(['audit.siem_dead_letter', 'file.read', 'file.read']);
    expect((await sinkRow(ds, org, sink)).last_error).toBeNull();
  });

  it('does not retry a 4xx other than 408/429: a batch the endpoint refuses (400) is dead-lettered at once', async () => {
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 2);
    await addSink(ds, org, hec.url, 10);
    hec.fail = () => 400;
    const [r] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1, maxAttempts: 4 });
    expect(r).toMatchObject({ deadLettered: 2 });
    expect(hec.requests).toBe(1);
  });

  it('a refused token or a URL gone (401, 403, 404) holds the sink where it is: nothing dead-lettered, nothing skipped, said on the sink', async () => {
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 30);
    const sink = await addSink(ds, org, hec.url, 10);
    const heldFor = async () => {
      const [row] = await inOrg(ds, { orgId: org }, (em) => em.query(`SELECT held_failures, extract(epoch FROM held_until - now())::float AS wait FROM audit_siem_sinks WHERE org_id = $1 AND id = $2`, [org, sink]));
      return row as { held_failures: number; wait: number | null };
    };
    let n = 0;
    for (const status of [401, 403, 404]) {
      hec.fail = () => status;
      const [r] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1, maxAttempts: 4 });
      expect(r).toMatchObject({ delivered: 0, deadLettered: 0, lastSeq: 0, error: expect.stringContaining(`HTTP ${status}`) });
      const row = await sinkRow(ds, org, sink);
      expect(row.last_seq).toBe('0');
      expect(row.last_error).toMatch(/the sink waits: fix its URL or token/);
      // Held with backoff (30 s, 60 s, 120 s …): the next rounds do not ask the endpoint again meanwhile.
      const held = await heldFor();
      expect(held.held_failures).toBe(++n);
      expect(held.wait).toBeGreaterThan(30 * 2 ** (n - 1) - 5);
      expect(held.wait).toBeLessThanOrEqual(30 * 2 ** (n - 1));
      expect(await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1 })).toEqual([]);
      expect(hec.requests).toBe(n);
      // (The wait is over.)
      await inOrg(ds, { orgId: org }, (em) => em.query(`UPDATE audit_siem_sinks SET held_until = now() - interval '1 second' WHERE org_id = $1 AND id = $2`, [org, sink]));
    }
    expect(await inOrg(ds, { orgId: org }, (em) => em.query('SELECT 1 FROM audit_siem_dead_letters WHERE org_id = $1', [org]))).toEqual([]);
    // Fixed: everything goes, from the first event, and the backoff starts over.
    hec.fail = () => null;
    const [r] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, baseDelayMs: 1 });
    expect(r).toMatchObject({ delivered: 30, deadLettered: 0, lastSeq: 30, error: null });
    expect(seqs(hec)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(await heldFor()).toEqual({ held_failures: 0, wait: null });
  });

  it('a sink has a time budget per round: a slow endpoint is taken up again where it stopped, next round', async () => {
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 20);
    await addSink(ds, org, hec.url, 5);
    const slow: typeof fetch = async (input, init) => {
      await new Promise((r) => setTimeout(r, 60));
      return fetch(input, init);
    };
    const [first] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, fetchImpl: slow, budgetMs: 100 });
    expect(first!.delivered).toBeGreaterThan(0);
    expect(first!.delivered).toBeLessThan(20);
    const rounds = [first!];
    while (rounds.at(-1)!.lastSeq < 20 && rounds.length < 20) rounds.push((await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, fetchImpl: slow, budgetMs: 100 }))[0]!);
    expect(rounds.at(-1)!.lastSeq).toBe(20);
    expect(seqs(hec)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('a sink edited or disabled while a round pushes to it gets nothing more from that round', async () => {
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 20);
    const sink = await addSink(ds, org, hec.url, 5);
    let posts = 0;
    const editing: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      // After the first batch, an admin points the sink elsewhere (its old endpoint is compromised).
      if (++posts === 1) await inOrg(ds, { orgId: org }, (em) => em.query(`UPDATE audit_siem_sinks SET url = 'https://siem.new.example' WHERE org_id = $1 AND id = $2`, [org, sink]));
      return res;
    };
    const [r] = await pushToSiem(ds, keys, org, { allowHosts: LOOPBACK, fetchImpl: editing });
    expect(posts).toBe(1);
    expect(r!.lastSeq).toBe(0);
    expect(hec.received).toHaveLength(5);
  });

  it("an endpoint that never answers holds back no org's checkpoints (SIEM pushes run in a loop of their own)", async () => {
    // One org's SIEM hangs on every request (until its time limit).
    const hanging = createServer(() => undefined);
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const stuck = await newOrg(ds);
    await recordAndSeal(ds, stuck, 50);
    await addSink(ds, stuck, `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`, 1);
    const other = await newOrg(ds);
    await recordAndSeal(ds, other, 1);
    const pushed: Checkpoint[] = [];
    const maintenance = startAuditMaintenance({
      dataSource: ds,
      signer: new Ed25519Signer(randomBytes(32).toString('base64')),
      sink: { name: 'memory', push: async (c) => void pushed.push(c) },
      log: createLogger({ level: 'silent' }),
      sealEveryMs: 50,
      checkpointEverySeconds: 1,
      keyring,
      siemKeys: keys,
      egressAllowHosts: LOOPBACK,
    });
    try {
      // Before: the checkpoints waited for every org's SIEM push (here ~40 s per event).
      for (let i = 0; i < 100 && !pushed.some((c) => c.org === other); i++) await new Promise((r) => setTimeout(r, 100));
      expect(pushed.some((c) => c.org === other)).toBe(true);
    } finally {
      hanging.closeAllConnections();
      await new Promise((r) => hanging.close(r));
      await maintenance.stop();
    }
  }, 30_000);

  it('never stores the token in clear, and binds it to the org and the sink', async () => {
    const org = await newOrg(ds);
    const sink = await addSink(ds, org, hec.url);
    const row = await sinkRow(ds, org, sink);
    const all = JSON.stringify(row) + Buffer.from(row.token_sealed).toString('latin1');
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(Buffer.from(TOKEN).toString('base64'));
    // Moved to another sink id: the token no longer opens, so nothing is sent.
    const other = await newOrg(ds);
    await recordAndSeal(ds, other, 1);
    const moved = newId();
    await inOrg(ds, { orgId: other }, (em) =>
      em.query('INSERT INTO audit_siem_sinks (org_id, id, url, token_sealed, token_wrapped_key) VALUES ($1, $2, $3, $4, $5)', [other, moved, hec.url, row.token_sealed, row.token_wrapped_key]),
    );
    const [r] = await pushToSiem(ds, keys, other, { allowHosts: LOOPBACK, baseDelayMs: 1 });
    expect(r).toMatchObject({ delivered: 0, lastSeq: 0 });
    expect(r.error).toBeTruthy();
    expect(hec.requests).toBe(0);
  });

  it('accepts public https URLs; loopback and private hosts only when the operator allowlisted them', () => {
    expect(validateSinkUrl('https://splunk.example.com:8088/')).toBe('https://splunk.example.com:8088');
    expect(validateSinkUrl('http://127.0.0.1:8088', ['127.0.0.1'])).toBe('http://127.0.0.1:8088');
    expect(validateSinkUrl('http://localhost:8088', ['localhost'])).toBe('http://localhost:8088');
    expect(validateSinkUrl('https://siem.corp.internal', ['*.corp.internal'])).toBe('https://siem.corp.internal');
    for (const bad of ['http://splunk.example.com', 'http://127.0.0.1:8088', 'https://localhost', 'https://10.0.0.5', 'https://192.168.1.2', 'https://169.254.169.254', 'https://172.16.0.1', 'https://[fd00::1]', 'https://[::1]', 'https://[::ffff:10.0.0.1]', 'https://siem.corp.internal', 'ftp://x.example', 'https://u:p@x.example', 'not a url']) {
      expect(() => validateSinkUrl(bad)).toThrow();
    }
  });

  it('refuses a host name whose DNS answers are private, when saved and at every push (rebinding)', async () => {
    const answers: Record<string, string[]> = { 'splunk.evil.example': ['10.0.0.7'], 'hec.example.com': ['34.120.0.9'] };
    const resolver = async (host: string) => (answers[host] ?? []).map((address) => ({ address, family: 4 as const }));
    await expect(checkSinkUrl('https://splunk.evil.example', { resolver })).rejects.toThrow(/10\.0\.0\.7.*private/);
    await expect(checkSinkUrl('https://hec.example.com', { resolver })).resolves.toBe('https://hec.example.com');
    // Saved while it resolved to a public address, then rebound to the metadata address: nothing is sent.
    const org = await newOrg(ds);
    await recordAndSeal(ds, org, 3);
    const sink = await addSink(ds, org, 'https://hec.example.com');
    answers['hec.example.com'] = ['169.254.169.254'];
    const [r] = await pushToSiem(ds, keys, org, { baseDelayMs: 1, maxAttempts: 1, resolver });
    expect(r).toMatchObject({ delivered: 0 });
    expect(r.error).toMatch(/169\.254\.169\.254/);
    expect((await sinkRow(ds, org, sink)).last_error).toMatch(/link-local|metadata|169\.254/);
    expect(hec.requests).toBe(0);
  });
});
