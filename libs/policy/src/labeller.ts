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

// E-mail addresses: /[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}/g, matched by hand (scanEmails).
// Numbers end where digits end, not where words do: "TEL09012345678" (or ＴＥＬ０９０… folded) is a phone number,
// "No4111111111111111" a card number (a letter before or after is no boundary a number needs).
const PHONE = /(?:\+|(?<![0-9])0)\d[\d\s().-]{7,16}\d(?![0-9])/g;
const DIGIT_RUN = /(?<![0-9])\d(?:[ -]?\d){11,18}(?![0-9])/g;
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

/*
 * The findings are defined as those of the patterns above run over all the strings of the
 * arguments (object keys included, at most MAX_STRINGS of them, MAX_DEPTH deep) joined by NUL —
 * no pattern can match a NUL, and next to one \b behaves as at the edge of a string, so that is
 * each string scanned alone (test/labeller-reference.ts runs them so, and the tests compare).
 * Here each string is scanned where it is found, nothing is joined or collected, and a string
 * only reaches a regular expression where one can find something:
 * - e-mail: at each "@", the match is worked out by hand (see emailEnd), with no allocation;
 * - digits: one pass finds the maximal stretches of characters the digit patterns consist of;
 *   only a stretch with enough digits (and capital letters, for an IBAN) goes to the patterns
 *   that can match in it.
 */

interface Scan {
  /** Strings seen so far, against MAX_STRINGS (counted as the list of the reference grows). */
  strings: number;
  orgDomains: string[];
  /** orgDomains lower-cased (holes left out), made at the first e-mail address. */
  lowered: string[] | null;
  emailExternal: number;
  phone: number;
  card: number;
  myNumber: number;
  iban: number;
  /** Some content was past the bounds (MAX_STRINGS, MAX_DEPTH) and not scanned. */
  cut: boolean;
}

/** Content the bounds left unscanned: a string, or an array or object with something in it. */
export function hasContent(value: unknown): boolean {
  if (typeof value === 'string') return true;
  if (Array.isArray(value)) return value.length > 0;
  return !!value && typeof value === 'object' && Object.keys(value).length > 0;
}

function walk(value: unknown, st: Scan, depth: number): void {
  if (st.strings >= MAX_STRINGS || depth > MAX_DEPTH) {
    // Not scanned is not clean: arguments nested or padded past the bounds count as personal data.
    if (!st.cut && hasContent(value)) st.cut = true;
    return;
  }
  if (typeof value === 'string') {
    st.strings++;
    scanString(value, st);
  } else if (Array.isArray(value)) for (const v of value) walk(v, st, depth + 1);
  else if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      // (Every key counts, even once the limit is reached, as the reference pushes them.)
      st.strings++;
      scanString(k, st);
      walk(obj[k], st, depth + 1);
    }
  }
}

/** Full-width forms of ASCII (U+FF01–U+FF5E) and the ideographic space, as Japanese text writes numbers and addresses. */
const FULL_WIDTH = /[\uFF01-\uFF5E\u3000]/;
const FULL_WIDTH_ALL = /[\uFF01-\uFF5E\u3000]/g;

/**
 * The string with full-width ASCII folded to ASCII, one code unit for one (so offsets stay): "０９０－１２３４－５６７８"
 * and "taro＠customer.example" are found as the phone number and the address they are.
 */
export function foldFullWidth(s: string): string {
  return FULL_WIDTH.test(s) ? s.replace(FULL_WIDTH_ALL, (c) => (c === '\u3000' ? ' ' : String.fromCharCode(c.charCodeAt(0) - 0xfee0))) : s;
}

function scanString(raw: string, st: Scan): void {
  const s = raw.length >= 6 ? foldFullWidth(raw) : raw;
  const n = s.length;
  // Shortest findings: "a@b.cd" (6 characters); 10 digits; an IBAN has 15 characters.
  if (n < 6) return;
  if (n < SHORT) {
    // One loop for the first "@" and the first digit.
    let at = -1;
    let digit = -1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === 64) {
        if (at < 0) at = i;
        if (digit >= 0) break;
      } else if (c <= 57 && c >= 48 && digit < 0) {
        digit = i;
        if (at >= 0) break;
      }
    }
    if (at >= 0) scanEmails(s, at, st);
    if (digit >= 0 && n >= 10) scanDigitStretches(s, digit, st);
    return;
  }
  const at = s.indexOf('@');
  if (at >= 0) scanEmails(s, at, st);
  const digit = nextDigit(s, 0);
  if (digit >= 0) scanDigitStretches(s, digit, st);
}

