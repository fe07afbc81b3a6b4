'use client';

import { Anchor, Badge, Button, Card, Group, Stack, Switch, Table, Text, TextInput, Title } from '@mantine/core';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { useSession } from '@/components/session';
import { period } from '@/components/oversight';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type In } from '@/lib/client';

export default function ReportsPage() {
  return (
    <Guard anyOf={['read:AnomalyReport']} what="the anomaly reports">
      <Reports />
    </Guard>
  );
}

/** "2026-11-01" from the date input → midnight UTC of that day. */
const dayStart = (d: string) => new Date(`${d}T00:00:00Z`).toISOString();

function Reports() {
  const { can } = useSession();
  const router = useRouter();
  const list = useLoad(() => ok(api.GET('/v1/reports', { params: { query: { limit: 50 } } })), []);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const generate = useAction();

  async function run() {
    const body: In<'createAnomalyReport'> = {};
    if (from) body.from = dayStart(from);
    if (to) body.to = dayStart(to);
    const report = await generate.run(() => ok(api.POST('/v1/reports', { body })));
    if (report) router.push(`/reports/${report.id}`);
  }

  return (
    <Stack>
      <PageHeader
        title="Anomaly reports"
        description="Each month, what stood out in the agents' activity against each person's own history: spikes, odd hours, denials, mass actions, cost, rubber-stamped approvals, overdue policy reviews, strikes."
      />
      {can('create:AnomalyReport') && (
        <Card withBorder>
          <Title order={2} size="h4" mb="xs">
            Generate a report
          </Title>
          <Text size="sm" c="dark.6" mb="sm">
            Leave the dates empty for last month. A period is at most 366 days; the last day is included.
          </Text>
          <Group align="flex-end">
            <TextInput type="date" label="First day" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
            <TextInput type="date" label="Up to (not included)" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
            <Button onClick={run} loading={generate.busy}>
              Generate report
            </Button>
          </Group>
          <ActionError error={generate.error} />
        </Card>
      )}
      <Schedule />
      <Card withBorder>
        <Title order={2} size="h4" mb="xs">
          Stored reports
        </Title>
        <Loaded load={list} what="the reports">
          {(page) =>
            page.items.length === 0 ? (
              <Text c="dark.6">No report yet.</Text>
            ) : (
              <Table data-testid="report-list">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Period</Table.Th>
                    <Table.Th>Findings</Table.Th>
                    <Table.Th>Events scanned</Table.Th>
                    <Table.Th>How</Table.Th>
                    <Table.Th>Made</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {page.items.map((r) => (
                    <Table.Tr key={r.id}>
                      <Table.Td>
                        <Anchor component={Link} href={`/reports/${r.id}`}>
                          {period(r.from, r.to)}
                        </Anchor>
                      </Table.Td>
                      <Table.Td>
                        {r.findings}{' '}
                        {r.high > 0 && (
                          <Badge color="red.9" size="sm">
                            {r.high} high
                          </Badge>
                        )}
                      </Table.Td>
                      <Table.Td>{r.eventsScanned.toLocaleString('en-GB')}</Table.Td>
                      <Table.Td>{r.trigger === 'schedule' ? 'monthly schedule' : 'on demand'}</Table.Td>
                      <Table.Td>{fmtDate(r.createdAt)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )
          }
        </Loaded>
      </Card>
    </Stack>
  );
}

/** The monthly schedule: 1st of the month, 01:00 in the org's zone. */
function Schedule() {
  const { can } = useSession();
  const schedule = useLoad(() => ok(api.GET('/v1/reports/schedule')), []);
  const [zone, setZone] = useState<string | null>(null);
  const save = useAction();
  const editable = can('schedule:AnomalyReport');

  async function set(enabled: boolean) {
    const timeZone = (zone ?? schedule.data?.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone).trim();
    const res = await save.run(() => ok(api.PUT('/v1/reports/schedule', { body: { timeZone, enabled } })));
    if (res) schedule.setData(res);
  }

  return (
    <Card withBorder>
      <Title order={2} size="h4" mb="xs">
        Monthly schedule
      </Title>
      <Loaded load={schedule} what="the schedule">
        {(s) => (
          <Stack gap="xs">
            <Text size="sm" data-testid="report-schedule">
              {s.enabled ? `On: the 1st of each month, 01:00 ${s.timeZone}; next ${fmtDate(s.nextRunAt)}.` : 'Off: reports are made on demand only.'}
              {s.lastRunAt && ` Last run ${fmtDate(s.lastRunAt)}.`}
            </Text>
            {editable && (
              <Group align="flex-end">
                <TextInput label="Time zone" description="IANA name, such as Europe/Berlin" value={zone ?? s.timeZone ?? ''} onChange={(e) => setZone(e.currentTarget.value)} />
                <Switch label="Monthly report on" checked={s.enabled} disabled={save.busy} onChange={(e) => set(e.currentTarget.checked)} />
                {s.enabled && (
                  <Button variant="light" onClick={() => set(true)} loading={save.busy}>
                    Save zone
                  </Button>
                )}
              </Group>
            )}
            <ActionError error={save.error} />
          </Stack>
        )}
      </Loaded>
    </Card>
  );
}
