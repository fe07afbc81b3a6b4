import { ibanValid, labelArguments, luhn, myNumberValid } from '../src/labeller';

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

  it('stays bounded on deep or huge input', () => {
    let deep: unknown = 'x@evil.example';
    for (let i = 0; i < 1000; i++) deep = { d: deep };
    expect(labelArguments(deep, ORG).labels).toEqual([]);
    const many = Array.from({ length: 20_000 }, () => 'a@b.example');
    expect(labelArguments(many, ORG).findings[0].count).toBeLessThanOrEqual(10_000);
  });
});