/** Below this length a string is looped over; above, the regular expression engine looks for digits. */
const SHORT = 48;
const DIGIT = /[0-9]/g;

/** The first digit at or after `from`, or -1. */
function nextDigit(s: string, from: number): number {
  const n = s.length;
  if (n - from < SHORT) {
    for (let i = from; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c <= 57 && c >= 48) return i;
    }
    return -1;
  }
  DIGIT.lastIndex = from;
  return DIGIT.test(s) ? DIGIT.lastIndex - 1 : -1;
}

// Characters the e-mail pattern consists of (ASCII only): 1 = local part only ([_%+]),
// 2 = local part and domain ([0-9.-]), 3 = also the top-level domain ([A-Za-z]).
const EMAIL_CLASS = new Uint8Array(128);
for (const c of '_%+') EMAIL_CLASS[c.charCodeAt(0)] = 1;
for (const c of '0123456789.-') EMAIL_CLASS[c.charCodeAt(0)] = 2;
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') EMAIL_CLASS[c.charCodeAt(0)] = 3;
/** 0 for anything not ASCII. (Callers stay within the string: charCodeAt past its end is NaN, and slow.) */
const emailClass = (code: number): number => (code < 128 ? EMAIL_CLASS[code] : 0);

/**
 * Where EMAIL, tried at a start whose local part runs up to the "@" at `at` (1–64 characters of
 * the local class, so no other "@" can end it), ends; -1 when it does not match. After the "@" the
 * domain class is taken greedily (at most 253) and given back until "\.[A-Za-z]{2,63}" follows:
 * the match takes the last "." (up to the end of that run) followed by two letters, then as
 * many letters as there are, at most 63.
 */
function emailEnd(s: string, at: number): number {
  const n = s.length;
  const p0 = at + 1;
  const runEnd = Math.min(n, p0 + 253);
  let q = p0;
  while (q < runEnd && emailClass(s.charCodeAt(q)) >= 2) q++;
  // q: the end of the greedy run; the "." can be at most there (when the run stopped at 253).
  if (q > n - 3) q = n - 3;
  for (; q > p0; q--) {
    if (s.charCodeAt(q) === 46 && emailClass(s.charCodeAt(q + 1)) === 3 && emailClass(s.charCodeAt(q + 2)) === 3) {
      let e = q + 3;
      const last = Math.min(n, q + 64);
      while (e < last && emailClass(s.charCodeAt(e)) === 3) e++;
      return e;
    }
  }
  return -1;
}

/** Whether the domain s[from, to) (ASCII, any case) is one of the org's or under one. */
function internalDomain(s: string, from: number, to: number, st: Scan): boolean {
  let lowered = st.lowered;
  if (lowered === null) {
    lowered = [];
    const org = st.orgDomains;
    for (let i = 0; i < org.length; i++) if (i in org) lowered.push(org[i].toLowerCase());
    st.lowered = lowered;
  }
  const len = to - from;
  for (const d of lowered) {
    const dl = d.length;
    if (dl > len) continue;
    // Equal, or ends with "." + d.
    const off = to - dl;
    if (dl < len && s.charCodeAt(off - 1) !== 46) continue;
    let same = true;
    for (let i = 0; i < dl; i++) {
      let c = s.charCodeAt(off + i);
      if (c >= 65 && c <= 90) c += 32;
      if (c !== d.charCodeAt(i)) {
        same = false;
        break;
      }
    }
    if (same) return true;
  }
  return false;
}

/**
 * Same findings as running EMAIL over the string, without running the regex at every position:
 * every match contains an "@", its local part (no "@" in it) ends right before that "@" and starts
 * at most 64 characters back, not before the end of the previous match. From the earliest such
 * start the pattern either matches (the leftmost match, as the global regex finds) or matches from
 * no start before that "@".
 */
