import { ACTION_TYPE_NAMES, type ActionContext, type ActionType } from '@steward/policy';
import { z } from 'zod';
import { ManifestError } from './errors';
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';

/**
 * The connector model. A manifest describes one connector: who makes it, how it authenticates,
 * whose credential it uses, and its tools — each with a JSON Schema for its inputs, the action
 * type the gate decides it as, selectors that read the decision inputs (paths, recipients,
 * attendees, amounts, hosts, ...) from its arguments, and, for writes that can run at Batched,
 * the reversible form and its undo.
 */

// ---------------------------------------------------------------------------------------------
// Selectors: JSON-pointer-like paths into a tool's arguments.
//   "/to"                   the value at /to (an array yields each element)
//   "/attendees/*/email"    "*" walks every element of an array (or value of an object)
//   { path, as, prefix, lowercase }  with a conversion: "string" | "number" | "host" (of a URL or a bare
//                           host) | "url" (resource and host) | "emails" ("A <a@x>, b@y" lists)

export const SELECTOR_KINDS = ['string', 'number', 'host', 'url', 'emails'] as const;
export type SelectorKind = (typeof SELECTOR_KINDS)[number];

const POINTER = /^(\/([^/~]|~[01])*)+$/;

const pointer = z
  .string()
  .max(256)
  .regex(POINTER, 'must be a JSON pointer such as "/to" or "/attendees/*/email"');

export const selectorSchema = z.union([
  pointer,
  z.strictObject({
    path: pointer,
    as: z.enum(SELECTOR_KINDS).optional(),
    /** Prepended to each string value ("slack:channel/"). */
    prefix: z.string().max(64).optional(),
    /** Taken in lower case: ids the service reads without regard to case (a calendar id), as rules match them. */
    lowercase: z.boolean().optional(),
  }),
]);
export type Selector = z.infer<typeof selectorSchema>;

const selectors = z.array(selectorSchema).max(16);

export const extractSchema = z.strictObject({
  /** Paths, ids or URLs the action touches. */
  resources: selectors.optional(),
  /** URLs: each goes to resources and its host to hosts. */
  urls: selectors.optional(),
  hosts: selectors.optional(),
  recipients: selectors.optional(),
  /** Where any selected value is `true`, the action reaches people outside the org (a channel shared with another company): its recipients are external. */
  outside: selectors.optional(),
  attendees: selectors.optional(),
  /** The first number found is the amount. */
  amount: selectors.optional(),
  labels: selectors.optional(),
});
export type ExtractSpec = z.infer<typeof extractSchema>;

/** Arguments for another tool, as selectors into a context ({args} or {args, result}) or constants. */
const argMap = z.record(
  z.string().min(1).max(64),
  z.union([selectorSchema, z.strictObject({ const: z.unknown() })]),
);

export const reversibleSchema = z.strictObject({
  /** The tool run instead at Batched (default: this tool itself, which is reversible as it is). */
  tool: z.string().min(1).max(64).optional(),
  /** Its arguments, selected from {args} (default: the original arguments unchanged). */
  args: argMap.optional(),
  /** How to undo what the reversible form did; selectors into {args, result}. */
  undo: z.strictObject({ tool: z.string().min(1).max(64), args: argMap }),
  /**
   * The connector's step that makes the reversible form final when a reviewer accepts it (a draft
   * becomes the sent message or the published post); selectors into {args, result}. Without it,
   * the reversible form is final as it is.
   */
  finalize: z.strictObject({ tool: z.string().min(1).max(64), args: argMap }).optional(),
  /**
   * The reversible form is one only where nobody else sees what it makes before a reviewer accepts
   * it: when the argument at `path` is absent or one of `values` (an event on the user's own
   * calendar, a file in their own Drive). Anywhere else (a shared calendar, a shared folder) the call
   * has no reversible form, and Batched waits like Watched.
   */
  privateWhen: z.strictObject({ path: z.string().min(1).max(200), values: z.array(z.string().max(200)).max(20) }).optional(),
});
export type ReversibleSpec = z.infer<typeof reversibleSchema>;

const actionType = z.string().refine((v) => (ACTION_TYPE_NAMES as string[]).includes(v), {
  message: `must be one of the catalog's action types (${ACTION_TYPE_NAMES.join(', ')})`,
});

export const TOOL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

