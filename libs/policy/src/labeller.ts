import { domainOf, isInternal } from './facts';

/**
 * Finds personal data in an action's arguments, for the gate to pass in as labels.
 * It reports kinds and counts, never the values it found.
 */
export type PersonalDataKind = 'email_external' | 'phone' | 'card_number' | 'my_number' | 'iban';

export interface LabelResult {
  labels: string[];
  findings: { kind: PersonalDataKind; count: number }[];
}

const MAX_STRINGS = 10_000;
const MAX_DEPTH = 20;

const EMAIL = /[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}/g;
const PHONE = /(?:\+|\b0)\d[\d\s().-]{7,16}\d\b/g;
const DIGIT_RUN = /\b\d(?:[ -]?\d){11,18}\b/g;
const IBAN = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/g;

export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Japan's Individual Number (My Number): 11 digits and a check digit. */
export function myNumberValid(digits: string): boolean {
  if (!/^\d{12}$/.test(digits)) return false;
  let sum = 0;
  for (let n = 1; n <= 11; n++) {
    const p = digits.charCodeAt(11 - n) - 48;
    const q = n <= 6 ? n + 1 : n - 5;
    sum += p * q;
  }
  const r = sum % 11;
  const check = r <= 1 ? 0 : 11 - r;
  return check === digits.charCodeAt(11) - 48;
}

export function ibanValid(raw: string): boolean {
  const iban = raw.replace(/ /g, '');
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const v = ch >= 'A' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const d of v) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

function strings(value: unknown, out: string[], depth = 0): void {
  if (out.length >= MAX_STRINGS || depth > MAX_DEPTH) return;
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out, depth + 1);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      strings(v, out, depth + 1);
    }
  }
}

// Characters the e-mail pattern's local part consists of (ASCII only).
const LOCAL = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-') LOCAL[c.charCodeAt(0)] = 1;
const EMAIL_AT = new RegExp(EMAIL.source, 'y');
/** The digit patterns (My Number, card, IBAN, phone) over one string or stretch of one. */
function scanDigits(s: string, add: (k: PersonalDataKind) => void): void {
  const taken: [number, number][] = [];
  for (const m of s.matchAll(DIGIT_RUN)) {
    const digits = m[0].replace(/[ -]/g, '');
    if (digits.length === 12 && myNumberValid(digits)) {
      add('my_number');
      taken.push([m.index, m.index + m[0].length]);
    } else if (digits.length >= 13 && digits.length <= 19 && luhn(digits)) {
      add('card_number');
      taken.push([m.index, m.index + m[0].length]);
    }
  }
  for (const m of s.matchAll(IBAN)) if (ibanValid(m[0])) add('iban');
  for (const m of s.matchAll(PHONE)) {
    const start = m.index;
    if (taken.some(([a, b]) => start >= a && start < b)) continue;
    const digits = m[0].replace(/\D/g, '');
    if (digits.length >= 10 && digits.length <= 15) add('phone');
  }
}

/**
 * Same findings as running EMAIL over the string, without running the regex at every position:
 * every match contains an "@", its local part (no "@" in it) ends right before that "@" and starts
 * at most 64 characters back, not before the end of the previous match. From the earliest such
 * start the pattern either matches (the leftmost match, as the global regex finds) or matches from
 * no start before that "@".
 */
function scanEmails(s: string, orgDomains: string[], add: (k: PersonalDataKind) => void): void {
  let from = 0;
  for (let at = s.indexOf('@'); at >= 0; at = s.indexOf('@', Math.max(at + 1, from))) {
    let start = at;
    while (start > from && at - start < 64) {
      const c = s.charCodeAt(start - 1);
      if (c >= 128 || !LOCAL[c]) break;
      start--;
    }
    if (start === at) continue;
    EMAIL_AT.lastIndex = start;
    const m = EMAIL_AT.exec(s);
    if (!m) continue;
    if (!isInternal(domainOf(m[0]), orgDomains)) add('email_external');
    from = start + m[0].length;
  }
}

// Characters a PHONE, DIGIT_RUN or IBAN match can consist of: 2 = digit, 1 = [A-Z().+-] or ASCII
// whitespace (non-ASCII whitespace, which \s also matches, is checked with WS), 0 = none of them.
const RUN = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ().+- \t\n\r\v\f') RUN[c.charCodeAt(0)] = 1;
for (const c of '0123456789') RUN[c.charCodeAt(0)] = 2;
const WS = /\s/;
const runClass = (s: string, i: number): number => {
  const code = s.charCodeAt(i);
  return code < 128 ? RUN[code] : WS.test(s[i]) ? 1 : 0;
};
const DIGIT = /[0-9]/g;

/**
 * Same findings as running the digit patterns over the whole string: each of their matches lies
 * within one maximal stretch of characters they can consist of, so they run only on the stretches
 * with enough digits to give a finding (≥ 10 digits for phone, card or My Number; an IBAN has ≥ 2
 * digits and ≥ 15 characters), with one character of context on each side so that \b is the same.
 */
function scanDigitStretches(s: string, add: (k: PersonalDataKind) => void): void {
  const n = s.length;
  DIGIT.lastIndex = 0;
  for (let m = DIGIT.exec(s); m; m = DIGIT.exec(s)) {
    let a = m.index;
    let digits = 1;
    while (a > 0) {
      const k = runClass(s, a - 1);
      if (!k) break;
      if (k === 2) digits++;
      a--;
    }
    let b = m.index + 1;
    while (b < n) {
      const k = runClass(s, b);
      if (!k) break;
      if (k === 2) digits++;
      b++;
    }
    if (digits >= 10 || (digits >= 2 && b - a >= 15)) scanDigits(a === 0 && b === n ? s : s.slice(a > 0 ? a - 1 : 0, b < n ? b + 1 : n), add);
    DIGIT.lastIndex = b;
  }
}

/** Labels for the arguments of one action: "pii" when personal data is found. */
export function labelArguments(args: unknown, orgDomains: string[]): LabelResult {
  const counts = new Map<PersonalDataKind, number>();
  const add = (k: PersonalDataKind) => counts.set(k, (counts.get(k) ?? 0) + 1);
  const list: string[] = [];
  strings(args, list);
  // One scan over all the strings joined by NUL: no pattern can match a NUL, and next to one \b
  // behaves as at the edge of a string, so the findings are those of each string scanned alone.
  const all = list.length === 1 ? list[0] : list.join('\u0000');
  scanEmails(all, orgDomains, add);
  scanDigitStretches(all, add);
  const findings = [...counts.entries()].map(([kind, count]) => ({ kind, count })).sort((a, b) => a.kind.localeCompare(b.kind));
  return { labels: findings.length ? ['pii'] : [], findings };
}
