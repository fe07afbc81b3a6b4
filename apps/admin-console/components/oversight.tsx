'use client';

import { Bar, BarChart, CartesianGrid, Cell, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';

/** A report's period as days (the end is exclusive). */
export function period(from: string, to: string, timeZone = 'UTC'): string {
  const day = (ms: number) => new Date(ms).toLocaleDateString('en-GB', { dateStyle: 'medium', timeZone });
  return `${day(new Date(from).getTime())} – ${day(new Date(to).getTime() - 1)}`;
}

const SEVERITY_FILL = { low: '#495057', medium: '#c2410c', high: '#b91c1c' } as const;

/** Findings per kind, stacked by severity. */
export function FindingsChart({ findings }: { findings: { kind: string; severity: 'low' | 'medium' | 'high' }[] }) {
  const kinds = [...new Set(findings.map((f) => f.kind))];
  const data = kinds.map((kind) => {
    const of = findings.filter((f) => f.kind === kind);
    return { kind: kind.replace(/_/g, ' '), low: of.filter((f) => f.severity === 'low').length, medium: of.filter((f) => f.severity === 'medium').length, high: of.filter((f) => f.severity === 'high').length };
  });
  const label = `Findings by kind: ${data.map((d) => `${d.kind} ${d.low + d.medium + d.high}`).join(', ')}`;
  return (
    <div style={{ width: '100%', height: 260 }} role="img" aria-label={label} data-testid="findings-chart">
      <ResponsiveContainer>
        <BarChart data={data} margin={{ left: 0, right: 8, bottom: 40 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="kind" interval={0} angle={-20} textAnchor="end" height={60} />
          <YAxis allowDecimals={false} />
          <Tooltip />
          <Legend verticalAlign="top" />
          {(['high', 'medium', 'low'] as const).map((s) => (
            <Bar key={s} dataKey={s} stackId="sev" name={s} fill={SEVERITY_FILL[s]} isAnimationActive={false} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

/** A finding's series: the history in grey, the report period in colour. */
export function SeriesChart({ series }: { series: { label: string; values: number[]; markFrom?: number } }) {
  const mark = series.markFrom ?? series.values.length;
  const data = series.values.map((v, i) => ({ i: i + 1, v, period: i >= mark }));
  const periodValues = series.values.slice(mark);
  const label = `${series.label}: ${series.values.length} values, the period's highest ${periodValues.length ? Math.max(...periodValues) : '—'}, before it at most ${mark > 0 ? Math.max(...series.values.slice(0, mark)) : '—'}`;
  return (
    <div style={{ width: '100%', height: 160 }} role="img" aria-label={label} data-testid="finding-series">
      <ResponsiveContainer>
        <BarChart data={data} margin={{ left: 0, right: 8 }}>
          <XAxis dataKey="i" hide />
          <YAxis width={40} />
          <Tooltip labelFormatter={() => ''} />
          <Bar dataKey="v" name={series.label} isAnimationActive={false}>
            {data.map((d) => (
              <Cell key={d.i} fill={d.period ? '#b91c1c' : '#adb5bd'} />
            ))}
          </Bar>
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