const jsonSchemaObject = z
  .record(z.string(), z.unknown())
  .refine((s) => s.type === 'object', { message: 'inputSchema must be a JSON Schema with "type": "object"' })
  .refine((s) => s.properties === undefined || (typeof s.properties === 'object' && s.properties !== null && !Array.isArray(s.properties)), {
    message: 'inputSchema.properties must be an object',
  })
  .refine((s) => JSON.stringify(s).length <= 64_000, { message: 'inputSchema is larger than 64 kB' });

export const toolSpecSchema = z.strictObject({
  name: z.string().regex(TOOL_NAME, 'letters, digits, "_", "." or "-", at most 64, not starting with "." or "-"'),
  title: z.string().max(200).optional(),
  description: z.string().max(4000),
  inputSchema: jsonSchemaObject,
  action: actionType,
  extract: extractSchema.optional(),
  reversible: reversibleSchema.optional(),
  /** Whether the tool only reads (MCP annotation readOnlyHint). */
  readOnly: z.boolean().optional(),
  /**
   * Whether the upstream honours Steward's idempotency key (the action id, sent as
   * `_meta["steward/idempotency-key"]`): a retried call then does not act twice, so the gate may
   * retry it after a transient failure. Writes without it are never retried.
   */
  idempotent: z.boolean().optional(),
});
export type ToolSpec = Omit<z.infer<typeof toolSpecSchema>, 'action'> & { action: ActionType };

export const authSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('oauth2'),
    authorizationUrl: z.url().optional(),
    tokenUrl: z.url().optional(),
    /** RFC 7009 token revocation endpoint. */
    revocationUrl: z.url().optional(),
    scopes: z.array(z.string().max(512)).max(64).default([]),
  }),
  z.strictObject({
    kind: z.literal('api_key'),
    /** Header that carries the key (default Authorization: Bearer). */
    header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/).optional(),
    scheme: z.string().max(32).optional(),
  }),
  z.strictObject({ kind: z.literal('none') }),
]);
export type AuthSpec = z.infer<typeof authSchema>;

export const runtimeSchema = z.discriminatedUnion('kind', [
  /** Runs in process (a built-in MCP server of this library). */
  z.strictObject({ kind: z.literal('builtin') }),
  /** A remote MCP server over Streamable HTTP; the org supplies the URL unless it is fixed here. */
  z.strictObject({ kind: z.literal('remote'), url: z.url({ protocol: /^https?$/ }).optional() }),
]);

export const manifestSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'lower-case letters, digits and "-", 2 to 63, starting with a letter'),
    name: z.string().min(1).max(120),
    vendor: z.string().min(1).max(120),
    description: z.string().max(2000).optional(),
    version: z.string().max(32).optional(),
    runtime: runtimeSchema,
    auth: authSchema,
    credentialScope: z.enum(['org', 'user']),
    tools: z.array(toolSpecSchema).min(1).max(256),
  })
  .superRefine((m, ctx) => {
    const names = new Map<string, number>();
    m.tools.forEach((t, i) => {
      if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: ['tools', i, 'name'], message: `duplicate tool name "${t.name}" (also tools[${names.get(t.name)}])` });
      else names.set(t.name, i);
    });
    m.tools.forEach((t, i) => {
      const props = (t.inputSchema.properties ?? undefined) as Record<string, unknown> | undefined;
      const checkSelector = (s: Selector, path: (string | number)[]) => {
        const first = unescapeSegment(pointerOf(s).split('/')[1] ?? '');
        if (props && first !== '*' && !(first in props)) {
          ctx.addIssue({ code: 'custom', path: ['tools', i, ...path], message: `"${pointerOf(s)}" does not name a property of the tool's inputSchema` });
        }
      };
      for (const [field, list] of Object.entries(t.extract ?? {})) {
        (list ?? []).forEach((s, j) => checkSelector(s, ['extract', field, j]));
      }
      const r = t.reversible;
      if (r) {
        if (r.tool && !names.has(r.tool)) ctx.addIssue({ code: 'custom', path: ['tools', i, 'reversible', 'tool'], message: `no tool named "${r.tool}" in this manifest` });
        if (!names.has(r.undo.tool)) ctx.addIssue({ code: 'custom', path: ['tools', i, 'reversible', 'undo', 'tool'], message: `no tool named "${r.undo.tool}" in this manifest` });
        for (const [k, v] of Object.entries(r.args ?? {})) {
          if (!isConst(v) && !pointerOf(v).startsWith('/args')) ctx.addIssue({ code: 'custom', path: ['tools', i, 'reversible', 'args', k], message: 'selectors of the reversible form read "/args/..."' });
        }
        for (const step of ['undo', 'finalize'] as const) {
          const call = r[step];
          if (!call) continue;
          if (step === 'finalize' && !names.has(call.tool)) ctx.addIssue({ code: 'custom', path: ['tools', i, 'reversible', step, 'tool'], message: `no tool named "${call.tool}" in this manifest` });
          for (const [k, v] of Object.entries(call.args)) {
            if (!isConst(v) && !/^\/(args|result)(\/|$)/.test(pointerOf(v))) {
              ctx.addIssue({ code: 'custom', path: ['tools', i, 'reversible', step, 'args', k], message: `${step} selectors read "/args/..." or "/result/..."` });
            }
          }
        }
      }
    });
  });

