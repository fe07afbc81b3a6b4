import fc from 'fast-check';
import { ibanValid, labelArguments, luhn, myNumberValid, redactPersonalData } from '../src/labeller';
import { referenceLabelArguments } from './labeller-reference';

const ORG = ['acme.example'];

describe('labelArguments', () => {
  it('finds personal data and reports kinds, never values', () => {
    const args = {
      to: ['ann@acme.example', 'client@customer.example'],
      body: 'Call me on +81 90-1234-5678. Card 4111 1111 1111 1111, My Number 123456789018, IBAN GB82 WEST 1234 5698 7654 32.',
    };
    const result = labelArguments(args, ORG);
    expect(result.labels).toEqual(['pii']);
    expect(result.findings).toEqual([
      { kind: 'card_number', count: 1 },
      { kind: 'email_external', count: 1 },
      { kind: 'iban', count: 1 },
      { kind: 'my_number', count: 1 },
      { kind: 'phone', count: 1 },
    ]);
    expect(JSON.stringify(result)).not.toMatch(/4111|customer\.example|5678/);
  });

  it('finds personal data written in full-width forms, as Japanese documents write it (and redacts it)', () => {
    const fw = (s: string) => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
    const body = `マイナンバー：${fw('1234 5678 9018')}　電話：${fw('090-1234-5678')}　メール：${fw('taro@customer.example')}`;
    const result = labelArguments({ body }, ORG);
    expect(result.labels).toEqual(['pii']);
    expect(result.findings).toEqual([
      { kind: 'email_external', count: 1 },
      { kind: 'my_number', count: 1 },
      { kind: 'phone', count: 1 },
    ]);
    const redacted = redactPersonalData({ body }, ORG);
    expect(redacted.redacted).toEqual(result.findings);
    expect(redacted.value.body).toBe('マイナンバー:[redacted my_number] 電話:[redacted phone] メール:[redacted email]');
    // Internal mail in full-width is still internal.
    expect(labelArguments({ to: fw('ann@acme.example') }, ORG)).toEqual({ labels: [], findings: [] });
    // A number written straight after a word (full-width folded, or ASCII) is still the number it is.
    for (const text of [fw('TEL09012345678'), 'TEL09012345678', 'tel_090-1234-5678', `${fw('Ｎｏ')}4111111111111111`, '09012345678番']) {
      expect({ text, findings: labelArguments({ text }, ORG).findings }).toEqual({ text, findings: [{ kind: text.includes('4111') ? 'card_number' : 'phone', count: 1 }] });
    }
    expect(redactPersonalData({ body: fw('ＴＥＬ09012345678') }, ORG).value.body).toBe('TEL[redacted phone]');
  });

  it('finds nothing in ordinary internal work', () => {
    const result = labelArguments({ to: ['ann@acme.example'], subject: 'Q3 numbers', body: 'Revenue grew 12% to 4,200,000 in 2026; see /finance/q3.xlsx' }, ORG);
    expect(result).toEqual({ labels: [], findings: [] });
  });

  it('checks the check digits', () => {
    expect(luhn('4111111111111111')).toBe(true);
    expect(luhn('4111111111111112')).toBe(false);
    expect(myNumberValid('123456789018')).toBe(true);
    expect(myNumberValid('123456789012')).toBe(false);
    expect(ibanValid('GB82 WEST 1234 5698 7654 32')).toBe(true);
    expect(ibanValid('GB83 WEST 1234 5698 7654 32')).toBe(false);
    expect(labelArguments({ n: '1234 5678 9012 3456' }, ORG).labels).toEqual([]);
  });

  it('stays bounded on deep or huge input, and labels what it could not scan as personal data (fails closed)', () => {
    let deep: unknown = 'x@evil.example';
    for (let i = 0; i < 1000; i++) deep = { d: deep };
    expect(labelArguments(deep, ORG)).toEqual({ labels: ['pii'], findings: [] });
    // Padded past 10,000 strings: what comes after is not scanned, so the arguments count as personal data.
    const padded = { filler: Array.from({ length: 10_001 }, () => 'x'), to: 'someone@evil.example' };
    expect(labelArguments(padded, ORG)).toEqual({ labels: ['pii'], findings: [] });
    // Within the bounds, nothing found: no label.
    expect(labelArguments({ filler: Array.from({ length: 100 }, () => 'x') }, ORG).labels).toEqual([]);
    const many = Array.from({ length: 20_000 }, () => 'a@b.example');
    expect(labelArguments(many, ORG).findings[0].count).toBeLessThanOrEqual(10_000);
  });
});

