import { canonical, toCanonicalEvent } from './event';
import type { ExportLine } from './export';
import { formatPage, type PageFormat, PageFormatter } from './export-format';

const lines: ExportLine[] = Array.from({ length: 700 }, (_, i) => ({
  seq: i + 1,
  hash: i.toString(16).padStart(64, '0'),
  canonical: canonical(
    toCanonicalEvent({
      id: `01a20000-0000-7000-8000-${String(i).padStart(12, '0')}`,
      orgId: '01a20000-0000-7000-8000-00000000000a',
      occurredAt: new Date(Date.UTC(2026, 10, 22, 1, 0, i % 60)),
      actor: i % 3 ? { type: 'agent_task', id: null } : { type: 'user', id: '01a20000-0000-7000-8000-00000000000b' },
      action: ['file.read', 'email.send', 'member.suspend', 'auth.login'][i % 4],
      level: i % 4 < 2 ? 'watched' : null,
      decision: i % 4 < 2 ? (i % 8 ? 'allowed' : 'denied') : null,
      outcome: i % 8 ? 'success' : 'denied',
      client: 'worker',
      sourceIp: i % 5 ? null : '203.0.113.7',
      payload: { n: i, note: 'pipe | equals = backslash \\ newline \n' },
    }),
  ),
}));

describe('export pages formatted on a worker thread', () => {
  it.each<PageFormat>(['ocsf', 'ecs', 'cef', 'csv', 'ndjson'])('%s: the worker gives exactly what the calling thread gives, in order', async (format) => {
    const formatter = new PageFormatter(format, '0.1.0');
    try {
      const pages = [lines.slice(0, 300), lines.slice(300, 650), lines.slice(650)];
      // Several pages in flight at once come back in the order given.
      const texts = (await Promise.all(pages.map((p) => formatter.page(p)))).map((chunks) => chunks.join(''));
      expect(texts).toEqual(pages.map((p) => formatPage(p, format, '0.1.0').join('')));
      expect(texts.join('').split('\n')).toHaveLength(lines.length + 1);
      // In chunks small enough to stay out of V8's large-object space.
      expect(Math.max(...pages.flatMap((p) => formatPage(p, format, '0.1.0')).map((c) => c.length))).toBeLessThan(70_000);
      // Streamed with several pages in formatting at once: the same text, in order.
      const streamed: string[] = [];
      for await (const t of formatter.texts((async function* () { yield* pages; })(), 2)) streamed.push(t);
      expect(streamed.join('')).toEqual(texts.join(''));
    } finally {
      await formatter.close();
    }
  });
});
