/**
 * A naive labeller for the tests: the patterns run plainly over all the strings of the arguments
 * joined by NUL (no pattern can match a NUL), as the labeller's comments define its findings.
 * Slow on purpose; labelArguments() must find exactly what this finds.
 */
import { foldFullWidth, ibanValid, type LabelResult, luhn, myNumberValid, type PersonalDataKind } from '../src/labeller';

const MAX_STRINGS = 10_000;
const MAX_DEPTH = 20;

const EMAIL = /[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}/g;
const PHONE = /(?:\+|(?<![0-9])0)\d[\d\s().-]{7,16}\d(?![0-9])/g;
const DIGIT_RUN = /(?<![0-9])\d(?:[ -]?\d){11,18}(?![0-9])/g;
const IBAN = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/g;

function strings(value: unknown, out: string[], depth = 0, cut = { cut: false }): void {
  if (out.length >= MAX_STRINGS || depth > MAX_DEPTH) {
    if (typeof value === 'string' || (Array.isArray(value) ? value.length > 0 : !!value && typeof value === 'object' && Object.keys(value).length > 0)) cut.cut = true;
    return;
  }
  if (typeof value === 'string') out.push(foldFullWidth(value));
  else if (Array.isArray(value)) for (const v of value) strings(v, out, depth + 1, cut);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(foldFullWidth(k));
      strings(v, out, depth + 1, cut);
    }
  }
}

function internal(address: string, orgDomains: string[]): boolean {
  const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  return orgDomains.some((d) => domain === d.toLowerCase() || domain.endsWith(`.${d.toLowerCase()}`));
}

export function referenceLabelArguments(args: unknown, orgDomains: string[]): LabelResult {
  const counts = new Map<PersonalDataKind, number>();
  const add = (k: PersonalDataKind) => counts.set(k, (counts.get(k) ?? 0) + 1);
  const list: string[] = [];
  const cut = { cut: false };
  strings(args, list, 0, cut);
  const s = list.join('\u0000');
  for (const m of s.matchAll(EMAIL)) if (!internal(m[0], orgDomains)) add('email_external');
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
  const findings = [...counts.entries()].map(([kind, count]) => ({ kind, count })).sort((a, b) => a.kind.localeCompare(b.kind));
  return { labels: findings.length || cut.cut ? ['pii'] : [], findings };
}