function scanEmails(s: string, first: number, st: Scan): void {
  let from = 0;
  for (let at = first; at >= 0; at = s.indexOf('@', Math.max(at + 1, from))) {
    let start = at;
    while (start > from && at - start < 64 && emailClass(s.charCodeAt(start - 1)) !== 0) start--;
    if (start === at) continue;
    const end = emailEnd(s, at);
    if (end < 0) continue;
    if (!internalDomain(s, at + 1, end, st)) st.emailExternal++;
    from = end;
  }
}

// Characters a PHONE, DIGIT_RUN or IBAN match can consist of: 2 = digit, 3 = [A-Z], 1 = [().+-]
// or whitespace, 0 = none of them.
const RUN = new Uint8Array(128);
for (const c of '().+- \t\n\r\v\f') RUN[c.charCodeAt(0)] = 1;
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') RUN[c.charCodeAt(0)] = 3;
for (const c of '0123456789') RUN[c.charCodeAt(0)] = 2;
/** The characters beyond ASCII that \s matches. */
function nonAsciiSpace(code: number): boolean {
  return code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000 || code === 0xfeff;
}
const runClass = (code: number): number => (code < 128 ? RUN[code] : nonAsciiSpace(code) ? 1 : 0);

/**
 * Same findings as running the digit patterns over the whole string: each of their matches lies
 * within one maximal stretch of characters they can consist of, so they run only on the stretches
 * where they can find something (≥ 12 digits for a card or My Number, ≥ 10 for a phone; an IBAN
 * has ≥ 2 capital letters, ≥ 2 digits and ≥ 15 characters), with one character of context on
 * each side so that the patterns' boundaries (\b, and digit look-arounds) are the same. `i` is the first digit.
 */
function scanDigitStretches(s: string, i: number, st: Scan): void {
  const n = s.length;
  while (i < n) {
    let a = i;
    let digits = 1;
    let capitals = 0;
    while (a > 0) {
      const k = runClass(s.charCodeAt(a - 1));
      if (k === 0) break;
      if (k === 2) digits++;
      else if (k === 3) capitals++;
      a--;
    }
    let b = i + 1;
    while (b < n) {
      const k = runClass(s.charCodeAt(b));
      if (k === 0) break;
      if (k === 2) digits++;
      else if (k === 3) capitals++;
      b++;
    }
    const iban = capitals >= 2 && digits >= 2 && b - a >= 15;
    if (digits >= 10 || iban) scanDigits(a === 0 && b === n ? s : s.slice(a > 0 ? a - 1 : 0, b < n ? b + 1 : n), digits, iban, st);
    if (b + 1 >= n) return;
    i = nextDigit(s, b + 1);
    if (i < 0) return;
  }
}

/** The digits in s[from, to). */
function countDigits(s: string, from: number, to: number): number {
  let digits = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c <= 57 && c >= 48) digits++;
  }
  return digits;
}

/**
 * The digit patterns (My Number, card, IBAN, phone) over one stretch (with its context), `digits`
 * in it. exec from lastIndex 0 on finds what matchAll finds (no pattern matches the empty string);
 * each pattern stops once what is left of the stretch is too short for a finding (fewer than 12
 * digits for a card or My Number, 10 for a phone, 15 characters for an IBAN).
 */
function scanDigits(s: string, digits: number, iban: boolean, st: Scan): void {
  let taken: number[] | null = null;
  if (digits >= 12) {
    DIGIT_RUN.lastIndex = 0;
    let left = digits;
    let pos = 0;
    while (left >= 12) {
      const m = DIGIT_RUN.exec(s);
      if (m === null) break;
      const end = DIGIT_RUN.lastIndex;
      left -= countDigits(s, pos, end);
      pos = end;
      const run = m[0].replace(/[ -]/g, '');
      if (run.length === 12 && myNumberValid(run)) st.myNumber++;
      else if (run.length >= 13 && run.length <= 19 && luhn(run)) st.card++;
      else continue;
      (taken ??= []).push(m.index, end);
    }
  }
  if (iban) {
    IBAN.lastIndex = 0;
    while (s.length - IBAN.lastIndex >= 15) {
      const m = IBAN.exec(s);
      if (m === null) break;
      if (ibanValid(m[0])) st.iban++;
    }
  }
  if (digits >= 10) {
    PHONE.lastIndex = 0;
    let left = digits;
    let pos = 0;
    outer: while (left >= 10) {
      const m = PHONE.exec(s);
      if (m === null) break;
      const start = m.index;
      const end = PHONE.lastIndex;
      const inMatch = countDigits(s, start, end);
      left -= countDigits(s, pos, start) + inMatch;
      pos = end;
      if (taken !== null) for (let t = 0; t < taken.length; t += 2) if (start >= taken[t] && start < taken[t + 1]) continue outer;
      if (inMatch >= 10 && inMatch <= 15) st.phone++;
    }
  }
}

