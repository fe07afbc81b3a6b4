import { calendar } from '@googleapis/calendar';
import { drive } from '@googleapis/drive';
import { gmail, type gmail_v1 } from '@googleapis/gmail';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { domainOf, isInternal } from '@steward/policy';
import { ConnectorError } from '../errors';
import type { ConnectorManifest } from '../manifest';
import { mailbox, parseAddresses } from '../manifest';
import { defineTool } from '../tool-result';
import { bearer, externalLabel, fromSdkError, noCrLf, type SaasOptions, senderLabel } from './common';

/**
 * Gmail, Google Drive and Google Calendar, on Google's own Node clients (@googleapis/*). The
 * access token comes from `getCredential` on every call and is sent as a bearer header; the base
 * URL (`rootUrl`) is configurable so tests run against loopback fakes of the same REST shapes.
 */

export interface GoogleOptions extends SaasOptions {
  /** The org's own mail domains (mail from elsewhere is labelled "external"). */
  orgDomains?: string[];
}

const GOOGLE_ROOT = 'https://www.googleapis.com/';
const GMAIL_ROOT = 'https://gmail.googleapis.com/';

function rootOf(opts: GoogleOptions, fallback: string): string {
  return opts.baseUrl ? `${opts.baseUrl.replace(/\/+$/, '')}/` : fallback;
}

async function callOpts(opts: GoogleOptions, service: string) {
  // rootUrl per call too: the media upload URL of a method is built from the call's options.
  return { headers: { Authorization: `Bearer ${await bearer(opts.getCredential, service)}` }, retry: false, ...(opts.baseUrl ? { rootUrl: rootOf(opts, '') } : {}) } as const;
}

async function google<T>(service: string, fn: () => Promise<{ data: T }>): Promise<T> {
  try {
    return (await fn()).data;
  } catch (err) {
    throw fromSdkError(service, err);
  }
}

// ---------------------------------------------------------------------------------------------
// Gmail

const b64url = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

