'use client';

import { Alert, Badge, Button, Card, Code, Grid, Group, SegmentedControl, Stack, Table, Text, Textarea, Title, UnstyledButton } from '@mantine/core';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { Suspense, useState } from 'react';
import { useMemberNames } from '@/components/people';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok } from '@/lib/client';

export default function ApprovalsPage() {
  return (
    <Guard anyOf={['decide:Approval', 'read:Approval']} what="the approvals inbox">
      <Suspense>
        <Inbox />
      </Suspense>
    </Guard>
  );
}

type StateFilter = 'pending' | 'approved' | 'rejected' | 'all';

function Inbox() {
  const [filter, setFilter] = useState<StateFilter>('pending');
  // `?id=` (the link in an approval notice) opens that approval at once.
  const params = useSearchParams();
  const [selected, setSelected] = useState<string | null>(params.get('id'));
  const name = useMemberNames();
  const list = useLoad(
    () => ok(api.GET('/v1/approvals', { params: { query: { limit: 100, ...(filter === 'all' ? {} : { state: filter }) } } })),
    [filter],
  );
  return (
    <Stack>
      <PageHeader title="Approvals" description="Watched actions wait here for a person. Check the exact action, then approve or reject it with a reason." />
      <SegmentedControl
        aria-label="Show approvals"
        value={filter}
        onChange={(v) => setFilter(v as StateFilter)}
        data={[
          { value: 'pending', label: 'Waiting' },
          { value: 'approved', label: 'Approved' },
          { value: 'rejected', label: 'Rejected' },
          { value: 'all', label: 'All' },
        ]}
        w="fit-content"
      />
      <Grid>
        <Grid.Col span={{ base: 12, md: 5 }}>
          <Loaded load={list} what="approvals">
            {(page) =>
              page.items.length === 0 ? (
                <Text c="dark.6">Nothing here.</Text>
              ) : (
                <Stack gap="xs" data-testid="approval-list">
                  {page.items.map((a) => (
                    <UnstyledButton key={a.id} onClick={() => setSelected(a.id)} aria-pressed={selected === a.id} data-testid="approval-item">
                      <Card withBorder padding="sm" bg={selected === a.id ? 'var(--mantine-color-indigo-0)' : undefined}>
                        <Group justify="space-between">
                          <Text fw={600}>
                            {a.connector} · {a.tool}
                          </Text>
                          <Group gap={4}>
                            {a.kind === 'outcome_unknown' && <Badge color="red.9">outcome unknown</Badge>}
                            <Badge color={a.state === 'pending' ? 'orange.9' : a.state === 'approved' ? 'green.9' : 'gray.9'}>{a.state}</Badge>
                          </Group>
                        </Group>
                        <Text size="sm" c="dark.6">
                          {a.actionType} · asked by {name(a.requestedBy)} · {fmtDate(a.createdAt)}
                        </Text>
                        {a.canDecide && (
                          <Text size="xs" c="indigo.9" fw={600}>
                            Waiting for your decision
                          </Text>
                        )}
                      </Card>
                    </UnstyledButton>
                  ))}
                </Stack>
              )
            }
          </Loaded>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 7 }}>
          {selected ? <Detail key={selected} id={selected} onDecided={list.reload} /> : <Text c="dark.6">Select an approval to see the exact action.</Text>}
        </Grid.Col>
      </Grid>
    </Stack>
  );
}

