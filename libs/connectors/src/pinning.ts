import { createHash } from 'node:crypto';
import type { ActionType } from '@steward/policy';
import type { ExtractSpec, ReversibleSpec, ToolMapping } from './manifest';
import { unknownMapping } from './manifest';

/**
 * Remote MCP servers: their tools are discovered, mapped by an admin to action types (unmapped
 * → `unknown`), and pinned by the hash of their definition when approved. A tool whose
 * definition changed is held until approved again, with a structural diff to show; descriptions
 * are scanned for text aimed at the model.
 */

export interface ToolDefinition {
  name: string;
  title?: string;
  description: string;
  inputSchema: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

/** Canonical JSON: object keys sorted (by UTF-16 code units), no whitespace, `undefined` dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** sha256 (hex) of the canonical JSON of {name, description, inputSchema}. */
export function toolDefinitionHash(def: Pick<ToolDefinition, 'name' | 'description' | 'inputSchema'>): string {
  const canonical = canonicalJson({ name: def.name, description: def.description ?? '', inputSchema: def.inputSchema ?? {} });
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}

// ---------------------------------------------------------------------------------------------
// Structural diff

export interface DiffEntry {
  /** JSON pointer into {name, description, inputSchema}. */
  path: string;
  kind: 'added' | 'removed' | 'changed';
  before?: unknown;
  after?: unknown;
}

const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

export function structuralDiff(before: unknown, after: unknown, path = ''): DiffEntry[] {
  if (canonicalJson(before) === canonicalJson(after)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => {
      const p = `${path}/${esc(k)}`;
      if (!(k in before) || before[k] === undefined) return [{ path: p, kind: 'added' as const, after: after[k] }];
      if (!(k in after) || after[k] === undefined) return [{ path: p, kind: 'removed' as const, before: before[k] }];
      return structuralDiff(before[k], after[k], p);
    });
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const out: DiffEntry[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) {
      const p = `${path}/${i}`;
      if (i >= before.length) out.push({ path: p, kind: 'added', after: after[i] });
      else if (i >= after.length) out.push({ path: p, kind: 'removed', before: before[i] });
      else out.push(...structuralDiff(before[i], after[i], p));
    }
    return out;
  }
  return [{ path: path || '/', kind: 'changed', before, after }];
}

export function definitionDiff(before: ToolDefinition, after: ToolDefinition): DiffEntry[] {
  const pick = (d: ToolDefinition) => ({ name: d.name, description: d.description ?? '', inputSchema: d.inputSchema ?? {} });
  return structuralDiff(pick(before), pick(after));
}

// ---------------------------------------------------------------------------------------------
// Description scanner: text aimed at the model rather than at a person choosing a tool.

export interface DescriptionFlag {
  /** Where the text is: "/description" or a pointer to a description inside inputSchema. */
  where: string;
  reason: string;
  excerpt: string;
}

