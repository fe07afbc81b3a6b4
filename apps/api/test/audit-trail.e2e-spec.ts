import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { auditSigner, manifestStatementOf, readCheckpointLog, verifyExport } from '@steward/audit';
import { newId } from '@steward/common';
import { inOrg } from '@steward/db';
import { addUser, type Harness, login, type SeededOrg, seedOrg, startHarness } from './support/harness';

const binary = (res: NodeJS.ReadableStream & { setEncoding?: unknown }, cb: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
};

describe('audit trail through the API', () => {
  let h: Harness;
  let org: SeededOrg;
  let owner: string;
  let auditor: string;
  let admin: string;
  const dir = mkdtempSync(join(tmpdir(), 'steward-audit-'));

  beforeAll(async () => {
    h = await startHarness({ env: { AUDIT_CHECKPOINT_FILE: join(dir, 'checkpoints.jsonl') } });
    org = await seedOrg(h.ds, 'acme');
    owner = await login(h, org.users.owner.email);
    auditor = await login(h, org.users.auditor.email);
    admin = await login(h, org.users.admin.email);
    for (let i = 0; i < 5; i++) await h.http.post('/v1/groups').set('Cookie', admin).send({ name: `Team ${i}` });
  });
  afterAll(() => h?.close());

  it('seals, checkpoints, verifies, exports and verifies the export offline with the auditor\'s key', async () => {
    const cp = await h.http.post('/v1/audit/checkpoints').set('Cookie', owner);
    expect(cp.status).toBe(200);
    expect(cp.body.sealed).toBeGreaterThanOrEqual(8); // three sign-ins, five groups
    expect(cp.body.checkpoint.seq).toBe(cp.body.sealed);
    const pushed = readFileSync(join(dir, 'checkpoints.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(pushed.at(-1)).toMatchObject({ seq: cp.body.checkpoint.seq, signature: cp.body.checkpoint.signature });

    const key = await h.http.get('/v1/audit/public-key').set('Cookie', auditor);
    const publicKeyPem = key.body.publicKeyPem as string;
    const verified = await h.http.post('/v1/audit/verify').set('Cookie', auditor).send({ publicKeyPem });
    expect(verified.body).toMatchObject({ ok: true, publicKey: 'given', checkpointsVerified: 1, firstBadSeq: null });
    const wrongKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect((await h.http.post('/v1/audit/verify').set('Cookie', auditor).send({ publicKeyPem: wrongKey })).body).toMatchObject({ ok: false });

    const manifest = await h.http.get('/v1/audit/export/manifest').set('Cookie', auditor);
    expect(manifest.body).toMatchObject({ fromSeq: 1, count: manifest.body.toSeq, checkpoints: [{ seq: cp.body.checkpoint.seq }] });
    const checkpoints = await h.http.get('/v1/audit/checkpoints').set('Cookie', auditor);
    expect(checkpoints.body.items).toEqual([expect.objectContaining({ seq: cp.body.checkpoint.seq, hash: cp.body.checkpoint.hash, signature: cp.body.checkpoint.signature })]);
    // Reads of the trail are on the trail: the manifest and the checkpoints too.
    const reads = await h.http.get('/v1/audit-events').query({ actorId: org.users.auditor.id, limit: 100 }).set('Cookie', owner);
    expect(reads.body.items.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['audit.manifest', 'audit.checkpoints_read']));
    const exported = await h.http.get('/v1/audit/export').set('Cookie', auditor).buffer(true).parse(binary);
    expect(exported.headers['content-type']).toMatch(/application\/x-ndjson/);
    const text = (exported.body as Buffer).toString('utf8');
    expect(text.trim().split('\n')).toHaveLength(manifest.body.count);
    writeFileSync(join(dir, 'export.ndjson'), text);
    expect(await verifyExport(join(dir, 'export.ndjson'), manifest.body, publicKeyPem)).toMatchObject({ ok: true, checked: manifest.body.count, checkpointsVerified: 1 });
    expect(await verifyExport(join(dir, 'export.ndjson'), manifest.body, wrongKey)).toMatchObject({ ok: false });

    // One changed byte in the export is named by its sequence number.
    const lines = text.trim().split('\n');
    const third = JSON.parse(lines[2]);
    third.canonical = third.canonical.replace('"outcome":"success"', '"outcome":"failure"');
    expect(third.canonical).toContain('"outcome":"failure"');
    lines[2] = JSON.stringify(third);
    writeFileSync(join(dir, 'tampered.ndjson'), `${lines.join('\n')}\n`);
    expect(await verifyExport(join(dir, 'tampered.ndjson'), manifest.body, publicKeyPem)).toMatchObject({ ok: false, firstBadSeq: 3 });

    // The same change with every later hash recomputed and the manifest's end hashes fixed to match,
    // and no checkpoint to catch it: the manifest's own signature covers its last hash, so it fails.
    const rehashed = lines.map((l) => JSON.parse(l) as { seq: number; hash: string; canonical: string });
    for (let i = 2; i < rehashed.length; i++) rehashed[i].hash = createHash('sha256').update(Buffer.concat([Buffer.from(rehashed[i - 1].hash, 'hex'), Buffer.from(rehashed[i].canonical, 'utf8')])).digest('hex');
    writeFileSync(join(dir, 'forged.ndjson'), `${rehashed.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const forged = { ...manifest.body, lastHash: rehashed.at(-1)!.hash, checkpoints: [] };
    const caught = await verifyExport(join(dir, 'forged.ndjson'), forged, publicKeyPem);
    expect(caught).toMatchObject({ ok: false, reason: expect.stringMatching(/differs from what its signature covers/) });
    // An insider with the database and the server: the chain rewritten from seq 3 on, the server's
    // checkpoint rows deleted, so the manifest the API signs covers the rewritten end and lists no
    // checkpoint. The manifest alone passes; the checkpoints the auditor holds (pushed off the box
    // when they were made) do not.
    const insider = { ...manifest.body, lastHash: rehashed.at(-1)!.hash, checkpoints: [], exportedAt: new Date().toISOString() };
    const signed = { ...insider, statement: manifestStatementOf(insider) };
    const byServer = { ...signed, signature: await auditSigner(h.config).sign(Buffer.from(signed.statement, 'utf8')) };
    expect(await verifyExport(join(dir, 'forged.ndjson'), byServer, publicKeyPem)).toMatchObject({ ok: true });
    const held = readCheckpointLog(readFileSync(join(dir, 'checkpoints.jsonl'), 'utf8'));
    expect(await verifyExport(join(dir, 'forged.ndjson'), byServer, publicKeyPem, held)).toMatchObject({ ok: false, firstBadSeq: cp.body.checkpoint.seq, reason: expect.stringMatching(/differs from the signed checkpoint/) });
    expect(await verifyExport(join(dir, 'export.ndjson'), manifest.body, publicKeyPem, held)).toMatchObject({ ok: true, checkpointsVerified: 1 });
    // Entries cut after the last checkpoint the auditor holds: named too.
    const short = text.trim().split('\n').slice(0, -1);
    writeFileSync(join(dir, 'short.ndjson'), `${short.join('\n')}\n`);
    const cut = { ...manifest.body, toSeq: manifest.body.toSeq - 1, count: manifest.body.count - 1, lastHash: JSON.parse(short.at(-1)!).hash, checkpoints: [], exportedAt: new Date().toISOString() };
    const cutSigned = { ...cut, statement: manifestStatementOf(cut) };
    const cutByServer = { ...cutSigned, signature: await auditSigner(h.config).sign(Buffer.from(cutSigned.statement, 'utf8')) };
    expect(await verifyExport(join(dir, 'short.ndjson'), cutByServer, publicKeyPem, held)).toMatchObject({ ok: false, reason: expect.stringMatching(/beyond this export's end/) });
    // Without a signature, or signed by another key: refused before a line is read.
    const { statement: _s, signature: _sig, ...unsigned } = manifest.body;
    expect(await verifyExport(join(dir, 'export.ndjson'), unsigned, publicKeyPem)).toMatchObject({ ok: false, reason: expect.stringMatching(/not signed/) });
    expect(await verifyExport(join(dir, 'export.ndjson'), manifest.body, wrongKey)).toMatchObject({ ok: false, reason: expect.stringMatching(/signature is not accepted/) });
    // A byte outside what the chain covers is still a change: an upper-case hash, a space, a blank line.
    for (const [name, edit] of [
      ['upper', (l: string) => l.replace(/"hash":"([0-9a-f]{64})"/, (_m, h: string) => `"hash":"${h.toUpperCase()}"`)],
      ['space', (l: string) => l.replace('"seq":', '"seq": ')],
      ['blank', (l: string) => `${l}\n`],
    ] as const) {
      const edited = text.trim().split('\n').map((l, i) => (i === 1 ? edit(l) : l));
      writeFileSync(join(dir, `${name}.ndjson`), `${edited.join('\n')}\n`);
      expect({ name, r: await verifyExport(join(dir, `${name}.ndjson`), manifest.body, publicKeyPem) }).toMatchObject({ name, r: { ok: false } });
    }

    const gz = await h.http.get('/v1/audit/export').query({ gzip: 'true' }).set('Cookie', auditor).buffer(true).parse(binary);
    expect(gunzipSync(gz.body as Buffer).toString('utf8')).toBe(text);

    const cef = await h.http.get('/v1/audit/export').query({ format: 'cef' }).set('Cookie', auditor);
    expect(cef.headers['content-type']).toMatch(/text\/plain/);
    expect(cef.text.trim().split('\n')).toHaveLength(manifest.body.count);
    expect(cef.text.trim().split('\n').every((l: string) => l.startsWith('CEF:0|Steward|Steward|'))).toBe(true);
    const csv = await h.http.get('/v1/audit/export').query({ format: 'csv' }).set('Cookie', auditor);
    expect(csv.text.trim().split('\n')).toHaveLength(manifest.body.count + 1);
    const ocsf = await h.http.get('/v1/audit/export').query({ format: 'ocsf' }).set('Cookie', auditor).buffer(true).parse(binary);
    const ocsfEvents = (ocsf.body as Buffer).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(ocsfEvents.map((e: { class_uid: number }) => e.class_uid)).toEqual(expect.arrayContaining([3002, 3006]));
    expect(ocsfEvents.every((e: { metadata: { version: string } }) => e.metadata.version === '1.8.0')).toBe(true);
    const ecs = await h.http.get('/v1/audit/export').query({ format: 'ecs' }).set('Cookie', auditor).buffer(true).parse(binary);
    expect((ecs.body as Buffer).toString('utf8').trim().split('\n').map((l) => JSON.parse(l)['event']['dataset'])).toEqual(Array(manifest.body.count).fill('steward.audit'));

    const events = await h.http.get('/v1/audit-events').query({ action: 'audit.export' }).set('Cookie', owner);
    expect(events.body.items.length).toBe(6);

    // A range after every checkpoint the auditor holds (a server could hand out just that part, rewritten and
    // signed): nothing held covers it, and that is said rather than passed on the manifest's word.
    await login(h, org.users.member.email);
    expect((await h.http.post('/v1/audit/checkpoints').set('Cookie', owner)).body.sealed).toBeGreaterThan(0);
    const after = await h.http.get('/v1/audit/export/manifest').query({ fromSeq: cp.body.checkpoint.seq + 1 }).set('Cookie', auditor);
    expect(after.body.count).toBeGreaterThan(0);
    const tail = await h.http.get('/v1/audit/export').query({ fromSeq: after.body.fromSeq, toSeq: after.body.toSeq }).set('Cookie', auditor).buffer(true).parse(binary);
    writeFileSync(join(dir, 'tail.ndjson'), (tail.body as Buffer).toString('utf8'));
    expect(await verifyExport(join(dir, 'tail.ndjson'), after.body, publicKeyPem)).toMatchObject({ ok: true });
    expect(await verifyExport(join(dir, 'tail.ndjson'), after.body, publicKeyPem, held)).toMatchObject({ ok: false, reason: expect.stringMatching(/before this export starts/) });
  });

  it('keeps personal values out of the table, exports and search, sealed under the org-month key', async () => {
    const canary = 'canary.person.7731@customer.example';
    expect((await h.http.post('/v1/invitations').set('Cookie', admin).send({ email: canary, roles: ['member'] })).status).toBe(201);
    await h.http.post('/v1/audit/checkpoints').set('Cookie', owner);
    const exported = await h.http.get('/v1/audit/export').set('Cookie', auditor).buffer(true).parse(binary);
    expect((exported.body as Buffer).toString('utf8')).not.toContain(canary);
    const search = await h.http.get('/v1/audit-events').query({ action: 'invitation.create' }).set('Cookie', owner);
    expect(search.body.items[0]).toMatchObject({ sealed: true });
    expect(JSON.stringify(search.body)).not.toContain(canary);
    const [{ n }] = await h.ds.transaction(async (em) => {
      await em.query(`SELECT set_config('app.org_id', $1, true)`, [org.id]);
      return em.query(`SELECT count(*)::int AS n FROM audit_events WHERE canonical LIKE $1`, [`%${canary}%`]);
    });
    expect(n).toBe(0);
    expect(h.logs()).not.toContain(canary);

    // Auditors find it by value (blind index) and open it; admins see metadata only.
    const byValue = await h.http.get('/v1/audit-events').query({ value: canary }).set('Cookie', auditor);
    expect(byValue.body.items.map((e: { action: string }) => e.action)).toEqual(['invitation.create']);
    expect((await h.http.get('/v1/audit-events').query({ value: 'someone.else@customer.example' }).set('Cookie', auditor)).body.items).toEqual([]);
    expect((await h.http.get('/v1/audit-events').query({ value: canary }).set('Cookie', admin)).status).toBe(403);
    const opened = await h.http.get(`/v1/audit-events/${byValue.body.items[0].id}/sensitive`).set('Cookie', auditor);
    expect(opened.body).toEqual({ id: byValue.body.items[0].id, fields: { email: canary } });
    expect((await h.http.get(`/v1/audit-events/${byValue.body.items[0].id}/sensitive`).set('Cookie', admin)).status).toBe(403);
    const views = await h.http.get('/v1/audit-events').query({ action: 'audit.payload_view' }).set('Cookie', owner);
    expect(views.body.items).toHaveLength(1);
  });

  it("erases one member's audit fields on request: unreadable, unfindable, listed, audited; refused under legal hold", async () => {
    const security = await login(h, org.users.security.email);
    const canary = 'canary.erasure.5512@customer.example';
    const memberUser = org.users.member.id;
    // Admin's invitation e-mail is sealed under the admin's key; erase the admin.
    expect((await h.http.post('/v1/invitations').set('Cookie', admin).send({ email: canary, roles: ['member'] })).status).toBe(201);
    const found = await h.http.get('/v1/audit-events').query({ value: canary }).set('Cookie', auditor);
    expect(found.body.items).toHaveLength(1);
    const eventId = found.body.items[0].id;
    expect((await h.http.get(`/v1/audit-events/${eventId}/sensitive`).set('Cookie', auditor)).body.fields).toEqual({ email: canary });

    const bad = await h.http.post('/v1/audit/erasures').set('Cookie', security).send({ userId: '01a20000-0000-7000-8000-00000000dead', reason: 'request' });
    expect(bad.status).toBe(404);
    // Nobody erases their own fields (what they searched, the reasons they gave).
    const own = await h.http.post('/v1/audit/erasures').set('Cookie', security).send({ userId: org.users.security.id, reason: 'my own request' });
    expect(own.status).toBe(403);
    expect(own.body.detail).toMatch(/own audit fields/);
    const erased = await h.http.post('/v1/audit/erasures').set('Cookie', security).send({ userId: org.users.admin.id, reason: 'APPI deletion request #4411' });
    expect(erased.status).toBe(201);
    expect(erased.body).toMatchObject({ userId: org.users.admin.id, requestedBy: org.users.security.id });
    expect(erased.body.keysDestroyed).toBeGreaterThanOrEqual(1);

    expect((await h.http.get(`/v1/audit-events/${eventId}/sensitive`).set('Cookie', auditor)).body.fields).toBeNull();
    expect((await h.http.get('/v1/audit-events').query({ value: canary }).set('Cookie', auditor)).body.items).toEqual([]);
    const list = await h.http.get('/v1/audit/erasures').set('Cookie', auditor);
    expect(list.body.items.map((e: { id: string }) => e.id)).toContain(erased.body.id);
    expect((await h.http.get('/v1/audit-events').query({ action: 'audit.erasures_read' }).set('Cookie', owner)).body.items[0]).toMatchObject({ actorId: org.users.auditor.id });
    expect(JSON.stringify(list.body)).not.toContain('APPI');
    const audited = await h.http.get('/v1/audit-events').query({ action: 'audit.erase' }).set('Cookie', owner);
    expect(audited.body.items[0]).toMatchObject({ targetType: 'User', targetId: org.users.admin.id });
    expect(h.logs()).not.toContain(canary);

    // A member under legal hold cannot be erased (problem+json, nothing changed).
    const hold = await h.http.post('/v1/legal-holds').set('Cookie', security).send({ userId: memberUser, from: '2026-01-01T00:00:00Z', reason: 'litigation hold' });
    expect(hold.status).toBe(201);
    const refused = await h.http.post('/v1/audit/erasures').set('Cookie', security).send({ userId: memberUser, reason: 'request' });
    expect(refused.status).toBe(409);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(refused.body.detail).toMatch(/legal hold/);
    expect((await h.http.get('/v1/audit/erasures').set('Cookie', auditor)).body.items).toHaveLength(list.body.items.length);
    // Who is held and why are sealed: an admin searching the trail sees a hold, not its person or reason.
    const placed = (await h.http.get('/v1/audit-events').query({ action: 'legal_hold.create' }).set('Cookie', admin)).body.items.find((e: { targetId: string }) => e.targetId === hold.body.id);
    expect(placed.payload).toEqual({ personal: true, from: '2026-01-01T00:00:00Z', until: null });
    expect(JSON.stringify(placed)).not.toContain('litigation hold');
    expect(JSON.stringify(placed)).not.toContain(memberUser);
    expect((await h.http.get(`/v1/audit-events/${placed.id}/sensitive`).set('Cookie', auditor)).body.fields).toEqual({ userId: memberUser, reason: 'litigation hold' });
    // What the hold kept past retention (copies the purge wrote) goes when it is released, but for what
    // another hold in force covers too (an org-wide one placed after the month's keys were destroyed): that hold keeps it.
    await login(h, org.users.member.email);
    const [{ id: memberEvent }] = await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT id FROM audit_events WHERE org_id = $1 AND actor_id = $2 AND occurred_at >= '2026-01-01' LIMIT 1`, [org.id, memberUser]));
    const orgWide = await h.http.post('/v1/legal-holds').set('Cookie', security).send({ from: '2026-01-01T00:00:00Z', reason: 'regulator inquiry' });
    expect(orgWide.status).toBe(201);
    await inOrg(h.ds, { orgId: org.id }, (em) =>
      em.query(`INSERT INTO audit_held_payloads (org_id, event_id, hold_id, sealed) VALUES ($1, $2, $4, 'sealed-copy'), ($1, $3, $4, 'kept-copy')`, [org.id, newId(), memberEvent, hold.body.id]),
    );
    expect((await h.http.post(`/v1/legal-holds/${hold.body.id}/release`).set('Cookie', security)).status).toBe(200);
    const copiesOf = async (holdId: string) => (await inOrg(h.ds, { orgId: org.id }, (em) => em.query(`SELECT event_id, sealed FROM audit_held_payloads WHERE org_id = $1 AND hold_id = $2`, [org.id, holdId]))) as { event_id: string; sealed: string }[];
    expect(await copiesOf(hold.body.id)).toEqual([]);
    expect(await copiesOf(orgWide.body.id)).toEqual([{ event_id: memberEvent, sealed: 'kept-copy' }]);
    const released = await h.http.get('/v1/audit-events').query({ action: 'legal_hold.release' }).set('Cookie', auditor);
    expect(released.body.items[0].payload).toEqual({ heldCopiesDeleted: 1, heldCopiesKept: 1 });
    expect((await h.http.post(`/v1/legal-holds/${orgWide.body.id}/release`).set('Cookie', security)).status).toBe(200);
    expect(await copiesOf(orgWide.body.id)).toEqual([]);
  });

  it('a former employee (membership gone) can still be put under legal hold and, once released, erased; a stranger cannot', async () => {
    const security = await login(h, org.users.security.email);
    const leaver = await addUser(h.ds, org, 'member', 'leaver');
    await login(h, leaver.email); // an auth.login event: the trail knows them
    await inOrg(h.ds, { orgId: org.id }, async (em) => {
      await em.query(`DELETE FROM role_assignments WHERE org_id = $1 AND user_id = $2`, [org.id, leaver.id]);
      await em.query(`DELETE FROM memberships WHERE org_id = $1 AND user_id = $2`, [org.id, leaver.id]);
    });
    const hold = await h.http.post('/v1/legal-holds').set('Cookie', security).send({ userId: leaver.id, from: '2026-01-01T00:00:00Z', reason: 'litigation about a former employee' });
    expect(hold.status).toBe(201);
    expect((await h.http.post(`/v1/legal-holds/${hold.body.id}/release`).set('Cookie', security)).status).toBe(200);
    const erased = await h.http.post('/v1/audit/erasures').set('Cookie', security).send({ userId: leaver.id, reason: 'deletion request of a former employee' });
    expect(erased.status).toBe(201);
    expect(erased.body.userId).toBe(leaver.id);
    // Someone the org never knew: 404 for both.
    const stranger = newId();
    expect((await h.http.post('/v1/legal-holds').set('Cookie', security).send({ userId: stranger, from: '2026-01-01T00:00:00Z', reason: 'x' })).status).toBe(404);
    expect((await h.http.post('/v1/audit/erasures').set('Cookie', security).send({ userId: stranger, reason: 'x' })).status).toBe(404);
  });

  it("a SIEM sink's token never follows it to another address: a new URL needs its token", async () => {
    const created = await h.http.post('/v1/siem-sinks').set('Cookie', owner).send({ url: 'https://splunk.example.com:8088', token: 'hec-token-kept-secret', enabled: false });
    expect(created.status).toBe(201);
    const moved = await h.http.patch(`/v1/siem-sinks/${created.body.id}`).set('Cookie', owner).send({ url: 'https://splunk.example.com:9443' });
    expect(moved.status).toBe(400);
    expect(moved.body.errors).toEqual([expect.objectContaining({ path: 'token' })]);
    const listed = (await h.http.get('/v1/siem-sinks').set('Cookie', owner)).body.items as { id: string; url: string }[];
    expect(listed.find((x) => x.id === created.body.id)!.url).toBe('https://splunk.example.com:8088');
    const withToken = await h.http.patch(`/v1/siem-sinks/${created.body.id}`).set('Cookie', owner).send({ url: 'https://splunk.example.com:9443', token: 'hec-token-for-the-new-host' });
    expect(withToken.status).toBe(200);
    expect(withToken.body.url).toBe('https://splunk.example.com:9443');
    // Other changes need no token.
    expect((await h.http.patch(`/v1/siem-sinks/${created.body.id}`).set('Cookie', owner).send({ batchSize: 100 })).status).toBe(200);
    // A sink its endpoint refused (held with backoff) shows when it is asked again; an edit asks it at once.
    await inOrg(h.ds, { orgId: org.id }, (em) =>
      em.query(`UPDATE audit_siem_sinks SET held_failures = 3, held_until = now() + interval '2 minutes', last_error = 'HTTP 401 (the sink waits: fix its URL or token)' WHERE org_id = $1 AND id = $2`, [org.id, created.body.id]),
    );
    const held = (await h.http.get('/v1/siem-sinks').set('Cookie', owner)).body.items.find((x: { id: string }) => x.id === created.body.id);
    expect(new Date(held.retryAt).getTime()).toBeGreaterThan(Date.now() + 60_000);
    const edited = await h.http.patch(`/v1/siem-sinks/${created.body.id}`).set('Cookie', owner).send({ token: 'hec-token-rotated' });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ retryAt: null, lastError: null });
  });

  it('pages through the trail with a stable cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { items: { id: string; action: string }[]; nextCursor: string | null } } = await h.http
        .get('/v1/audit-events')
        .query({ limit: 3, actorType: 'user', ...(cursor ? { cursor } : {}) })
        .set('Cookie', owner);
      seen.push(...res.body.items.map((e) => e.id));
      cursor = res.body.nextCursor;
    } while (cursor && seen.length < 500);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThan(10);
    expect((await h.http.get('/v1/audit-events').query({ cursor: 'bm90LWEtY3Vyc29y' }).set('Cookie', owner)).status).toBe(400);
  });

  it('reports sealing lag in readiness (without failing it) and in metrics', async () => {
    const strict = await startHarness({ db: h.db, env: { AUDIT_MAX_LAG_SECONDS: '1' } });
    try {
      await h.http.post('/v1/groups').set('Cookie', admin).send({ name: 'Late' });
      await new Promise((r) => setTimeout(r, 1500));
      // Behind: said, and the replica stays in service (a worker outage must not take the API out).
      const behind = await strict.http.get('/readyz');
      expect(behind.status).toBe(200);
      expect(behind.body.checks.auditSealing).toBe('behind');
      expect(behind.body.auditSealingLagSeconds).toBeGreaterThan(1);
      expect(strict.logs()).toMatch(/audit sealing is behind/);
      expect((await strict.http.get('/metrics')).text).toMatch(/steward_audit_sealing_lag_seconds [1-9]/);
      await h.http.post('/v1/audit/checkpoints').set('Cookie', owner);
      expect((await strict.http.get('/readyz')).body.checks.auditSealing).toBe('ok');
    } finally {
      await strict.close();
    }
  });
});
