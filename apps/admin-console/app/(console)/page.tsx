'use client';

import { Anchor, Badge, Card, Group, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import Link from 'next/link';
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { KillSwitch } from '@/components/org';
import { useSession } from '@/components/session';
import { fmtDate, fmtUsd, Loaded, PageHeader, short, useLoad } from '@/components/ui';
import { api, ok } from '@/lib/client';

function Stat({ label, value, href, testId }: { label: string; value: number | string; href?: string; testId: string }) {
  return (
    <Card withBorder padding="md" data-testid={testId}>
      <Text size="sm" c="dark.6">
        {label}
      </Text>
      <Text fz={28} fw={700}>
        {value}
      </Text>
      {href && (
        <Anchor component={Link} href={href} size="sm">
          Open
        </Anchor>
      )}
    </Card>
  );
}

export default function OverviewPage() {
  const { session, can } = useSession();
  const canApprovals = can('decide:Approval') || can('read:Approval');
  const canReviews = can('decide:Review') || can('read:Review');
  const canTasks = can('read:Task', { own: true });
  const canAudit = can('read:AuditEvent');

  const approvals = useLoad(async () => (canApprovals ? ok(api.GET('/v1/approvals', { params: { query: { state: 'pending', limit: 200 } } })) : null), [canApprovals]);
  const reviews = useLoad(async () => (canReviews ? ok(api.GET('/v1/reviews', { params: { query: { limit: 100 } } })) : null), [canReviews]);
  const gatewayReviews = useLoad(async () => (canReviews ? ok(api.GET('/v1/reviews/gateway', { params: { query: { limit: 200 } } })) : null), [canReviews]);
  const running = useLoad(async () => (canTasks ? ok(api.GET('/v1/tasks', { params: { query: { state: 'running', limit: 100 } } })) : null), [canTasks]);
  const usage = useLoad(async () => (canTasks ? ok(api.GET('/v1/usage')) : null), [canTasks]);
  const canIncidents = can('read:Incident');
  const incidents = useLoad(async () => (canIncidents ? ok(api.GET('/v1/incidents', { params: { query: { state: 'open', limit: 200 } } })) : null), [canIncidents]);
  const denials = useLoad(async () => (canAudit ? ok(api.GET('/v1/audit-events', { params: { query: { outcome: 'denied', limit: 10 } } })) : null), [canAudit]);

  const pendingReviews = reviews.data?.items.filter((r) => r.pending > 0) ?? [];
  const spent = usage.data?.org?.spentUsd ?? usage.data?.users.reduce((s, u) => s + u.spentUsd, 0) ?? 0;
  const budget = usage.data?.org ? usage.data.org.budgetUsd : (usage.data?.users[0]?.budgetUsd ?? null);

  return (
    <Stack>
      <PageHeader title="Overview" description={`Signed in to ${session.org.name} as ${session.user.email} (${session.roles.join(', ') || 'no role'})`} />
      <Card withBorder>
        <Group justify="space-between">
          <Stack gap={2}>
            <Title order={2} size="h4">
              Kill switch
            </Title>
            <Text size="sm" c="dark.6">
              Pausing stops every agent task of the organisation at its next step.
            </Text>
          </Stack>
          <KillSwitch />
        </Group>
      </Card>
      <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
        {canApprovals && <Stat testId="stat-approvals" label="Pending approvals" value={approvals.data ? approvals.data.items.filter((a) => a.canDecide || !can('decide:Approval')).length : '…'} href="/approvals" />}
        {canReviews && <Stat testId="stat-reviews" label="Review bundles waiting" value={reviews.data ? pendingReviews.length : '…'} href="/reviews" />}
        {canReviews && <Stat testId="stat-gateway-reviews" label="Gateway actions to review" value={gatewayReviews.data ? `${gatewayReviews.data.items.length}${gatewayReviews.data.nextCursor ? '+' : ''}` : '…'} href="/reviews" />}
        {canIncidents && <Stat testId="stat-incidents" label="Open incidents" value={incidents.data ? incidents.data.items.length : '…'} href="/incidents" />}
        {canTasks && <Stat testId="stat-running" label="Agents running" value={running.data ? running.data.items.length : '…'} href="/tasks" />}
        {canTasks && <Stat testId="stat-spend" label={`Spend ${usage.data?.month ?? 'this month'}`} value={usage.data ? `${fmtUsd(spent)}${budget !== null ? ` of ${fmtUsd(budget)}` : ''}` : '…'} />}
      </SimpleGrid>
      {canTasks && (
        <Card withBorder>
          <Title order={2} size="h4" mb="sm">
            Spend this month by person
          </Title>
          <Loaded load={usage} what="usage">
            {(u) =>
              !u || u.users.length === 0 ? (
                <Text c="dark.6">No agent spend this month yet.</Text>
              ) : (
                <div style={{ width: '100%', height: 220 }} role="img" aria-label={`Spend by person: ${u.users.map((x) => `${short(x.userId)} ${fmtUsd(x.spentUsd)}`).join(', ')}`}>
                  <ResponsiveContainer>
                    <BarChart data={u.users.map((x) => ({ user: short(x.userId), spent: Number(x.spentUsd.toFixed(4)) }))}>
                      <CartesianGrid strokeDasharray="3 3" />
                      <XAxis dataKey="user" />
                      <YAxis />
                      <Tooltip />
                      <Bar dataKey="spent" name="USD" fill="#3b4cca" />
                    </BarChart>
                  </ResponsiveContainer>
                </div>
              )
            }
          </Loaded>
        </Card>
      )}
      {canAudit && (
        <Card withBorder>
          <Title order={2} size="h4" mb="sm">
            Recent denials
          </Title>
          <Loaded load={denials} what="recent denials">
            {(d) =>
              !d || d.items.length === 0 ? (
                <Text c="dark.6">No denied actions recorded.</Text>
              ) : (
                <Table>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>When</Table.Th>
                      <Table.Th>Action</Table.Th>
                      <Table.Th>Actor</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {d.items.map((e) => (
                      <Table.Tr key={e.id}>
                        <Table.Td>{fmtDate(e.occurredAt)}</Table.Td>
                        <Table.Td>
                          <Anchor component={Link} href={`/audit?event=${e.id}`}>
                            {e.action}
                          </Anchor>
                        </Table.Td>
                        <Table.Td>
                          <Badge variant="light" color="gray">
                            {e.actorType}
                          </Badge>{' '}
                          {short(e.actorId)}
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )
            }
          </Loaded>
        </Card>
      )}
    </Stack>
  );
}
