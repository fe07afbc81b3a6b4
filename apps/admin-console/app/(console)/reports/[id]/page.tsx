'use client';

import { Anchor, Badge, Button, Card, Group, SegmentedControl, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import Link from 'next/link';
import { useParams } from 'next/navigation';
import { useState } from 'react';
import { FindingsChart, period, SeriesChart } from '@/components/oversight';
import { useMemberNames } from '@/components/people';
import { fmtDate, Guard, Loaded, PageHeader, SEVERITY_COLOR, short, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

type Finding = Out<'getAnomalyReport'>['findingList'][number];
const SEVERITIES = ['high', 'medium', 'low'] as const;

export default function ReportPage() {
  return (
    <Guard anyOf={['read:AnomalyReport']} what="this anomaly report">
      <Report />
    </Guard>
  );
}

const label = (k: string) => k.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase();
const value = (v: string | number) => (typeof v === 'number' ? v.toLocaleString('en-GB', { maximumFractionDigits: 2 }) : v);

function Report() {
  const { id } = useParams<{ id: string }>();
  const report = useLoad(() => ok(api.GET('/v1/reports/{id}', { params: { path: { id } } })), [id]);
  const [severity, setSeverity] = useState<'all' | (typeof SEVERITIES)[number]>('all');
  const download = (format: 'html' | 'csv' | 'json') => `/api/v1/reports/${id}/download?format=${format}`;

  return (
    <Stack>
      <PageHeader
        title="Anomaly report"
        description={<Link href="/reports">All reports</Link>}
        actions={
          <Group gap="xs">
            <Button component="a" href={download('html')} target="_blank" rel="noopener" variant="light" data-testid="download-html">
              Printable HTML
            </Button>
            <Button component="a" href={download('csv')} download variant="default" data-testid="download-csv">
              CSV
            </Button>
            <Button component="a" href={download('json')} download variant="default" data-testid="download-json">
              JSON
            </Button>
          </Group>
        }
      />
      <Loaded load={report} what="the report">
        {(r) => {
          const shown = severity === 'all' ? r.findingList : r.findingList.filter((f) => f.severity === severity);
          return (
            <Stack>
              <Text data-testid="report-period">
                <strong>{period(r.from, r.to, r.timeZone)}</strong> ({r.timeZone}), measured against each subject's history since {fmtDate(r.baselineFrom)} ·{' '}
                {r.trigger === 'schedule' ? 'monthly schedule' : 'made on demand'} {fmtDate(r.createdAt)}
              </Text>
              <SimpleGrid cols={{ base: 2, md: 4 }}>
                <Stat label="Findings" value={r.findings} testId="report-findings" />
                <Stat label="High severity" value={r.high} testId="report-high" />
                <Stat label="People with activity" value={r.users} testId="report-users" />
                <Stat label="Events scanned" value={r.eventsScanned} testId="report-events" />
              </SimpleGrid>
              {r.findingList.length === 0 ? (
                <Card withBorder>
                  <Text>Nothing stood out in this period.</Text>
                </Card>
              ) : (
                <>
                  <Card withBorder>
                    <Title order={2} size="h4" mb="xs">
                      Findings by kind
                    </Title>
                    <FindingsChart findings={r.findingList} />
                  </Card>
                  <Group justify="space-between">
                    <Title order={2} size="h4">
                      Findings
                    </Title>
                    <SegmentedControl
                      aria-label="Show findings of severity"
                      value={severity}
                      onChange={(v) => setSeverity(v as typeof severity)}
                      data={[{ value: 'all', label: 'All' }, ...SEVERITIES.map((s) => ({ value: s, label: s[0].toUpperCase() + s.slice(1) }))]}
                    />
                  </Group>
                  <Stack data-testid="finding-list">
                    {shown.map((f, i) => (
                      <FindingCard key={`${f.kind}-${f.subject.id}-${f.action ?? ''}-${i}`} f={f} />
                    ))}
                  </Stack>
                </>
              )}
            </Stack>
          );
        }}
      </Loaded>
    </Stack>
  );
}

function Stat({ label, value, testId }: { label: string; value: number; testId: string }) {
  return (
    <Card withBorder padding="sm" data-testid={testId}>
      <Text size="sm" c="dark.6">
        {label}
      </Text>
      <Text fz={24} fw={700}>
        {value.toLocaleString('en-GB')}
      </Text>
    </Card>
  );
}

function FindingCard({ f }: { f: Finding }) {
  const name = useMemberNames();
  const subject =
    f.subject.type === 'user' ? (f.subject.label ?? name(f.subject.id)) : f.subject.type === 'policy' ? `policy ${short(f.subject.id)}` : `connector ${f.subject.label ?? f.subject.id}`;
  const { description, ...baseline } = f.baseline as Record<string, string | number>;
  return (
    <Card withBorder data-testid="finding">
      <Stack gap="xs">
        <Group gap="xs">
          <Badge color={SEVERITY_COLOR[f.severity]}>{f.severity}</Badge>
          <Badge variant="outline" color="dark.6">
            {f.kind.replace(/_/g, ' ')}
          </Badge>
          <Text size="sm" c="dark.6">
            {subject}
            {f.action ? ` · ${f.action}` : ''}
            {f.score !== undefined ? ` · robust z ${f.score}` : ''}
          </Text>
        </Group>
        <Title order={3} size="h5">
          {f.title}
        </Title>
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          <Table variant="vertical" withTableBorder captionSide="top">
            <Table.Caption>Observed in the period</Table.Caption>
            <Table.Tbody>
              {Object.entries(f.observed).map(([k, v]) => (
                <Table.Tr key={k}>
                  <Table.Th w="45%">{label(k)}</Table.Th>
                  <Table.Td>{value(v)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Table variant="vertical" withTableBorder captionSide="top">
            <Table.Caption>Baseline: {String(description ?? '')}</Table.Caption>
            <Table.Tbody>
              {Object.entries(baseline).map(([k, v]) => (
                <Table.Tr key={k}>
                  <Table.Th w="45%">{label(k)}</Table.Th>
                  <Table.Td>{value(v)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </SimpleGrid>
        {f.series && f.series.values.length > 1 && (
          <div>
            <Text size="sm" c="dark.6">
              {f.series.label} (the report period in red)
            </Text>
            <SeriesChart series={f.series} />
          </div>
        )}
        <Text size="sm" data-testid="finding-evidence">
          Evidence: {f.evidence.total.toLocaleString('en-GB')} audit event{f.evidence.total === 1 ? '' : 's'}
          {f.evidence.eventIds.length > 0 && ' — '}
          {f.evidence.eventIds.slice(0, 10).map((e, i) => (
            <span key={e}>
              {i > 0 && ', '}
              <Anchor component={Link} href={`/audit?event=${e}`} aria-label={`audit event ${short(e)}`}>
                {short(e)}
              </Anchor>
            </span>
          ))}
          {f.evidence.eventIds.length > 10 && ` and ${f.evidence.eventIds.length - 10} more in the downloads`}
        </Text>
      </Stack>
    </Card>
  );
}
