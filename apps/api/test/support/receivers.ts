import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * Loopback receivers of outbound notices, speaking the real protocols: an SMTP server (PLAIN/LOGIN
 * authentication, every accepted message kept) and an HTTP endpoint that records each POST (a
 * signed webhook, a Slack incoming webhook).
 */

export interface ReceivedMail {
  from: string;
  to: string[];
  user: string | undefined;
  raw: string;
}

export interface FakeSmtp {
  port: number;
  mails: ReceivedMail[];
  /** Recipient addresses the server refuses (550) while listed. */
  refuse: Set<string>;
  close(): Promise<void>;
}

/** An SMTP server that accepts `user` with `password` only. */
export async function startFakeSmtp(user: string, password: string): Promise<FakeSmtp> {
  const mails: ReceivedMail[] = [];
  const refuse = new Set<string>();
  const smtp = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth: (auth, _session, cb) => (auth.username === user && auth.password === password ? cb(null, { user: auth.username }) : cb(new Error('Invalid username or password'))),
    onRcptTo: (address, _session, cb) => (refuse.has(address.address) ? cb(Object.assign(new Error(`mailbox ${address.address} unavailable`), { responseCode: 550 })) : cb()),
    onData: (stream, session, cb) => {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString('utf8')));
      stream.on('end', () => {
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), user: session.user as string | undefined, raw });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  return { port: (smtp.server.address() as AddressInfo).port, mails, refuse, close: () => new Promise((r) => smtp.close(() => r())) };
}

/** The Subject header, unfolded (RFC 5322: a long header continues on lines starting with white space). */
export const mailSubject = (raw: string) => /^Subject: (.*)$/m.exec(raw.replace(/\r?\n(?=[ \t])/g, ''))?.[1]?.trim();

/** The text body of a plain message, decoded when it is quoted-printable (RFC 2045). */
export function mailText(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const body = raw.slice(split).trim();
  if (!/^Content-Transfer-Encoding: quoted-printable/im.test(raw.slice(0, split))) return body;
  const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

export interface Hook {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface HookReceiver {
  hooks: Hook[];
  /** The status every POST is answered with (default 204); the POST is recorded either way. */
  status: number;
  /** This receiver's URL for a path. */
  url(path: string): string;
  close(): Promise<void>;
}

export async function startHookReceiver(): Promise<HookReceiver> {
  const hooks: Hook[] = [];
  const self = { status: 204 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(self.status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(self, { hooks, url: (path: string) => `http://127.0.0.1:${port}${path}`, close: () => new Promise<void>((r) => server.close(() => r())) });
}
