import type { AnomalyReport, Finding, FindingKind } from './findings';
import { FINDING_KINDS } from './findings';

/** The report as a download: HTML (readable, printable, charts as inline SVG — nothing fetched), CSV or JSON. */

const esc = (s: unknown) =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const KIND_LABEL: Record<FindingKind, string> = {
  volume_spike: 'Volume spikes',
  unusual_hours: 'Unusual hours',
  denial_rate: 'Refusals by the gate',
  rejection_rate: 'Rejected approval requests',
  first_connector: 'First use of a connector',
  mass_delete: 'Mass deletes',
  mass_send: 'Mass sends',
  bulk_external_share: 'Bulk external shares',
  cost_spike: 'Cost spikes',
  rubber_stamp: 'Rubber-stamped approvals',
  slow_approval: 'Slow approvals',
  policy_review_overdue: 'Policies past their review date',
  user_strikes: 'Users with strikes',
};

const SEVERITY_COLOUR = { high: '#b3261e', medium: '#b26a00', low: '#44617b' } as const;

/** Findings per kind and severity as a horizontal stacked bar chart. */
function summaryChart(findings: Finding[]): string {
  const rows = FINDING_KINDS.map((k) => ({ k, high: 0, medium: 0, low: 0 }));
  for (const f of findings) rows.find((r) => r.k === f.kind)![f.severity]++;
  const max = Math.max(1, ...rows.map((r) => r.high + r.medium + r.low));
  const rowH = 20;
  const labelW = 230;
  const barW = 380;
  const bars = rows
    .map((r, i) => {
      let x = labelW;
      const y = i * rowH;
      const parts = (['high', 'medium', 'low'] as const)
        .map((s) => {
          const w = (r[s] / max) * barW;
          const rect = w > 0 ? `<rect x="${x.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${SEVERITY_COLOUR[s]}"><title>${r[s]} ${s}</title></rect>` : '';
          x += w;
          return rect;
        })
        .join('');
      const total = r.high + r.medium + r.low;
      return `<text x="${labelW - 8}" y="${y + rowH - 6}" text-anchor="end">${esc(KIND_LABEL[r.k])}</text>${parts}<text x="${(x + 6).toFixed(1)}" y="${y + rowH - 6}">${total}</text>`;
    })
    .join('');
  return `<svg class="chart" role="img" aria-label="Findings per kind and severity" viewBox="0 0 ${labelW + barW + 40} ${rows.length * rowH}" width="${labelW + barW + 40}" height="${rows.length * rowH}" font-size="12" font-family="inherit">${bars}</svg>`;
}

/** A finding's series as small bars, the period's in colour. */
function seriesChart(f: Finding): string {
  const s = f.series;
  if (!s || !s.values.length) return '';
  const w = 560;
  const h = 70;
  const max = Math.max(1e-9, ...s.values);
  const bw = w / s.values.length;
  const bars = s.values
    .map((v, i) => {
      const bh = (v / max) * (h - 14);
      const inPeriod = s.markFrom !== undefined && s.markFrom >= 0 && i >= s.markFrom;
      return `<rect x="${(i * bw).toFixed(1)}" y="${(h - bh).toFixed(1)}" width="${Math.max(0.5, bw - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="${inPeriod ? SEVERITY_COLOUR[f.severity] : '#9aa5b1'}"><title>${v}</title></rect>`;
    })
    .join('');
  return `<figure><svg class="chart" role="img" aria-label="${esc(s.label)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}">${bars}<text x="0" y="10" font-size="10">max ${esc(max)}</text></svg><figcaption>${esc(s.label)} (grey: before the period; coloured: the period)</figcaption></figure>`;
}

function table(obj: Record<string, unknown>): string {
  return `<table>${Object.entries(obj)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join('')}</table>`;
}

