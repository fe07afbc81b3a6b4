import { labelArguments, redactPersonalData } from './labeller';

describe('redactPersonalData', () => {
  const domains = ['acme.example'];

  it('replaces what the labeller finds, keeps the org own addresses and structural fields, and reports counts only', () => {
    const messages = [
      { role: 'user', content: 'Invoice for bob@gmail.com, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, call +81 90 1234 5678; cc alice@acme.example and ops@eu.acme.example' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_0123456789012345', name: 'gmail__send', input: { to: 'carol@outlook.example', amount: 4111111111111111 } }] },
    ];
    const r = redactPersonalData(messages, domains);
    const text = JSON.stringify(r.value);
    for (const gone of ['bob@gmail.com', '4111 1111 1111 1111', 'DE89 3704', '+81 90 1234 5678', 'carol@outlook.example']) expect(text).not.toContain(gone);
    expect(text).toContain('alice@acme.example');
    expect(text).toContain('ops@eu.acme.example');
    expect(text).toContain('toolu_0123456789012345');
    expect(r.redacted).toEqual([
      { kind: 'card_number', count: 1 },
      { kind: 'email_external', count: 2 },
      { kind: 'iban', count: 1 },
      { kind: 'phone', count: 1 },
    ]);
    expect(JSON.stringify(r.redacted)).not.toContain('gmail');
    // The original is untouched, and what is left has no personal data the labeller sees.
    expect(messages[0]!.content).toContain('bob@gmail.com');
    expect(labelArguments(r.value, domains).labels).toEqual([]);
  });

  it('leaves numbers that fail their check digits alone', () => {
    const r = redactPersonalData({ text: 'order 4111 1111 1111 1112 of 12 units' }, domains);
    expect(r.value.text).toBe('order 4111 1111 1111 1112 of 12 units');
    expect(r.redacted).toEqual([]);
  });
});
