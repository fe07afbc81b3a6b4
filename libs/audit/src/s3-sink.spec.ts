import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Checkpoint } from './checkpoint';
import { S3Sink } from './s3-sink';

/**
 * A loopback S3 that speaks the protocol the AWS SDK speaks: path-style PUT/GET, SigV4
 * signatures checked by recomputing them (from the signed headers the request names), the
 * payload hash, Object Lock headers and If-None-Match. It keeps objects and refuses overwrites.
 */
const CREDS = { accessKeyId: 'AKIAFAKEFAKEFAKE', secretAccessKey: 'fake-secret-key-for-the-loopback-s3' };
const REGION = 'eu-central-1';

interface Put {
  key: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const escape = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The SigV4 signature of a received request, per the AWS documentation, or the reason it cannot be checked. */
function expectedSignature(req: IncomingMessage, body: Buffer): { ok: boolean; reason?: string } {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { ok: false, reason: `bad Authorization header: ${auth.slice(0, 60)}` };
  const [, keyId, date, region, signedHeaders, signature] = m;
  if (keyId !== CREDS.accessKeyId || region !== REGION) return { ok: false, reason: 'unknown key or region' };
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256(body)) return { ok: false, reason: 'payload hash mismatch' };
  const url = new URL(req.url ?? '/', 'http://x');
  const query = [...url.searchParams].map(([k, v]) => [escape(k), escape(v)]).sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
  const names = signedHeaders.split(';');
  const canonicalHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [req.method, url.pathname, query, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${CREDS.secretAccessKey}`, date), region), 's3'), 'aws4_request');
  const ok = hmac(key, toSign).toString('hex') === signature;
  return ok ? { ok } : { ok, reason: 'signature mismatch' };
}

async function fakeS3(bucket: string) {
  const objects = new Map<string, string>();
  const puts: Put[] = [];
  let failNext = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const xml = (status: number, code: string) => {
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`);
      };
      const sig = expectedSignature(req, body);
      if (!sig.ok) return xml(403, 'SignatureDoesNotMatch');
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      if (!path.startsWith(`/${bucket}/`)) return xml(404, 'NoSuchBucket');
      const key = path.slice(bucket.length + 2);
      if (req.method === 'PUT') {
        if (failNext > 0) {
          failNext--;
          return xml(403, 'AccessDenied');
        }
        puts.push({ key, headers: req.headers, body: body.toString('utf8') });
        if (!req.headers['x-amz-object-lock-mode'] || !req.headers['x-amz-object-lock-retain-until-date']) return xml(400, 'InvalidRequest');
        const checksum = req.headers['x-amz-checksum-sha256'];
        if (checksum && checksum !== createHash('sha256').update(body).digest('base64')) return xml(400, 'BadDigest');
        if (req.headers['if-none-match'] === '*' && objects.has(key)) return xml(412, 'PreconditionFailed');
        objects.set(key, body.toString('utf8'));
        res.writeHead(200, { etag: `"${sha256(body).slice(0, 32)}"` });
        return res.end();
      }
      if (req.method === 'GET') {
        const o = objects.get(key);
        if (o === undefined) return xml(404, 'NoSuchKey');
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(o) });
        return res.end(o);
      }
      xml(405, 'MethodNotAllowed');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    objects,
    puts,
    failPuts(n: number) {
      failNext = n;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const checkpoint = (seq: number): Checkpoint => ({
  org: '01a20000-0000-7000-8000-000000000001',
  seq,
  hash: 'ab'.repeat(32),
  at: '2026-11-22T01:00:00.000Z',
  kid: 'ed25519:test',
  statement: `{"at":"2026-11-22T01:00:00.000Z","hash":"${'ab'.repeat(32)}","kid":"ed25519:test","org":"01a20000-0000-7000-8000-000000000001","seq":${seq}}`,
  signature: 'c2lnbmF0dXJl',
});

describe('S3 checkpoint sink (loopback S3 speaking SigV4)', () => {
  let s3: Awaited<ReturnType<typeof fakeS3>>;
  let sink: S3Sink;
  beforeEach(async () => {
    s3 = await fakeS3('audit-anchors');
    sink = new S3Sink({ bucket: 'audit-anchors', prefix: 'steward/checkpoints/', region: REGION, endpoint: s3.url, credentials: CREDS, retainDays: 400, timeoutMs: 5000 });
  });
  afterEach(async () => {
    sink.destroy();
    await s3.close();
  });

  it('writes each checkpoint once, signed, locked in compliance mode until retain-until, never overwriting', async () => {
    const before = Date.now();
    await sink.push(checkpoint(42));
    expect(s3.puts).toHaveLength(1);
    const put = s3.puts[0];
    expect(put.key).toBe('steward/checkpoints/01a20000-0000-7000-8000-000000000001/00000000000000000042.json');
    expect(JSON.parse(put.body)).toEqual(checkpoint(42));
    expect(put.headers['x-amz-object-lock-mode']).toBe('COMPLIANCE');
    const until = Date.parse(String(put.headers['x-amz-object-lock-retain-until-date']));
    expect(until).toBeGreaterThanOrEqual(before + 399 * 86_400_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 401 * 86_400_000);
    expect(put.headers['if-none-match']).toBe('*');
    expect(String(put.headers.authorization)).toMatch(/SignedHeaders=[^,]*x-amz-object-lock-mode/);
    // The same checkpoint again (an acknowledgement lost): accepted, object unchanged.
    await sink.push(checkpoint(42));
    expect(s3.objects.size).toBe(1);
  });

  it('refuses to treat a different object under the same key as pushed', async () => {
    await sink.push(checkpoint(7));
    s3.objects.set([...s3.objects.keys()][0], JSON.stringify({ ...checkpoint(7), hash: 'cd'.repeat(32) }));
    await expect(sink.push(checkpoint(7))).rejects.toThrow(/already exists with other content/);
  });

  it('fails with the reason when the bucket refuses (the checkpoint stays pending for the next round)', async () => {
    s3.failPuts(10);
    await expect(sink.push(checkpoint(3))).rejects.toThrow(/S3 checkpoint push failed: AccessDenied.*HTTP 403/);
    expect(s3.objects.size).toBe(0);
  });

  it('is refused by the server when the secret is wrong (the fake really checks signatures)', async () => {
    const wrong = new S3Sink({ bucket: 'audit-anchors', region: REGION, endpoint: s3.url, credentials: { ...CREDS, secretAccessKey: 'another-secret' }, retainDays: 1 });
    await expect(wrong.push(checkpoint(1))).rejects.toThrow(/SignatureDoesNotMatch/);
    wrong.destroy();
    expect(s3.objects.size).toBe(0);
  });
});