export function reportHtml(r: AnomalyReport & { id?: string }, orgName: string, eventLink: (id: string) => string): string {
  const counts = { high: 0, medium: 0, low: 0 };
  for (const f of r.findings) counts[f.severity]++;
  const items = r.findings
    .map(
      (f, i) => `<section class="finding ${f.severity}">
  <h3><span class="sev">${f.severity}</span> ${i + 1}. ${esc(KIND_LABEL[f.kind])} — ${esc(f.subject.label ?? f.subject.id)}</h3>
  <p>${esc(f.title)}${f.score !== undefined ? ` · robust z = ${esc(f.score)}` : ''}</p>
  <div class="cols"><div><h4>Observed</h4>${table(f.observed)}</div><div><h4>Baseline</h4>${table(f.baseline)}</div></div>
  ${seriesChart(f)}
  <h4>Evidence (${f.evidence.total} event${f.evidence.total === 1 ? '' : 's'}${f.evidence.total > f.evidence.eventIds.length ? `, first ${f.evidence.eventIds.length}` : ''})</h4>
  <p class="ids">${f.evidence.eventIds.map((id) => `<a href="${esc(eventLink(id))}">${esc(id)}</a>`).join(' ')}</p>
</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Anomaly report ${esc(r.from.slice(0, 10))} – ${esc(r.to.slice(0, 10))}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2329;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;border-bottom:1px solid #ccd;padding-bottom:.2rem;margin-top:2rem}h3{font-size:1rem;margin:.2rem 0}h4{font-size:.85rem;margin:.6rem 0 .2rem}
.meta{color:#52606d}.finding{border:1px solid #d9dee3;border-left:6px solid #44617b;border-radius:4px;padding:.6rem .9rem;margin:.8rem 0;page-break-inside:avoid}
.finding.high{border-left-color:#b3261e}.finding.medium{border-left-color:#b26a00}.sev{text-transform:uppercase;font-size:.7rem;font-weight:700;letter-spacing:.05em}
table{border-collapse:collapse;font-size:.8rem}th,td{text-align:left;padding:.1rem .6rem .1rem 0;vertical-align:top}th{color:#52606d;font-weight:500}
.cols{display:flex;gap:2rem;flex-wrap:wrap}.ids{font-family:ui-monospace,monospace;font-size:.7rem;word-break:break-all}.chart text{fill:#1d2329}
figure{margin:.4rem 0}figcaption{font-size:.75rem;color:#52606d}
@media print{body{margin:0;max-width:none}a{color:inherit;text-decoration:none}.finding{break-inside:avoid}}
</style></head><body>
<h1>Anomaly report — ${esc(orgName)}</h1>
<p class="meta">Period ${esc(r.from)} to ${esc(r.to)} (${esc(r.timeZone)}), measured against each subject's own history since ${esc(r.baselineFrom.slice(0, 10))}.
${r.eventsScanned} agent actions of ${r.users} members scanned; generated ${esc(r.generatedAt)}${r.id ? ` · report ${esc(r.id)}` : ''}.</p>
<h2>Summary</h2>
<p><strong>${r.findings.length}</strong> finding${r.findings.length === 1 ? '' : 's'}: ${counts.high} high, ${counts.medium} medium, ${counts.low} low.</p>
${summaryChart(r.findings)}
<h2>Findings</h2>
${items || '<p>Nothing stood out in this period.</p>'}
<h2>How findings are made</h2>
<p class="meta">Each measure compares the period with the subject's own history using medians and median absolute deviations (robust z = (value − median) / (1.4826 · MAD), never below count noise), and a finding also needs a material size; thresholds are listed in libs/oversight/README.md.</p>
</body></html>
`;
}

const csvCell = (v: unknown) => {
  let s = String(v ?? '');
  // Formula injection: a cell a spreadsheet would evaluate starts with a quote.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function reportCsv(r: AnomalyReport): string {
  const head = ['severity', 'kind', 'subject_type', 'subject', 'subject_label', 'action', 'title', 'score', 'observed', 'baseline', 'evidence_total', 'evidence_event_ids'];
  const lines = r.findings.map((f) =>
    [
      f.severity,
      f.kind,
      f.subject.type,
      f.subject.id,
      f.subject.label ?? '',
      f.action ?? '',
      f.title,
      f.score ?? '',
      Object.entries(f.observed).map(([k, v]) => `${k}=${v}`).join('; '),
      Object.entries(f.baseline).map(([k, v]) => `${k}=${v}`).join('; '),
      f.evidence.total,
      f.evidence.eventIds.join(' '),
    ]
      .map(csvCell)
      .join(','),
  );
  return `${[head.join(','), ...lines].join('\r\n')}\r\n`;
}