describe('labelArguments against the naive reference (the patterns over all strings joined)', () => {
  // Pieces that make the patterns match, almost match and touch each other, with every character
  // class the scanners treat apart (digits, capitals, separators, whitespace beyond ASCII, NUL).
  const PIECES = [
    '0', '1', '2', '5', '7', '9', '12', '555', '4111', ' ', '  ', '-', '(', ')', '+', '.', '@', '_', '%', 'a', 'Z', 'GB', 'DE', 'WEST',
    '\u00a0', '\u2003', '\u3000', '\n', '\t', 'ü', '€', '\u0000', 'acme.example', 'ACME.Example', 'sub.acme.example', 'partner.example',
    '.com', '.c', '.co1', '4111 1111 1111 1111', '5500-0000-0000-0004', '123456789018', '1234 5678 9018', 'GB82 WEST 1234 5698 7654 32',
    'DE89 3704 0044 0532 0130 00', 'NO9386011117947', 'NO93 8601 1117 947', 'BE68539007547034', '+44 20 7946 0958', '030 1234 5678', '+1 (415) 555-1234', '+81 90-1234-5678', 'jane.doe@partner.example',
    'bob@acme.example', 'a@b.cd', 'x@acme-corp.example', 'A'.repeat(70), '1'.repeat(20), 'a'.repeat(66), 'd'.repeat(260), 'Lorem ipsum dolor sit amet, '.repeat(3),
  ];
  const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 30 }).map((xs) => xs.join(''));
  const args = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, text, fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(text, tie('value'), { maxKeys: 4 }), fc.integer()),
  })).value;
  const orgs = fc.constantFrom<string[]>(['acme.example'], ['acme.example', 'acme-corp.example'], ['ACME.example'], [], ['example']);

  it('finds exactly what the reference finds', () => {
    fc.assert(
      fc.property(args, orgs, (a, org) => {
        expect(labelArguments(a, org)).toEqual(referenceLabelArguments(a, org));
      }),
      { numRuns: 3000 },
    );
  });

  it('finds exactly what the reference finds in long prose around the patterns', () => {
    fc.assert(
      fc.property(fc.array(text, { minLength: 1, maxLength: 8 }), orgs, (parts, org) => {
        const prose = parts.join(' the quarterly numbers look solid but we should revisit the forecast '.repeat(4));
        expect(labelArguments({ body: prose, to: parts }, org)).toEqual(referenceLabelArguments({ body: prose, to: parts }, org));
      }),
      { numRuns: 500 },
    );
  });

  it('treats every UTF-16 code unit next to and inside the patterns as the reference does', () => {
    // The scanners classify characters by table (e.g. which ones \s matches beyond ASCII).
    const differ: number[] = [];
    for (let code = 0; code < 0x10000; code++) {
      const c = String.fromCharCode(code);
      const args = [`Call +44${c}20 7946 0958${c}or DE89${c}3704 0044 0532 0130 00 ${c}4111 1111 1111 1111${c}`, `${c}NO9386011117947${c}`, `NO93${c}8601 1117 947`, `x${c}jane@partner${c}.example${c}com a${c}@b.example`];
      if (JSON.stringify(labelArguments(args, ['acme.example'])) !== JSON.stringify(referenceLabelArguments(args, ['acme.example']))) differ.push(code);
    }
    expect(differ).toEqual([]);
  });

  it('goes as deep as the reference does', () => {
    for (let depth = 17; depth <= 23; depth++) {
      let nested: unknown = { key: 'x@outside.example', list: ['y@outside.example', ['z@outside.example']] };
      for (let i = 0; i < depth; i++) nested = i % 2 ? { d: nested, e: 'e@outside.example' } : [nested, 'a@outside.example'];
      expect(labelArguments(nested, [])).toEqual(referenceLabelArguments(nested, []));
    }
  });

  it('counts strings up to the limit as the reference does', () => {
    for (const n of [9_990, 9_995, 9_996, 9_997, 9_998, 9_999, 10_000]) {
      const many = { a: Array.from({ length: n }, () => 'x'), b: 'a@b.example', 'k@key.example': ['c@d.example', 'e@f.example'], d: { 'g@h.example': 'i@j.example' }, z: 'k@l.example' };
      expect(labelArguments(many, [])).toEqual(referenceLabelArguments(many, []));
      expect(labelArguments([many, 'm@n.example'], [])).toEqual(referenceLabelArguments([many, 'm@n.example'], []));
    }
  });
});