function encodeHeader(value: string): string {
   
  return /^[\x20-\x7E]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

export function buildRfc822(m: { to: string[]; cc?: string[]; subject: string; body: string }): string {
  // Each entry one mailbox, sent as the address the policy was shown (the domain after its last "@").
  const addrs = (list: string[], field: string) =>
    list.map((a) => {
      noCrLf(a, field);
      const address = mailbox(a);
      if (!address) throw new ConnectorError('bad_arguments', `${field}: "${a.slice(0, 200)}" is not one mail address`);
      return address;
    });
  const lines = [`To: ${addrs(m.to, 'to').join(', ')}`];
  if (m.cc?.length) lines.push(`Cc: ${addrs(m.cc, 'cc').join(', ')}`);
  lines.push(`Subject: ${encodeHeader(noCrLf(m.subject, 'subject'))}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset="UTF-8"', 'Content-Transfer-Encoding: base64', '', Buffer.from(m.body, 'utf8').toString('base64'));
  return lines.join('\r\n');
}

function header(msg: gmail_v1.Schema$Message, name: string): string {
  return msg.payload?.headers?.find((h) => h.name?.toLowerCase() === name.toLowerCase())?.value ?? '';
}

/** The receiving server's verdict on a message: its topmost Authentication-Results header (null: none). */
function verdictOf(msg: gmail_v1.Schema$Message): string | null {
  return msg.payload?.headers?.find((h) => h.name?.toLowerCase() === 'authentication-results')?.value ?? null;
}

function bodyText(part: gmail_v1.Schema$MessagePart | undefined): string {
  if (!part) return '';
  if (part.mimeType === 'text/plain' && part.body?.data) return Buffer.from(part.body.data, 'base64url').toString('utf8');
  for (const p of part.parts ?? []) {
    const t = bodyText(p);
    if (t) return t;
  }
  return part.body?.data ? Buffer.from(part.body.data, 'base64url').toString('utf8') : '';
}

const mailShape = {
  to: z.array(z.string().max(320)).min(1).max(100),
  cc: z.array(z.string().max(320)).max(100).optional(),
  subject: z.string().max(998),
  body: z.string().max(1_000_000),
};

const SEND_DRAFT = 'Send a draft as it is. Name all its recipients in to and cc: a draft addressed to anyone else (Bcc included) is not sent.';

export function createGmailServer(opts: GoogleOptions): McpServer {
  const svc = 'Gmail';
  const api = gmail({ version: 'v1', rootUrl: rootOf(opts, GMAIL_ROOT) });
  const server = new McpServer({ name: 'steward-gmail', version: '1.0.0' });
  const domains = opts.orgDomains ?? [];

  defineTool(server, svc, 'gmail.search', { description: 'Search mail (Gmail query syntax).', inputSchema: { query: z.string().max(1000), maxResults: z.number().int().min(1).max(50).optional() }, readOnly: true }, async (a) => {
    const o = await callOpts(opts, svc);
    const list = await google(svc, () => api.users.messages.list({ userId: 'me', q: a.query, maxResults: a.maxResults ?? 10 }, o));
    const messages = [];
    const verdicts: (string | null)[] = [];
    for (const m of list.messages ?? []) {
      const msg = await google(svc, () => api.users.messages.get({ userId: 'me', id: m.id!, format: 'metadata', metadataHeaders: ['From', 'To', 'Subject', 'Date', 'Authentication-Results'] }, o));
      verdicts.push(verdictOf(msg));
      messages.push({ id: msg.id, threadId: msg.threadId, from: header(msg, 'From'), to: header(msg, 'To'), subject: header(msg, 'Subject'), date: header(msg, 'Date'), snippet: msg.snippet ?? '' });
    }
    return { data: { messages }, labels: senderLabel(messages.map((m) => m.from), domains, parseAddresses, verdicts) };
  });

  defineTool(server, svc, 'gmail.read', { description: 'Read one message.', inputSchema: { id: z.string().max(256) }, readOnly: true }, async (a) => {
    const msg = await google(svc, async () => api.users.messages.get({ userId: 'me', id: a.id, format: 'full' }, await callOpts(opts, svc)));
    const from = header(msg, 'From');
    return {
      data: { id: msg.id, threadId: msg.threadId, from, to: header(msg, 'To'), subject: header(msg, 'Subject'), date: header(msg, 'Date'), body: bodyText(msg.payload) },
      labels: senderLabel([from], domains, parseAddresses, [verdictOf(msg)]),
    };
  });

  defineTool(server, svc, 'gmail.create_draft', { description: 'Create a draft (nothing is sent).', inputSchema: mailShape }, async (a) => {
    const raw = b64url(buildRfc822(a));
    const draft = await google(svc, async () => api.users.drafts.create({ userId: 'me', requestBody: { message: { raw } } }, await callOpts(opts, svc)));
    return { data: { draftId: draft.id, messageId: draft.message?.id } };
  });

  defineTool(server, svc, 'gmail.delete_draft', { description: 'Delete a draft.', inputSchema: { draftId: z.string().max(256) }, destructive: true }, async (a) => {
    await google(svc, async () => api.users.drafts.delete({ userId: 'me', id: a.draftId }, await callOpts(opts, svc)));
    return { data: { draftId: a.draftId, deleted: true } };
  });

  defineTool(server, svc, 'gmail.send_draft', { description: SEND_DRAFT, inputSchema: { draftId: z.string().max(256), to: mailShape.to, cc: mailShape.cc } }, async (a) => {
    // The policy decided on the recipients named here: the draft goes only if it is addressed to no one else.
    const named = new Set([...a.to, ...(a.cc ?? [])].map((x) => {
      const address = mailbox(noCrLf(x, 'to'));
      if (!address) throw new ConnectorError('bad_arguments', `to/cc: "${x.slice(0, 200)}" is not one mail address`);
      return address;
    }));
    // One credential read for both calls (each read is a decrypt, audited).
    const o = await callOpts(opts, svc);
    const draft = await google(svc, () => api.users.drafts.get({ userId: 'me', id: a.draftId, format: 'metadata' }, o));
    const addressed = ['To', 'Cc', 'Bcc'].flatMap((h) => (draft.message?.payload?.headers ?? []).filter((x) => x.name?.toLowerCase() === h.toLowerCase()).flatMap((x) => parseAddresses(x.value ?? '')));
    const others = [...new Set(addressed.filter((x) => !named.has(x)))];
    if (others.length) {
      throw new ConnectorError('bad_arguments', `gmail.send_draft: the draft is also addressed to ${others.slice(0, 5).join(', ')}${others.length > 5 ? ` and ${others.length - 5} more` : ''}, not named in to/cc: nothing was sent`);
    }
    if (!addressed.length) throw new ConnectorError('bad_arguments', 'gmail.send_draft: the draft has no recipients: nothing was sent');
    const sent = await google(svc, () => api.users.drafts.send({ userId: 'me', requestBody: { id: a.draftId } }, o));
    return { data: { draftId: a.draftId, messageId: sent.id, threadId: sent.threadId } };
  });

  defineTool(server, svc, 'gmail.send', { description: 'Send a message.', inputSchema: mailShape }, async (a) => {
    const raw = b64url(buildRfc822(a));
    const sent = await google(svc, async () => api.users.messages.send({ userId: 'me', requestBody: { raw } }, await callOpts(opts, svc)));
    return { data: { messageId: sent.id, threadId: sent.threadId } };
  });
  return server;
}

// ---------------------------------------------------------------------------------------------
// Drive

export interface DriveOptions extends GoogleOptions {
  /** Drive label ids → the label Steward attaches ("confidential"); others become "drive-label:<id>". */
  sensitivityLabels?: Record<string, string>;
}

/** The most of a file drive.read reads (more than a tool result may hold anyway). */
const DRIVE_MAX_TEXT_BYTES = 1024 * 1024;
/** The largest file drive.update replaces: its previous content comes back in the result, for the undo. */
const DRIVE_MAX_UNDO_BYTES = 512 * 1024;
const TEXT_TYPE = /^(text\/|application\/(json|xml|csv|x-yaml|yaml|javascript|x-sh|sql)\b|[^;]*\+(json|xml)\b)/i;

/** A text file (by its type) of at most `max` bytes, or a bad_arguments error saying which it is not. */
function textFile(meta: { name?: string | null; mimeType?: string | null; size?: string | null }, what: string, max = DRIVE_MAX_TEXT_BYTES, tooLarge: 'result_too_large' | 'bad_arguments' = 'result_too_large'): void {
  const type = meta.mimeType ?? 'unknown';
  if (!TEXT_TYPE.test(type)) throw new ConnectorError('bad_arguments', `${what}; "${(meta.name ?? '').slice(0, 100)}" is ${type.slice(0, 100)}: nothing was done`);
  const size = Number(meta.size ?? 0);
  if (size > max) throw new ConnectorError(tooLarge, `${what} of at most ${max} bytes; "${(meta.name ?? '').slice(0, 100)}" has ${size}: nothing was done`, { bytes: size, limit: max });
}

/** A download cut at its maxContentLength (node-fetch's "max-size") as the given error. */
async function capped<T>(fileId: string, code: 'result_too_large' | 'bad_arguments', read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const e = err as { type?: string; message?: string; cause?: { type?: string } };
    if (e.type === 'max-size' || e.cause?.type === 'max-size' || /over limit/.test(e.message ?? '')) {
      throw new ConnectorError(code, `Google Drive: file ${fileId.slice(0, 100)} is larger than the limit of this call: nothing was done`);
    }
    throw err;
  }
}

export function createDriveServer(opts: DriveOptions): McpServer {
  const svc = 'Google Drive';
  const api = drive({ version: 'v3', rootUrl: rootOf(opts, GOOGLE_ROOT) });
  const server = new McpServer({ name: 'steward-drive', version: '1.0.0' });
  const labelIds = Object.keys(opts.sensitivityLabels ?? {});
  const labelsOf = (file: { labelInfo?: { labels?: { id?: string | null }[] } | null }) =>
    (file.labelInfo?.labels ?? []).map((l) => l.id ?? '').filter(Boolean).map((id) => opts.sensitivityLabels?.[id] ?? `drive-label:${id}`);
  const FIELDS = 'id,name,mimeType,modifiedTime,webViewLink,labelInfo,owners(emailAddress)';
  // "external" unless every owner of the file is inside the org's domains: a document an outsider
  // shared (it shows in search and "Shared with me") is outside content, as outside mail is. Fail
  // closed: no owner to read (a shared drive's file, an address missing) counts as outside.
  const originOf = (file: { owners?: { emailAddress?: string | null }[] | null }) => {
    const owners = (file.owners ?? []).map((o) => domainOf(o.emailAddress ?? ''));
    return owners.length && owners.every((d) => d && isInternal(d, opts.orgDomains ?? [])) ? [] : ['external'];
  };
  const labelsAndOrigin = (file: Parameters<typeof labelsOf>[0] & Parameters<typeof originOf>[0]) => [...labelsOf(file), ...originOf(file)];

  defineTool(server, svc, 'drive.search', { description: 'Search Drive files by name or content.', inputSchema: { query: z.string().max(500), pageSize: z.number().int().min(1).max(100).optional() }, readOnly: true }, async (a) => {
    const q = `fullText contains '${a.query.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}' and trashed = false`;
    const res = await google(svc, async () => api.files.list({ q, pageSize: a.pageSize ?? 20, fields: `files(${FIELDS})`, includeLabels: labelIds.join(',') || undefined }, await callOpts(opts, svc)));
    const files = (res.files ?? []).map((f) => ({ id: f.id, name: f.name, mimeType: f.mimeType, modifiedTime: f.modifiedTime, labels: labelsAndOrigin(f) }));
    return { data: { files }, labels: [...new Set(files.flatMap((f) => f.labels))] };
  });

  defineTool(server, svc, 'drive.read', { description: 'Read a Drive file as text (Google Docs exported as plain text).', inputSchema: { fileId: z.string().max(256) }, readOnly: true }, async (a) => {
    const o = await callOpts(opts, svc);
    const meta = await google(svc, () => api.files.get({ fileId: a.fileId, fields: `${FIELDS},size`, includeLabels: labelIds.join(',') || undefined }, o));
    const isDoc = meta.mimeType?.startsWith('application/vnd.google-apps.');
    if (!isDoc) textFile(meta, 'drive.read reads text files and Google Docs');
    // Read at most DRIVE_MAX_TEXT_BYTES (an export's size is known only as it comes).
    const content = await google(svc, () =>
      capped(a.fileId, 'result_too_large', () =>
        (isDoc
          ? api.files.export({ fileId: a.fileId, mimeType: 'text/plain' }, { ...o, responseType: 'text', maxContentLength: DRIVE_MAX_TEXT_BYTES })
          : api.files.get({ fileId: a.fileId, alt: 'media' }, { ...o, responseType: 'text', maxContentLength: DRIVE_MAX_TEXT_BYTES })) as Promise<{ data: unknown }>,
      ),
    );
    const labels = labelsAndOrigin(meta);
    return { data: { id: meta.id, name: meta.name, mimeType: meta.mimeType, content: String(content), labels }, labels };
  });

  defineTool(server, svc, 'drive.create', { description: 'Create a Drive file.', inputSchema: { name: z.string().max(255), content: z.string().max(5_000_000), mimeType: z.string().max(100).optional(), parentId: z.string().max(256).optional() } }, async (a) => {
    const mimeType = a.mimeType ?? 'text/plain';
    const f = await google(svc, async () =>
      api.files.create({ requestBody: { name: a.name, mimeType, parents: a.parentId ? [a.parentId] : undefined }, media: { mimeType, body: a.content }, fields: 'id,name' }, await callOpts(opts, svc)),
    );
    return { data: { fileId: f.id, name: f.name } };
  });

  defineTool(server, svc, 'drive.update', { description: 'Replace the content of a Drive file; the previous content is returned for undo.', inputSchema: { fileId: z.string().max(256), content: z.string().max(5_000_000) } }, async (a) => {
    const o = await callOpts(opts, svc);
    const meta = await google(svc, () => api.files.get({ fileId: a.fileId, fields: 'id,name,mimeType,size' }, o));
    // Its undo writes the previous content back as text: only a text file that size can be put back
    // (a Google Doc, a spreadsheet or a PDF could not be), so nothing else is changed.
    // (bad_arguments, not result_too_large: nothing was written, so the call is not one that may have acted.)
    textFile(meta, 'drive.update replaces text files', DRIVE_MAX_UNDO_BYTES, 'bad_arguments');
    // The new content within the same limit: else the undo (which replaces it in turn) could not run.
    const bytes = Buffer.byteLength(a.content);
    if (bytes > DRIVE_MAX_UNDO_BYTES) throw new ConnectorError('bad_arguments', `drive.update writes at most ${DRIVE_MAX_UNDO_BYTES} bytes (so that it can be undone); the content has ${bytes}: nothing was done`);
    const stored = await google(svc, () =>
      capped(a.fileId, 'bad_arguments', () => api.files.get({ fileId: a.fileId, alt: 'media' }, { ...o, responseType: 'arraybuffer', maxContentLength: DRIVE_MAX_UNDO_BYTES }) as Promise<{ data: unknown }>),
    );
    // Put back as text, it must be UTF-8 text to come back byte for byte (a Latin-1 CSV would come back with its accents lost).
    let previous: string;
    try {
      previous = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(stored as ArrayBuffer));
    } catch {
      throw new ConnectorError('bad_arguments', `drive.update replaces UTF-8 text files; "${(meta.name ?? '').slice(0, 100)}" is in another encoding (it could not be put back as it was): nothing was done`);
    }
    // A "text" file holding NUL characters (UTF-16, a binary with a text type) could not be put back as it was.
    if (previous.includes('\0')) throw new ConnectorError('bad_arguments', `drive.update replaces text files; "${(meta.name ?? '').slice(0, 100)}" holds NUL characters (not text that can be put back): nothing was done`);
    await google(svc, () => api.files.update({ fileId: a.fileId, media: { mimeType: meta.mimeType ?? 'text/plain', body: a.content }, fields: 'id' }, o));
    return { data: { fileId: a.fileId, previousContent: previous } };
  });

  defineTool(server, svc, 'drive.trash', { description: 'Move a Drive file to the trash.', inputSchema: { fileId: z.string().max(256) }, destructive: true }, async (a) => {
    await google(svc, async () => api.files.update({ fileId: a.fileId, requestBody: { trashed: true }, fields: 'id' }, await callOpts(opts, svc)));
    return { data: { fileId: a.fileId, trashed: true } };
  });
  return server;
}

// ---------------------------------------------------------------------------------------------
// Calendar

/** The event's attendees and its organiser (who is told too, even when not among them) the call does not name, you aside. */
function unnamed(ev: { attendees?: { email?: string | null; self?: boolean | null }[] | null; organizer?: { email?: string | null; self?: boolean | null } | null }, named: Set<string>): string[] {
  const people = [...(ev.attendees ?? []), ...(ev.organizer ? [ev.organizer] : [])];
  return [...new Set(people.filter((x) => !x.self && x.email && !named.has(x.email.toLowerCase())).map((x) => x.email!))];
}
type CallOpts = Awaited<ReturnType<typeof callOpts>>;

/** The call made only if the event is still as it was read (its etag): Google answers 412 otherwise, and nothing is written. */
function ifUnchanged(o: CallOpts, ev: { etag?: string | null }): CallOpts {
  if (!ev.etag) throw new ConnectorError('upstream_error', 'Google Calendar: the event came without its etag, so it cannot be written only as it was read: nothing was done');
  return { ...o, headers: { ...o.headers, 'If-Match': ev.etag } } as CallOpts;
}

const listOf = (xs: string[]) => `${xs.slice(0, 5).join(', ')}${xs.length > 5 ? ` and ${xs.length - 5} more` : ''}`;

const DELETE_EVENT = "Delete an event. With notify its attendees are sent the cancellation: name them all in attendees (an attendee not named stops the call; you are not one).";

export function createCalendarServer(opts: GoogleOptions): McpServer {
  const svc = 'Google Calendar';
  const api = calendar({ version: 'v3', rootUrl: rootOf(opts, GOOGLE_ROOT) });
  const server = new McpServer({ name: 'steward-calendar', version: '1.0.0' });
  const when = z.string().max(64).refine((v) => !Number.isNaN(Date.parse(v)), 'an ISO 8601 date-time');
  const attendees = z.array(z.email()).max(200).optional();
  // Taken in lower case, as the policy's facts name it (Google reads calendar ids without regard to case).
  const calendarArg = z
    .string()
    .max(256)
    .transform((v) => v.toLowerCase())
    .optional();

  defineTool(server, svc, 'calendar.list_events', { description: 'List events of a calendar in a time range.', inputSchema: { timeMin: when, timeMax: when, calendarId: calendarArg }, readOnly: true }, async (a) => {
    const res = await google(svc, async () =>
      api.events.list({ calendarId: a.calendarId ?? 'primary', timeMin: a.timeMin, timeMax: a.timeMax, singleEvents: true, orderBy: 'startTime', maxResults: 250 }, await callOpts(opts, svc)),
    );
    const events = (res.items ?? []).map((e) => ({ id: e.id, summary: e.summary, start: e.start?.dateTime ?? e.start?.date, end: e.end?.dateTime ?? e.end?.date, organizer: e.organizer?.email, attendees: (e.attendees ?? []).map((x) => x.email) }));
    return { data: { events }, labels: externalLabel(events.map((e) => e.organizer ?? '').filter(Boolean), opts.orgDomains ?? []) };
  });

  defineTool(
    server,
    svc,
    'calendar.create_event',
    {
      description: 'Create an event; invitations are sent only when attendees are given. With holdInvitations the event is created without its attendees (nobody is invited) and they are invited later (calendar.send_invitations).',
      inputSchema: { summary: z.string().max(1024), start: when, end: when, description: z.string().max(8000).optional(), attendees, calendarId: calendarArg, holdInvitations: z.boolean().optional() },
    },
    async (a) => {
      // Held (the reversible form at Batched): nobody else sees the event until a reviewer accepts it.
      const invite = a.holdInvitations ? [] : (a.attendees ?? []);
      const ev = await google(svc, async () =>
        api.events.insert(
          {
            calendarId: a.calendarId ?? 'primary',
            sendUpdates: invite.length ? 'all' : 'none',
            requestBody: { summary: a.summary, description: a.description, start: { dateTime: a.start }, end: { dateTime: a.end }, attendees: invite.length ? invite.map((email) => ({ email })) : undefined },
          },
          await callOpts(opts, svc),
        ),
      );
      return { data: { eventId: ev.id, htmlLink: ev.htmlLink, invited: invite, ...(a.holdInvitations ? { held: a.attendees ?? [] } : {}) } };
    },
  );

  defineTool(
    server,
    svc,
    'calendar.send_invitations',
    { description: 'Add attendees to an existing event and send them its invitation.', inputSchema: { eventId: z.string().max(1024), calendarId: calendarArg, attendees } },
    async (a) => {
      const add = a.attendees ?? [];
      // Nothing to send (an event held with no attendees): the event stays as it is.
      if (!add.length) return { data: { eventId: a.eventId, invited: [] } };
      const calendarId = a.calendarId ?? 'primary';
      const o = await callOpts(opts, svc);
      const ev = await google(svc, () => api.events.get({ calendarId, eventId: a.eventId }, o));
      // The update goes to everyone on the event: the policy decided on those the call names, so they must be all of them (you aside).
      const named = new Set(add.map((x) => x.toLowerCase()));
      const others = unnamed(ev, named);
      if (others.length) throw new ConnectorError('bad_arguments', `calendar.send_invitations: the invitation would also go to ${listOf(others)}, not named in attendees: nothing was sent`);
      const have = new Set((ev.attendees ?? []).map((x) => x.email?.toLowerCase()));
      const invite = add.filter((email) => !have.has(email.toLowerCase()));
      if (!invite.length) return { data: { eventId: a.eventId, invited: [] } };
      // Written only over the event as it was read (If-Match): one changed meanwhile is refused, not overwritten.
      await google(svc, async () =>
        api.events.patch({ calendarId, eventId: a.eventId, sendUpdates: 'all', requestBody: { attendees: [...(ev.attendees ?? []), ...invite.map((email) => ({ email }))] } }, ifUnchanged(o, ev)),
      );
      return { data: { eventId: a.eventId, invited: invite } };
    },
  );

  defineTool(server, svc, 'calendar.delete_event', { description: DELETE_EVENT, inputSchema: { eventId: z.string().max(1024), calendarId: calendarArg, notify: z.boolean().optional(), attendees } }, async (a) => {
    const calendarId = a.calendarId ?? 'primary';
    let o: CallOpts = await callOpts(opts, svc);
    if (a.notify) {
      // The cancellation goes to the event's attendees: the policy decided on those the call names, so they must be all of them.
      const named = new Set((a.attendees ?? []).map((x) => x.toLowerCase()));
      const ev = await google(svc, () => api.events.get({ calendarId, eventId: a.eventId }, o));
      const others = unnamed(ev, named);
      if (others.length) throw new ConnectorError('bad_arguments', `calendar.delete_event: the cancellation would also go to ${listOf(others)}, not named in attendees: nothing was deleted`);
      // Deleted only as it was read: an attendee added meanwhile would be told, so a changed event is refused.
      o = ifUnchanged(o, ev);
    }
    await google(svc, () => api.events.delete({ calendarId, eventId: a.eventId, sendUpdates: a.notify ? 'all' : 'none' }, o));
    return { data: { eventId: a.eventId, deleted: true } };
  });
  return server;
}

// ---------------------------------------------------------------------------------------------
// Manifests

const str = { type: 'string' };
const strArr = { type: 'array', items: { type: 'string' } };
const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', properties, required });
const GOOGLE_AUTH = 'https://accounts.google.com/o/oauth2/v2/auth';
const GOOGLE_TOKEN = 'https://oauth2.googleapis.com/token';

export const gmailManifest: ConnectorManifest = {
  id: 'gmail',
  name: 'Gmail',
  vendor: 'Google',
  runtime: { kind: 'builtin' },
  auth: { kind: 'oauth2', authorizationUrl: GOOGLE_AUTH, tokenUrl: GOOGLE_TOKEN, revocationUrl: 'https://oauth2.googleapis.com/revoke', scopes: ['https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.compose', 'https://www.googleapis.com/auth/gmail.send'] },
  credentialScope: 'user',
  tools: [
    { name: 'gmail.search', description: 'Search mail (Gmail query syntax).', inputSchema: obj({ query: str, maxResults: { type: 'integer' } }, ['query']), action: 'email.read', readOnly: true },
    { name: 'gmail.read', description: 'Read one message.', inputSchema: obj({ id: str }, ['id']), action: 'email.read', extract: { resources: [{ path: '/id', prefix: 'gmail:message/' }] }, readOnly: true },
    {
      name: 'gmail.create_draft',
      description: 'Create a draft (nothing is sent).',
      inputSchema: obj({ to: strArr, cc: strArr, subject: str, body: str }, ['to', 'subject', 'body']),
      action: 'email.draft',
      extract: { recipients: ['/to', '/cc'] },
      reversible: { undo: { tool: 'gmail.delete_draft', args: { draftId: '/result/draftId' } } },
    },
    { name: 'gmail.delete_draft', description: 'Delete a draft.', inputSchema: obj({ draftId: str }, ['draftId']), action: 'email.draft' },
    {
      name: 'gmail.send',
      description: 'Send a message.',
      inputSchema: obj({ to: strArr, cc: strArr, subject: str, body: str }, ['to', 'subject', 'body']),
      action: 'email.send',
      extract: { recipients: ['/to', '/cc'] },
      // At Batched a send becomes a draft: the reviewer's accept sends it, a revert discards it.
      reversible: { tool: 'gmail.create_draft', undo: { tool: 'gmail.delete_draft', args: { draftId: '/result/draftId' } }, finalize: { tool: 'gmail.send_draft', args: { draftId: '/result/draftId', to: '/args/to', cc: '/args/cc' } } },
    },
    // Decided on the recipients it names; the connector sends the draft only if it is addressed to no one else.
    { name: 'gmail.send_draft', description: SEND_DRAFT, inputSchema: obj({ draftId: str, to: strArr, cc: strArr }, ['draftId', 'to']), action: 'email.send', extract: { recipients: ['/to', '/cc'] } },
  ],
};

export const driveManifest: ConnectorManifest = {
  id: 'google-drive',
  name: 'Google Drive',
  vendor: 'Google',
  runtime: { kind: 'builtin' },
  auth: { kind: 'oauth2', authorizationUrl: GOOGLE_AUTH, tokenUrl: GOOGLE_TOKEN, revocationUrl: 'https://oauth2.googleapis.com/revoke', scopes: ['https://www.googleapis.com/auth/drive'] },
  credentialScope: 'user',
  tools: [
    { name: 'drive.search', description: 'Search Drive files by name or content.', inputSchema: obj({ query: str, pageSize: { type: 'integer' } }, ['query']), action: 'drive.read', readOnly: true },
    { name: 'drive.read', description: 'Read a Drive file as text.', inputSchema: obj({ fileId: str }, ['fileId']), action: 'drive.read', extract: { resources: [{ path: '/fileId', prefix: 'drive:file/' }] }, readOnly: true },
    {
      name: 'drive.create',
      description: 'Create a Drive file.',
      inputSchema: obj({ name: str, content: str, mimeType: str, parentId: str }, ['name', 'content']),
      action: 'drive.create',
      extract: { resources: ['/name', { path: '/parentId', prefix: 'drive:folder/' }] },
      // Reversible only in the user's own Drive: a file made in a folder (perhaps shared outside) is seen at once.
      reversible: { undo: { tool: 'drive.trash', args: { fileId: '/result/fileId' } }, privateWhen: { path: '/parentId', values: [] } },
    },
    {
      name: 'drive.update',
      description: 'Replace the content of a Drive file.',
      inputSchema: obj({ fileId: str, content: str }, ['fileId', 'content']),
      action: 'drive.update',
      extract: { resources: [{ path: '/fileId', prefix: 'drive:file/' }] },
      reversible: { undo: { tool: 'drive.update', args: { fileId: '/args/fileId', content: '/result/previousContent' } } },
    },
    { name: 'drive.trash', description: 'Move a Drive file to the trash.', inputSchema: obj({ fileId: str }, ['fileId']), action: 'drive.update', extract: { resources: [{ path: '/fileId', prefix: 'drive:file/' }] } },
  ],
};

export const calendarManifest: ConnectorManifest = {
  id: 'google-calendar',
  name: 'Google Calendar',
  vendor: 'Google',
  runtime: { kind: 'builtin' },
  auth: { kind: 'oauth2', authorizationUrl: GOOGLE_AUTH, tokenUrl: GOOGLE_TOKEN, revocationUrl: 'https://oauth2.googleapis.com/revoke', scopes: ['https://www.googleapis.com/auth/calendar.events'] },
  credentialScope: 'user',
  tools: [
    { name: 'calendar.list_events', description: 'List events in a time range.', inputSchema: obj({ timeMin: str, timeMax: str, calendarId: str }, ['timeMin', 'timeMax']), action: 'saas.read', readOnly: true },
    {
      name: 'calendar.create_event',
      description: 'Create an event; invitations are sent only when attendees are given. With holdInvitations the event is created without its attendees (nobody is invited) and they are invited later (calendar.send_invitations).',
      inputSchema: obj({ summary: str, start: str, end: str, description: str, attendees: strArr, calendarId: str, holdInvitations: { type: 'boolean' } }, ['summary', 'start', 'end']),
      action: 'calendar.create',
      // The calendar written to is a fact (another person's or a shared calendar, by its id); the primary one when none is named.
      extract: { attendees: ['/attendees'], resources: [{ path: '/calendarId', prefix: 'calendar:', lowercase: true }] },
      // At Batched the event is created without its attendees (nobody is invited): the reviewer's accept
      // invites its attendees, a revert deletes it before anyone else saw it.
      reversible: {
        args: { summary: '/args/summary', start: '/args/start', end: '/args/end', description: '/args/description', attendees: '/args/attendees', calendarId: '/args/calendarId', holdInvitations: { const: true } },
        undo: { tool: 'calendar.delete_event', args: { eventId: '/result/eventId', calendarId: '/args/calendarId' } },
        finalize: { tool: 'calendar.send_invitations', args: { eventId: '/result/eventId', calendarId: '/args/calendarId', attendees: '/args/attendees' } },
        // Held without attendees is private on the user's own calendar only: on another (shared) calendar its readers see it at once.
        privateWhen: { path: '/calendarId', values: ['primary'] },
      },
    },
    {
      name: 'calendar.send_invitations',
      description: 'Add attendees to an existing event and send them its invitation.',
      inputSchema: obj({ eventId: str, calendarId: str, attendees: strArr }, ['eventId']),
      action: 'calendar.create',
      extract: { attendees: ['/attendees'], resources: [{ path: '/calendarId', prefix: 'calendar:', lowercase: true }] },
    },
    // Decided on the attendees it names (a cancellation is sent to them); the connector refuses a notify that would reach anyone else.
    {
      name: 'calendar.delete_event',
      description: DELETE_EVENT,
      inputSchema: obj({ eventId: str, calendarId: str, notify: { type: 'boolean' }, attendees: strArr }, ['eventId']),
      action: 'calendar.create',
      extract: { attendees: ['/attendees'], resources: [{ path: '/calendarId', prefix: 'calendar:', lowercase: true }] },
    },
  ],
};