const RULES: { reason: string; pattern: RegExp }[] = [
  { reason: 'tells the model to ignore or override its instructions', pattern: /\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|other|system|safety|your)\b[^.\n]{0,30}\b(instructions?|rules?|prompts?|guidelines?|polic(y|ies)|directives?)/i },
  { reason: 'claims to be a system or developer message', pattern: /(<\/?\s*(system|important|instructions?|admin)\s*>|\[\s*(system|inst)\s*\]|\bsystem prompt\b|\bdeveloper (message|mode)\b|\bnew instructions?\b)/i },
  { reason: 'tells the model to call other tools', pattern: /\b(before|after|instead of|when) (using|calling|running) (this|any|the) tool\b|\b(always|first|must|should)\b[^.\n]{0,30}\b(call|invoke|use|run)\b[^.\n]{0,30}\b(tool|function|command)s?\b/i },
  { reason: 'tells the model to call other tools', pattern: /\b(always|first|must|also|then|should)\b[^.\n]{0,20}\b(call|invoke|run|execute)\s+[`'"]?[A-Za-z][\w-]*[_.][\w.-]+/ },
  { reason: 'tells the model to send data somewhere', pattern: /\b(send|forward|upload|post|exfiltrate|copy|transmit|email|leak)\b[^.\n]{0,60}\b(to|into)\b[^.\n]{0,40}(https?:\/\/|\b[\w.+-]+@[\w-]+\.[\w.]+|\bwebhook\b|\bserver\b|\bendpoint\b)/i },
  { reason: 'asks for secrets or private files', pattern: /(\bid_rsa\b|~\/\.ssh|\.ssh\/|\.aws\/credentials|\.env\b|\b(api[_ -]?keys?|passwords?|secrets?|access tokens?|private keys?|credentials)\b[^.\n]{0,40}\b(include|pass|send|add|read|provide|append)|\b(include|pass|send|add|read|provide|append)\b[^.\n]{0,40}\b(api[_ -]?keys?|passwords?|secrets?|access tokens?|private keys?|credentials)\b)/i },
  { reason: 'tells the model to hide things from the user', pattern: /\b(do not|don't|never)\b[^.\n]{0,30}\b(tell|inform|mention|reveal|show|notify|alert)\b[^.\n]{0,30}\b(user|human|anyone)\b|\bwithout (telling|informing|notifying) the user\b|\bsecretly\b|\bsilently\b/i },
  { reason: 'contains a long encoded blob', pattern: /[A-Za-z0-9+/]{120,}={0,2}/ },
];

const HIDDEN: { reason: string; pattern: RegExp }[] = [
  { reason: 'contains Unicode tag characters (invisible text)', pattern: /[\u{E0000}-\u{E007F}]/u },
  { reason: 'contains bidirectional control characters', pattern: /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/ },
  // eslint-disable-next-line no-misleading-character-class -- these invisible characters are what we look for
  { reason: 'contains zero-width or invisible characters', pattern: /[\u200B-\u200D\u2060-\u2064\uFEFF\u180E\u00AD\u034F\u115F\u1160\u3164\uFFA0]/ },
  // eslint-disable-next-line no-control-regex -- control characters are what we look for
  { reason: 'contains control characters', pattern: /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/ },
  { reason: 'contains private-use characters', pattern: /[\uE000-\uF8FF\u{F0000}-\u{FFFFD}\u{100000}-\u{10FFFD}]/u },
];

function excerptAround(text: string, index: number, length: number): string {
  const start = Math.max(0, index - 30);
  const raw = text.slice(start, Math.min(text.length, index + length + 30));
  // Make invisible characters visible in what an admin reads.
  return raw.replace(/[^\x20-\x7E\u00A0-\u02FF\u0370-\u1FFF\u3000-\u9FFF]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/** The first HTML comment ("<!--" … "-->"), found in linear time (the lazy regular expression is quadratic on "<!--<!--<!--…"). */
function htmlComment(text: string): { index: number; length: number } | null {
  const open = text.indexOf('<!--');
  if (open < 0) return null;
  const close = text.indexOf('-->', open + 4);
  return close < 0 ? null : { index: open, length: close + 3 - open };
}

/** Descriptions are scanned up to this many characters; a longer one is flagged for that alone (nobody reviews more). */
export const MAX_SCANNED_TEXT = 100_000;

/** Flags text in one description. */
export function scanText(full: string, where = '/description'): DescriptionFlag[] {
  const flags: DescriptionFlag[] = [];
  if (full.length > MAX_SCANNED_TEXT) flags.push({ where, reason: `is longer than ${MAX_SCANNED_TEXT.toLocaleString('en')} characters (only the start was scanned)`, excerpt: excerptAround(full, MAX_SCANNED_TEXT - 30, 0) });
  const text = full.length > MAX_SCANNED_TEXT ? full.slice(0, MAX_SCANNED_TEXT) : full;
  for (const { reason, pattern } of HIDDEN) {
    const m = pattern.exec(text);
    if (m) flags.push({ where, reason, excerpt: excerptAround(text, m.index, m[0].length) });
  }
  // Decode tag characters (they map to ASCII) and drop invisible ones before matching words.
  const visible = text
    .replace(/[\u{E0020}-\u{E007E}]/gu, (c) => String.fromCharCode(c.codePointAt(0)! - 0xe0000))
    .replace(/[\u200B-\u200D\u2060-\u2064\uFEFF\u00AD]/g, '')
    .normalize('NFKC');
  for (const { reason, pattern } of RULES) {
    const m = pattern.exec(visible);
    if (m) flags.push({ where, reason, excerpt: excerptAround(visible, m.index, m[0].length) });
  }
  const comment = htmlComment(visible);
  if (comment) flags.push({ where, reason: 'contains an HTML comment (hidden from people who read rendered text)', excerpt: excerptAround(visible, comment.index, comment.length) });
  return flags;
}

/** Scans a tool's description, title and every description/title/default string inside its input schema. */
export function scanToolDefinition(def: ToolDefinition): DescriptionFlag[] {
  const flags = [...scanText(def.description ?? ''), ...(def.title ? scanText(def.title, '/title') : [])];
  const walk = (v: unknown, path: string, depth: number) => {
    if (depth > 20 || v === null || typeof v !== 'object') return;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      const p = `${path}/${esc(k)}`;
      if (typeof child === 'string' && (k === 'description' || k === 'title' || k === 'default' || k === 'examples')) flags.push(...scanText(child, p));
      else if (typeof child === 'object') walk(child, p, depth + 1);
    }
  };
  walk(def.inputSchema, '/inputSchema', 0);
  return flags;
}

// ---------------------------------------------------------------------------------------------
// Approval and review

/** What an admin approved for one tool of a remote server. */
export interface ApprovedTool {
  name: string;
  hash: string;
  /** The definition as approved (kept to show a diff when it changes). */
  definition: ToolDefinition;
  action: ActionType;
  extract?: ExtractSpec;
  reversible?: ReversibleSpec;
  approvedAt?: string;
  approvedBy?: string;
}

/** An admin's choice when approving a tool (unmapped → `unknown`). */
export interface ToolApproval {
  action?: ActionType;
  extract?: ExtractSpec;
  reversible?: ReversibleSpec;
  approvedBy?: string;
}

export function approveTool(def: ToolDefinition, approval: ToolApproval = {}, at: Date = new Date()): ApprovedTool {
  return {
    name: def.name,
    hash: toolDefinitionHash(def),
    definition: { name: def.name, title: def.title, description: def.description ?? '', inputSchema: def.inputSchema ?? {} },
    action: approval.action ?? 'unknown',
    extract: approval.extract,
    reversible: approval.reversible,
    approvedAt: at.toISOString(),
    approvedBy: approval.approvedBy,
  };
}

export type ToolReviewStatus = 'approved' | 'new' | 'changed' | 'removed';

export interface ToolReview {
  name: string;
  status: ToolReviewStatus;
  /** Current hash (absent for removed tools). */
  hash?: string;
  pinnedHash?: string;
  /** For changed tools: what changed since approval. */
  diff?: DiffEntry[];
  /** Text in the current definition that seems aimed at the model. */
  flags: DescriptionFlag[];
  /** Calls are refused until an admin approves (new, changed or removed tools). */
  held: boolean;
  /** The action type it resolves to now (unapproved tools: `unknown`). */
  action: ActionType;
  definition?: ToolDefinition;
}

/** Compares what a server offers now with what was approved. */
export function reviewTools(discovered: ToolDefinition[], approved: ApprovedTool[]): ToolReview[] {
  const byName = new Map(approved.map((a) => [a.name, a]));
  const seen = new Set<string>();
  const out: ToolReview[] = [];
  for (const def of discovered) {
    seen.add(def.name);
    const hash = toolDefinitionHash(def);
    const pin = byName.get(def.name);
    const flags = scanToolDefinition(def);
    if (!pin) out.push({ name: def.name, status: 'new', hash, flags, held: true, action: 'unknown', definition: def });
    else if (pin.hash === hash) out.push({ name: def.name, status: 'approved', hash, pinnedHash: pin.hash, flags, held: false, action: pin.action, definition: def });
    else
      out.push({
        name: def.name,
        status: 'changed',
        hash,
        pinnedHash: pin.hash,
        diff: definitionDiff(pin.definition, def),
        flags,
        held: true,
        action: pin.action,
        definition: def,
      });
  }
  for (const pin of approved) {
    if (!seen.has(pin.name)) out.push({ name: pin.name, status: 'removed', pinnedHash: pin.hash, flags: [], held: true, action: pin.action });
  }
  return out;
}

/** name → pinned hash, for ConnectorClient's `pins`. */
export function pinsOf(approved: ApprovedTool[]): Record<string, string> {
  return Object.fromEntries(approved.map((a) => [a.name, a.hash]));
}

/** The gate's mapping of a remote tool: the approved one, or `unknown`. */
export function remoteToolMapping(connector: string, tool: string, approved: ApprovedTool[]): ToolMapping {
  const a = approved.find((t) => t.name === tool);
  if (!a) return unknownMapping(connector, tool);
  return { connector, tool, action: a.action, extract: a.extract, reversible: a.reversible };
}
