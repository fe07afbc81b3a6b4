import { isIP } from 'node:net';
import { checkHost, type EgressOptions, guardedFetch } from '@steward/common';
import { createTransport } from 'nodemailer';

/**
 * The org's outbound channels, shared by incident notices and approval notices: e-mail over the
 * org's SMTP server and posts to a Slack incoming webhook, both through the egress rules (the
 * org's allowed hosts). Callers record the outcome; a thrown error is the delivery's failure.
 */

export interface SmtpSettings {
  smtp_host: string | null;
  smtp_port: number | null;
  smtp_secure: boolean;
  smtp_user: string | null;
  smtp_from: string | null;
}

/** The org's egress rules (its allowlist under the operator's ceiling: see orgEgressOptions) and a time limit. */
export interface ChannelOptions extends EgressOptions {
  /** Each step's limit (connect, greeting, each command). */
  timeoutMs?: number;
  /** The whole delivery's limit, every recipient included (default 60 s): a server that answers each step just in time still ends. */
  deadlineMs?: number;
}

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export function smtpConfigured(s: SmtpSettings): boolean {
  return Boolean(s.smtp_host && s.smtp_port && s.smtp_from);
}

/** Sends each message (one per recipient) over one SMTP connection; `onSent` hears each that went out. */
export async function sendMails(s: SmtpSettings, password: string | undefined, options: ChannelOptions, messages: MailMessage[], onSent?: (to: string) => void): Promise<void> {
  if (!s.smtp_host || !s.smtp_port || !s.smtp_from) throw new Error('no SMTP server configured');
  // Connect to the address checked here (nodemailer would resolve the name again: a second answer
  // could point inside the network); TLS still verifies the server's certificate for its name.
  const checked = await checkHost(s.smtp_host, options);
  const address = checked.addresses[0]?.address ?? s.smtp_host;
  const timeout = options.timeoutMs ?? 10_000;
  // One pooled connection for every message; a pool can be closed with a delivery in flight.
  const transport = createTransport({
    pool: true,
    maxConnections: 1,
    host: address,
    port: s.smtp_port,
    secure: s.smtp_secure,
    ...(isIP(s.smtp_host) ? {} : { tls: { servername: s.smtp_host } }),
    auth: s.smtp_user ? { user: s.smtp_user, pass: password ?? '' } : undefined,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  });
  const from = s.smtp_from;
  let expired = false;
  // `force` (nodemailer 10) ends a connection in the middle of a delivery too; @types/nodemailer does not know it yet.
  const closeNow = () => (transport.close as (o?: { force?: boolean }) => void)({ force: true });
  const deadlineMs = options.deadlineMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      closeNow();
      reject(new Error(`the mail server took longer than ${Math.round(deadlineMs / 1000)} s in all`));
    }, deadlineMs);
  });
  try {
    await Promise.race([
      (async () => {
        for (const m of messages) {
          if (expired) return;
          await transport.sendMail({ from, to: m.to, subject: m.subject, text: m.text });
          onSent?.(m.to);
        }
      })(),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
    closeNow();
  }
}

/** Posts a message to a Slack incoming webhook (its URL is a secret: never logged or returned). */
export async function postSlack(url: string, options: ChannelOptions, text: string): Promise<void> {
  const res = await guardedFetch({ ...options, timeoutMs: options.timeoutMs ?? 10_000, maxRedirects: 0 })(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  if (res.status >= 300) throw new Error(`Slack answered ${res.status}`);
}

/** Text from people or agents inside a Slack message: its control characters (&, <, >) escaped, so it cannot form links or mentions. */
export function slackText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
