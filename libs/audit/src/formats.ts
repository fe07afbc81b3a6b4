import type { CanonicalEvent } from './event';
import type { ExportLine } from './export';

/**
 * Line formats for SIEMs besides NDJSON (which carries the exact canonical bytes and is the
 * one the offline verifier checks). Sealed fields stay sealed in every format.
 */
export type ExportFormat = 'ndjson' | 'csv' | 'cef';

const SEVERITY: Record<string, number> = { success: 3, failure: 6, denied: 8 };

/** CEF header fields: backslash and pipe escaped. */
export function cefHeader(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
}

/** CEF extension values: backslash and equals escaped, line breaks as \n / \r. */
export function cefValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

export function toCef(line: ExportLine, version: string): string {
  const e = JSON.parse(line.canonical) as CanonicalEvent;
  const ext: [string, string | number | undefined][] = [
    ['rt', Date.parse(e.at)],
    ['externalId', e.id],
    ['cn1', line.seq],
    ['cn1Label', 'seq'],
    ['cs1', e.org],
    ['cs1Label', 'org'],
    ['suid', e.actor.id ?? undefined],
    ['cs2', e.actor.type],
    ['cs2Label', 'actorType'],
    ['act', e.action],
    ['outcome', e.outcome],
    ['cs3', e.level],
    ['cs3Label', e.level ? 'trustLevel' : undefined],
    ['cs4', e.target ? `${e.target.type}:${e.target.id ?? ''}` : undefined],
    ['cs4Label', e.target ? 'target' : undefined],
    ['src', e.ip],
    ['requestClientApplication', e.client],
    ['msg', JSON.stringify(e.payload)],
  ];
  const extension = ext
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${cefValue(String(v))}`)
    .join(' ');
  const header = ['CEF:0', 'Steward', 'Steward', version, e.action, e.action, String(SEVERITY[e.outcome] ?? 3)].map((h, i) => (i === 0 ? h : cefHeader(h)));
  return `${header.join('|')}|${extension}`;
}

const CSV_COLUMNS = ['seq', 'hash', 'id', 'at', 'org', 'actor_type', 'actor_id', 'action', 'target_type', 'target_id', 'outcome', 'level', 'decision', 'client', 'ip', 'request_id', 'payload', 'sealed'] as const;

function csvCell(v: unknown): string {
  let s = v === undefined || v === null ? '' : String(v);
  // Formula injection: a cell a spreadsheet would evaluate (an address or request id a caller wrote,
  // "=IMAGE(...)") starts with a quote, as the anomaly report's cells do.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',');
}

export function toCsv(line: ExportLine): string {
  const e = JSON.parse(line.canonical) as CanonicalEvent;
  return [
    line.seq,
    line.hash,
    e.id,
    e.at,
    e.org,
    e.actor.type,
    e.actor.id,
    e.action,
    e.target?.type,
    e.target?.id,
    e.outcome,
    e.level,
    e.decision,
    e.client,
    e.ip,
    e.req,
    JSON.stringify(e.payload),
    e.sealed ? 'yes' : '',
  ]
    .map(csvCell)
    .join(',');
}
