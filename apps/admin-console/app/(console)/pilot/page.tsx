'use client';

import { Badge, Button, Card, Group, NumberInput, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, fmtPct, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

type Metrics = Out<'getPilotMetrics'>;
type Row = Metrics['workflows'][number];
const DECISION: Record<Row['decision'], { label: string; color: string }> = {
  roll_out: { label: 'Roll out', color: 'green.9' },
  extend: { label: 'Extend the pilot', color: 'orange.9' },
  stop: { label: 'Stop', color: 'red.9' },
  insufficient_data: { label: 'Not enough data', color: 'gray.9' },
};

export default function PilotPage() {
  return (
    <Guard anyOf={['update:Workflow', 'read:AuditEvent']} what="the pilot metrics">
      <Pilot />
    </Guard>
  );
}

const dayIso = (d: string, end = false) => new Date(new Date(`${d}T00:00:00Z`).getTime() + (end ? 86_400_000 : 0)).toISOString();
const hours = (m: number | null) => (m === null ? '—' : `${Math.round(m / 6) / 10} h`);

function Pilot() {
  const { can } = useSession();
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [range, setRange] = useState<{ from?: string; to?: string }>({});
  const metrics = useLoad(() => ok(api.GET('/v1/pilot/metrics', { params: { query: range } })), [range.from, range.to]);
  const workflows = useLoad(async () => (can('update:Workflow') ? ok(api.GET('/v1/workflows', { params: { query: { limit: 200 } } })) : null), []);

  return (
    <Stack>
      <PageHeader
        title="Pilot metrics"
        description="Per workflow: tasks run, completion, time saved against the manual baseline, and the employees' 1–5 ratings — with the pilot decision the thresholds give."
      />
      <Card withBorder>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setRange({ ...(from ? { from: dayIso(from) } : {}), ...(to ? { to: dayIso(to, true) } : {}) });
          }}
        >
          <Group align="flex-end">
            <TextInput type="date" label="From" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
            <TextInput type="date" label="To (included)" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
            <Button type="submit">Show</Button>
            <Text size="sm" c="dark.6">
              Default: the last 30 days.
            </Text>
          </Group>
        </form>
      </Card>
      <Loaded load={metrics} what="the pilot metrics">
        {(m) => (
          <Stack>
            <Text size="sm" c="dark.6" data-testid="pilot-thresholds">
              {fmtDate(m.from)} – {fmtDate(m.to)} · roll out at ≥ {fmtPct(m.thresholds.rollOutCompletion)} completion and ≥ {m.thresholds.rollOutSatisfaction.toFixed(1)} satisfaction; extend
              from {fmtPct(m.thresholds.extendCompletion)} completion; below, stop.
            </Text>
            {m.workflows.length === 0 ? (
              <Card withBorder>
                <Text>No workflow yet: define workflows, then run tasks in them.</Text>
              </Card>
            ) : (
              <>
                <Card withBorder>
                  <Title order={2} size="h4" mb="xs">
                    Completion and satisfaction
                  </Title>
                  <PilotChart rows={m.workflows} />
                </Card>
                <Table data-testid="pilot-table">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Workflow</Table.Th>
                      <Table.Th>Tasks run</Table.Th>
                      <Table.Th>Completion</Table.Th>
                      <Table.Th>Satisfaction</Table.Th>
                      <Table.Th>Time saved</Table.Th>
                      <Table.Th>Incidents</Table.Th>
                      <Table.Th>Decision</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {m.workflows.map((w) => (
                      <Table.Tr key={w.workflow} data-testid={`pilot-${w.workflow}`}>
                        <Table.Td>
                          <Text fw={600} size="sm">
                            {w.name}
                          </Text>
                          <Text size="xs" c="dark.6">
                            {w.workflow}
                          </Text>
                        </Table.Td>
                        <Table.Td>
                          {w.tasksRun}
                          <Text size="xs" c="dark.6">
                            {w.completed} done · {w.failed} failed · {w.cancelled} cancelled · {w.inReview} in review
                          </Text>
                        </Table.Td>
                        <Table.Td>{fmtPct(w.completionRate)}</Table.Td>
                        <Table.Td>
                          {w.satisfaction === null ? '—' : w.satisfaction.toFixed(1)}
                          <Text size="xs" c="dark.6">
                            {w.ratings} rating{w.ratings === 1 ? '' : 's'}
                          </Text>
                        </Table.Td>
                        <Table.Td>
                          {hours(w.timeSavedMinutes)}
                          <Text size="xs" c="dark.6">
                            {w.manualBaselineMinutes === null ? 'no manual baseline' : `${w.manualBaselineMinutes} min by hand per task`}
                          </Text>
                        </Table.Td>
                        <Table.Td>{w.incidents}</Table.Td>
                        <Table.Td>
                          <Badge color={DECISION[w.decision].color} data-testid="pilot-decision">
                            {DECISION[w.decision].label}
                          </Badge>
                          <Text size="xs" c="dark.6">
                            {w.decisionReason}
                          </Text>
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </>
            )}
            {workflows.data && workflows.data.items.length > 0 && <Baselines workflows={workflows.data.items} rows={m.workflows} onSaved={metrics.reload} />}
          </Stack>
        )}
      </Loaded>
    </Stack>
  );
}

function PilotChart({ rows }: { rows: Row[] }) {
  const data = rows.map((w) => ({ workflow: w.workflow, completion: w.completionRate === null ? 0 : Math.round(w.completionRate * 100), satisfaction: w.satisfaction === null ? 0 : Math.round(w.satisfaction * 20) }));
  const label = `Completion and satisfaction per workflow: ${rows.map((w) => `${w.workflow} ${fmtPct(w.completionRate)} completed, satisfaction ${w.satisfaction?.toFixed(1) ?? 'none'}`).join('; ')}`;
  return (
    <div style={{ width: '100%', height: 240 }} role="img" aria-label={label} data-testid="pilot-chart">
      <ResponsiveContainer>
        <BarChart data={data}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="workflow" />
          <YAxis domain={[0, 100]} unit="%" />
          <Tooltip />
          <Legend verticalAlign="top" />
          <Bar dataKey="completion" name="completion (%)" fill="#3b4cca" isAnimationActive={false} />
          <Bar dataKey="satisfaction" name="satisfaction (% of 5)" fill="#237032" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

/** The manual baseline of each workflow (minutes per task by hand): time saved = baseline × completed tasks. */
function Baselines({ workflows, rows, onSaved }: { workflows: { id: string; key: string; name: string }[]; rows: Row[]; onSaved(): void }) {
  const [values, setValues] = useState<Record<string, number | string>>({});
  const action = useAction();
  async function save(id: string, key: string) {
    const v = Number(values[key]);
    const res = await action.run(() => ok(api.PUT('/v1/workflows/{id}/baseline', { params: { path: { id } }, body: { manualMinutes: v } })));
    if (res) onSaved();
  }
  return (
    <Card withBorder>
      <Title order={2} size="h4" mb="xs">
        Manual baselines
      </Title>
      <Stack gap="xs">
        {workflows.map((w) => {
          const current = rows.find((r) => r.workflow === w.key)?.manualBaselineMinutes ?? null;
          const v = values[w.key] ?? current ?? '';
          return (
            <Group key={w.id} align="flex-end">
              <NumberInput label={`${w.name}: minutes per task by hand`} min={1} max={100_000} value={v} onChange={(n) => setValues({ ...values, [w.key]: n })} w={320} />
              <Button variant="light" disabled={!v || Number(v) === current} loading={action.busy} onClick={() => save(w.id, w.key)} aria-label={`Save the baseline of ${w.name}`}>
                Save
              </Button>
            </Group>
          );
        })}
        <ActionError error={action.error} />
      </Stack>
    </Card>
  );
}