/** Labels for the arguments of one action: "pii" when personal data is found. */
export function labelArguments(args: unknown, orgDomains: string[]): LabelResult {
  const st: Scan = { strings: 0, orgDomains, lowered: null, emailExternal: 0, phone: 0, card: 0, myNumber: 0, iban: 0, cut: false };
  walk(args, st, 0);
  // By kind, sorted.
  const findings: LabelResult['findings'] = [];
  if (st.card) findings.push({ kind: 'card_number', count: st.card });
  if (st.emailExternal) findings.push({ kind: 'email_external', count: st.emailExternal });
  if (st.iban) findings.push({ kind: 'iban', count: st.iban });
  if (st.myNumber) findings.push({ kind: 'my_number', count: st.myNumber });
  if (st.phone) findings.push({ kind: 'phone', count: st.phone });
  // Arguments the bounds cut short are labelled as if they held personal data (fail closed).
  return { labels: findings.length || st.cut ? ['pii'] : [], findings };
}

const EMAIL = /[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63})\b/g;
/** Keys of structured content whose values are identifiers, never personal data (left as they are). */
const STRUCTURAL_KEYS = new Set(['type', 'id', 'tool_use_id', 'name', 'role', 'model']);

export interface RedactionResult<T> {
  value: T;
  /** What was replaced, by kind (counts only). */
  redacted: { kind: PersonalDataKind; count: number }[];
}

/**
 * A copy of `value` with the personal data the labeller finds replaced by `[redacted KIND]`:
 * e-mail addresses outside the org's domains, card numbers (Luhn), My Number (check digit),
 * IBANs (mod 97) and phone numbers. A string holding full-width ASCII comes back with it folded to
 * ASCII (so that "０９０－１２３４－５６７８" is redacted as the phone number it is). Used where the policy's decision carries the
 * `redact_personal_data` obligation (what is sent to the model). Counts, never values, come back.
 */
export function redactPersonalData<T>(value: T, orgDomains: string[]): RedactionResult<T> {
  const domains = orgDomains.map((d) => d.toLowerCase());
  const counts: Record<PersonalDataKind, number> = { email_external: 0, phone: 0, card_number: 0, my_number: 0, iban: 0 };
  const own = (domain: string) => {
    const d = domain.toLowerCase();
    return domains.some((o) => d === o || d.endsWith(`.${o}`));
  };
  const text = (raw: string): string => {
    // (Full-width ASCII is folded first: what the labeller finds there is redacted too.)
    const s = foldFullWidth(raw);
    let out = s.replace(DIGIT_RUN, (m) => {
      const run = m.replace(/[ -]/g, '');
      if (run.length === 12 && myNumberValid(run)) return (counts.my_number++, '[redacted my_number]');
      if (run.length >= 13 && run.length <= 19 && luhn(run)) return (counts.card_number++, '[redacted card_number]');
      return m;
    });
    out = out.replace(IBAN, (m) => (ibanValid(m) ? (counts.iban++, '[redacted iban]') : m));
    out = out.replace(PHONE, (m) => {
      const digits = m.replace(/\D/g, '').length;
      return digits >= 10 && digits <= 15 ? (counts.phone++, '[redacted phone]') : m;
    });
    return out.replace(EMAIL, (m, domain: string) => (own(domain) ? m : (counts.email_external++, '[redacted email]')));
  };
  const walkCopy = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return text(v);
    if (depth > MAX_DEPTH || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => walkCopy(x, depth + 1));
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) o[k] = STRUCTURAL_KEYS.has(k) ? x : walkCopy(x, depth + 1);
    return o;
  };
  const out = walkCopy(value, 0) as T;
  const redacted = (Object.keys(counts) as PersonalDataKind[]).filter((k) => counts[k] > 0).sort().map((kind) => ({ kind, count: counts[kind] }));
  return { value: out, redacted };
}