export type ConnectorManifest = Omit<z.infer<typeof manifestSchema>, 'tools'> & { tools: ToolSpec[] };

function formatPath(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(manifest)';
}

/** Validates a manifest; throws ManifestError listing every problem. */
export function parseManifest(input: unknown): ConnectorManifest {
  const result = manifestSchema.safeParse(input);
  if (!result.success) {
    throw new ManifestError(result.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`));
  }
  return result.data as ConnectorManifest;
}

/** Every problem of a manifest (empty when it is valid). */
export function manifestProblems(input: unknown): string[] {
  try {
    parseManifest(input);
    return [];
  } catch (err) {
    if (err instanceof ManifestError) return err.problems;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Selector evaluation

function pointerOf(s: Selector | { const: unknown }): string {
  if (isConst(s)) return '';
  return typeof s === 'string' ? s : s.path;
}

function isConst(s: unknown): s is { const: unknown } {
  return typeof s === 'object' && s !== null && 'const' in s;
}

function unescapeSegment(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Every value a pointer selects (arrays at the end are flattened one level). */
export function select(root: unknown, path: string): unknown[] {
  const segments = path.split('/').slice(1).map(unescapeSegment);
  let current: unknown[] = [root];
  for (const seg of segments) {
    const next: unknown[] = [];
    for (const v of current) {
      if (v === null || typeof v !== 'object') continue;
      if (seg === '*') {
        next.push(...(Array.isArray(v) ? v : Object.values(v)));
      } else if (Array.isArray(v)) {
        if (/^\d+$/.test(seg) && Number(seg) < v.length) next.push(v[Number(seg)]);
      } else if (Object.prototype.hasOwnProperty.call(v, seg)) {
        next.push((v as Record<string, unknown>)[seg]);
      }
    }
    current = next;
    if (!current.length) return [];
  }
  return current.flatMap((v) => (Array.isArray(v) ? v : [v])).filter((v) => v !== undefined && v !== null);
}

/** A local part: dot-atom, or a quoted string (its @ and spaces are the local part's, never a domain). */
const LOCAL = /^(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*|"(?:[^"\\\r\n]|\\.)*")$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * One mailbox's address as the mail system reads it: the domain is what follows the last "@"
 * (`"ceo@org.com"@evil.com` is at evil.com), international domains in their ASCII (punycode)
 * form, lower case; null for anything that is not one address.
 */
export function normaliseAddress(address: string): string | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || address.length > 320) return null;
  const local = address.slice(0, at);
  const domain = domainToASCII(address.slice(at + 1));
  if (!LOCAL.test(local) || !domain || domain.length > 253) return null;
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return null;
  return `${local}@${domain}`.toLowerCase();
}

/**
 * The addresses of an address field (RFC 5322: names, quoted local parts, groups, "," or ";"),
 * read by nodemailer's parser. A mailbox whose address is not one ("a@evil.example.", "a..b@acme.example",
 * an address literal) is kept as written with " [unreadable]" after it: its domain is then none of
 * the org's, so the policy takes it for an outside recipient (a server may still deliver it) and a
 * sender label for outside mail. Callers that send refuse it (see `mailbox`).
 */
export function parseAddresses(value: string): string[] {
  return addressparser(value, { flatten: true })
    .map((a) => normaliseAddress(a.address) ?? (a.address.trim() ? `${a.address.trim().toLowerCase().slice(0, 320)} ${UNREADABLE}` : null))
    .filter((a): a is string => a !== null);
}

/** What follows an address the parser could not read (its domain matches no org's). */
export const UNREADABLE = '[unreadable]';

/** Exactly one mailbox and nothing else (what a recipient field given to a send must be), normalised; null otherwise. */
export function mailbox(value: string): string | null {
  const all = addressparser(value, { flatten: true });
  return all.length === 1 ? normaliseAddress(all[0]!.address) : null;
}

/**
 * A URL as a fetch reads it (WHATWG): controls and spaces at its ends dropped, tabs and newlines
 * inside removed, and a scheme taken as a scheme with or without its slashes ("https:/evil.example"
 * and "https:evil.example" fetch evil.example). Without a scheme, https.
 */
const SPECIAL_SCHEMES = new Set(['http', 'https', 'ws', 'wss', 'ftp', 'file']);

function asUrl(value: string): URL | null {
  // eslint-disable-next-line no-control-regex
  const v = value.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
  if (!v) return null;
  try {
    // "http:134744072/x" is a scheme and a host (8.8.8.8); "docs.example.com:8443/a" a host and a port.
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(v)?.[1]?.toLowerCase();
    const hasScheme = scheme !== undefined && (SPECIAL_SCHEMES.has(scheme) || !/^[^:]+:\d+(?:[/?#]|$)/.test(v));
    return new URL(hasScheme ? v : `https://${v}`);
  } catch {
    return null;
  }
}

/** A URL argument as the policy sees it: what a fetch of it requests (scheme and host in lower case, dot segments resolved), else as given. */
export function urlOf(value: string): string {
  const url = asUrl(value);
  return url && (url.protocol === 'http:' || url.protocol === 'https:') ? normalizePercentEncoding(url.href) : value;
}

/**
 * RFC 3986 §6.2.2: percent-encoded unreserved characters decoded ("%66orms" is "forms", as every
 * server reads it), other escapes in upper case. A policy's resource globs then see the URL the
 * server serves, whichever way the agent wrote it.
 */
function normalizePercentEncoding(href: string): string {
  return href.includes('%') ? href.replace(/%[0-9A-Fa-f]{2}/g, (m) => {
    const c = String.fromCharCode(parseInt(m.slice(1), 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : m.toUpperCase();
  }) : href;
}

export function hostOf(value: string): string | undefined {
  // As the egress guard compares it: "docs.example.com." is docs.example.com, so a policy's host globs see the host fetched.
  return asUrl(value)?.hostname.toLowerCase().replace(/\.$/, '') || undefined;
}

function applySelector(root: unknown, s: Selector, fallback: SelectorKind): (string | number)[] {
  const path = typeof s === 'string' ? s : s.path;
  const as = (typeof s === 'string' ? undefined : s.as) ?? fallback;
  const prefix = typeof s === 'string' ? '' : (s.prefix ?? '');
  const lower = typeof s !== 'string' && s.lowercase === true;
  const out: (string | number)[] = [];
  for (const v of select(root, path)) {
    if (as === 'number') {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      // A value the selector found but that is no plain number ("5,000", "$5000", an object) is not
      // dropped: it counts as more than any limit (a rule on amounts fails closed, never open; the
      // largest safe integer, which JSON and the audit trail keep as it is).
      if (Number.isFinite(n)) out.push(n);
      else if (v !== null && v !== undefined && v !== '') out.push(Number.MAX_SAFE_INTEGER);
      continue;
    }
    // Objects with an email/address field (attendee objects, {email, name} recipients)
    let text: string | undefined;
    if (typeof v === 'string') text = v;
    else if (typeof v === 'number' || typeof v === 'boolean') text = String(v);
    else if (typeof v === 'object' && v) {
      const o = v as Record<string, unknown>;
      const field = o.email ?? o.address ?? o.url ?? o.id;
      if (typeof field === 'string') text = field;
    }
    if (text === undefined) continue;
    if (lower) text = text.toLowerCase();
    if (as === 'emails') out.push(...parseAddresses(text));
    else if (as === 'host') {
      const h = hostOf(text);
      if (h) out.push(h);
    } else out.push(prefix + text);
  }
  return out;
}

/** How the gate should treat one tool of one connector. */
export interface ToolMapping {
  connector: string;
  tool: string;
  action: ActionType;
  extract?: ExtractSpec;
  reversible?: ReversibleSpec;
}

/** The mapping of a tool nobody mapped: action type `unknown`, nothing extracted. */
export function unknownMapping(connector: string, tool: string): ToolMapping {
  return { connector, tool, action: 'unknown' };
}

/** The mapping of `tool` in a manifest, or `unknown` when the manifest does not map it. */
export function resolveTool(manifest: Pick<ConnectorManifest, 'id' | 'tools'>, tool: string): ToolMapping {
  const spec = manifest.tools.find((t) => t.name === tool);
  if (!spec) return unknownMapping(manifest.id, tool);
  return { connector: manifest.id, tool, action: spec.action, extract: spec.extract, reversible: spec.reversible };
}

const uniq = <T>(xs: T[]) => [...new Set(xs)];

/**
 * Reads the decision inputs of one call from its arguments, as the gate's ActionContext
 * pieces (connector, resources, hosts, recipients, attendees, amount, labels). Fields nothing
 * was found for are left out. Never throws on odd arguments: selectors simply find nothing.
 */
export function extractContext(mapping: ToolMapping, args: unknown): ActionContext {
  const ctx: ActionContext = { connector: mapping.connector };
  const e = mapping.extract;
  if (!e) return ctx;
  const strings = (list: Selector[] | undefined, kind: SelectorKind) =>
    uniq((list ?? []).flatMap((s) => applySelector(args, s, kind)).filter((v): v is string => typeof v === 'string' && v.length > 0));
  const resources = strings(e.resources, 'string');
  const urls = strings(e.urls, 'string').map(urlOf);
  const hosts = uniq([...strings(e.hosts, 'host'), ...urls.map(hostOf).filter((h): h is string => !!h)]);
  const recipients = strings(e.recipients, 'emails');
  const attendees = strings(e.attendees, 'emails');
  const labels = strings(e.labels, 'string');
  const allResources = uniq([...resources, ...urls]);
  if (allResources.length) ctx.resources = allResources;
  if (hosts.length) ctx.hosts = hosts;
  if (recipients.length) ctx.recipients = recipients;
  if (attendees.length) ctx.attendees = attendees;
  if (labels.length) ctx.labels = labels;
  // The largest amount any selector finds (every line of an invoice, not only its first).
  const amounts = (e.amount ?? []).flatMap((s) => applySelector(args, s, 'number')).filter((v): v is number => typeof v === 'number');
  if (amounts.length) ctx.amount = Math.max(...amounts);
  if ((e.outside ?? []).some((s) => select(args, typeof s === 'string' ? s : s.path).some((v) => v === true))) ctx.outside = true;
  return ctx;
}

function buildArgs(map: Record<string, Selector | { const: unknown }>, root: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(map)) {
    if (isConst(spec)) {
      out[key] = spec.const;
      continue;
    }
    const path = typeof spec === 'string' ? spec : spec.path;
    const values = select(root, path);
    // A pointer to an array keeps the array; a single value stays single.
    const raw = path.split('/').slice(1).reduce<unknown>((v, seg) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[unescapeSegment(seg)] : undefined), root);
    out[key] = Array.isArray(raw) ? raw : values[0];
  }
  return out;
}

export interface ToolCall {
  tool: string;
  args: Record<string, unknown>;
}

/** The call to make at Batched instead of `tool(args)`, or null when the tool has no reversible form. */
export function reversibleCall(mapping: ToolMapping, args: Record<string, unknown>): ToolCall | null {
  const r = mapping.reversible;
  if (!r) return null;
  if (r.privateWhen) {
    const at = select(args, r.privateWhen.path);
    if (at.some((v) => v !== undefined && v !== null && !(typeof v === 'string' && r.privateWhen!.values.includes(v)))) return null;
  }
  return { tool: r.tool ?? mapping.tool, args: r.args ? buildArgs(r.args, { args }) : { ...args } };
}

/** The call that undoes a reversible call, from its arguments and its (structured) result. */
export function undoCall(mapping: ToolMapping, reversibleArgs: Record<string, unknown>, result: unknown): ToolCall | null {
  const r = mapping.reversible;
  if (!r) return null;
  return { tool: r.undo.tool, args: buildArgs(r.undo.args, { args: reversibleArgs, result }) };
}

/** The call that makes a reversible call final once a reviewer accepts it (null: final as it is). */
export function finalizeCall(mapping: ToolMapping, reversibleArgs: Record<string, unknown>, result: unknown): ToolCall | null {
  const f = mapping.reversible?.finalize;
  if (!f) return null;
  return { tool: f.tool, args: buildArgs(f.args, { args: reversibleArgs, result }) };
}