function Detail({ id, onDecided }: { id: string; onDecided(): void }) {
  const detail = useLoad(() => ok(api.GET('/v1/approvals/{id}', { params: { path: { id } } })), [id]);
  const name = useMemberNames();
  const [reason, setReason] = useState('');
  const action = useAction();

  async function decide(kind: 'approve' | 'reject' | 'done' | 'not_done') {
    const body = reason.trim() ? { reason: reason.trim() } : undefined;
    const res = await action.run(() =>
      kind === 'approve'
        ? ok(api.POST('/v1/approvals/{id}/approve', { params: { path: { id } }, body: body ?? {} }))
        : kind === 'reject'
          ? ok(api.POST('/v1/approvals/{id}/reject', { params: { path: { id } }, body: { reason: reason.trim() } }))
          : ok(api.POST('/v1/approvals/{id}/settle', { params: { path: { id } }, body: { done: kind === 'done', ...(body ?? {}) } })),
    );
    if (res) {
      detail.setData(res);
      setReason('');
      onDecided();
    }
  }

  return (
    <Loaded load={detail} what="this approval">
      {(a) => (
        <Card withBorder data-testid="approval-detail">
          <Stack>
            <Title order={2} size="h3">
              {a.connector} · {a.tool}
            </Title>
            <Table variant="vertical" layout="fixed">
              <Table.Tbody>
                <Table.Tr>
                  <Table.Th w={170}>State</Table.Th>
                  <Table.Td data-testid="approval-state">{a.state}</Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Action type</Table.Th>
                  <Table.Td>{a.actionType}</Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Why it waits</Table.Th>
                  <Table.Td>{a.reason}</Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Asked by</Table.Th>
                  <Table.Td>
                    {name(a.requestedBy)}
                    {a.taskId && (
                      <>
                        {' '}
                        in <Link href={`/tasks/${a.taskId}`}>task {a.taskId.slice(0, 8)}</Link>, step {a.step}
                      </>
                    )}
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>What the task had read</Table.Th>
                  <Table.Td>
                    {a.tainted ? <Badge color="red.9">untrusted content</Badge> : <Badge color="gray.9">nothing untrusted</Badge>}{' '}
                    {a.labels.map((l) => (
                      <Badge key={l} variant="outline" color="dark.6" mr={4}>
                        {l}
                      </Badge>
                    ))}
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Approvals</Table.Th>
                  <Table.Td>
                    {a.approvals} of {a.quorum}
                    {a.expiresAt ? ` · expires ${fmtDate(a.expiresAt)}` : ''}
                  </Table.Td>
                </Table.Tr>
              </Table.Tbody>
            </Table>
            <div>
              <Text fw={600} mb={4}>
                Exact arguments {a.argumentsMatch === false && <Badge color="red.9">do not match what was bound</Badge>}
              </Text>
              <Code block data-testid="approval-arguments">
                {a.arguments ? JSON.stringify(a.arguments, null, 2) : '(not available)'}
              </Code>
              <Text size="xs" c="dark.6" mt={4}>
                Bound digest {a.argsDigest}
              </Text>
            </div>
            {a.votes.length > 0 && (
              <Table>
                <Table.Tbody>
                  {a.votes.map((v) => (
                    <Table.Tr key={v.userId + v.at}>
                      <Table.Td>{name(v.userId)}</Table.Td>
                      <Table.Td>{v.vote}</Table.Td>
                      <Table.Td>{v.reason ?? ''}</Table.Td>
                      <Table.Td>{fmtDate(v.at)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
            {a.canDecide && a.kind === 'outcome_unknown' ? (
              <Stack gap="xs">
                <Alert color="red" variant="light" title="Outcome unknown">
                  This action was claimed, and its outcome was never written, so it may or may not have happened. It will not be run again. Check the
                  target system, then say what you found.
                </Alert>
                <Textarea label="What you checked (optional)" value={reason} onChange={(e) => setReason(e.currentTarget.value)} maxLength={1000} />
                <ActionError error={action.error} />
                <Group>
                  <Button color="dark.9" onClick={() => decide('done')} loading={action.busy}>
                    It was carried out
                  </Button>
                  <Button color="dark.9" variant="outline" onClick={() => decide('not_done')} loading={action.busy}>
                    It was not carried out
                  </Button>
                </Group>
              </Stack>
            ) : a.canDecide ? (
              <Stack gap="xs">
                {a.argumentsMatch === false ? (
                  <Alert color="red" variant="light" title="Cannot be approved" data-testid="approval-unshowable">
                    The arguments on record are not the ones this approval is bound to, so what is shown is not what would run. Reject it.
                  </Alert>
                ) : (
                  a.arguments === null && (
                    <Alert color="orange" variant="light" title="Arguments not shown" data-testid="approval-unshowable">
                      The exact arguments of this action cannot be shown (too long to keep whole, or no longer readable): approve only if you know what it does from
                      the tool, the requester and the reason; otherwise reject it.
                    </Alert>
                  )
                )}
                <Textarea label="Reason (required to reject)" value={reason} onChange={(e) => setReason(e.currentTarget.value)} maxLength={1000} />
                <ActionError error={action.error} />
                <Group>
                  <Button color="green.9" onClick={() => decide('approve')} loading={action.busy} disabled={a.argumentsMatch === false}>
                    Approve
                  </Button>
                  <Button color="red.9" variant="outline" onClick={() => decide('reject')} loading={action.busy} disabled={!reason.trim()}>
                    Reject
                  </Button>
                </Group>
              </Stack>
            ) : (
              a.state === 'pending' && (
                <Alert color="gray" variant="light">
                  You cannot decide this one (not an eligible approver, your own request, or you already voted).
                </Alert>
              )
            )}
          </Stack>
        </Card>
      )}
    </Loaded>
  );
}
