'use client';

import { Badge, Button, Card, Grid, Group, Stack, Table, Text, TextInput, Title, UnstyledButton } from '@mantine/core';
import Link from 'next/link';
import { useState } from 'react';
import { useMemberNames } from '@/components/people';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok } from '@/lib/client';

export default function ReviewsPage() {
  return (
    <Guard anyOf={['decide:Review', 'read:Review']} what="review bundles">
      <Reviews />
    </Guard>
  );
}

function Reviews() {
  const list = useLoad(() => ok(api.GET('/v1/reviews', { params: { query: { limit: 100 } } })), []);
  const [selected, setSelected] = useState<string | null>(null);
  const name = useMemberNames();
  return (
    <Stack>
      <PageHeader title="Reviews" description="Batched actions ran at once and wait for a look: accept them, or revert them through their undo. One whose steps cannot run any more (its connector removed, its draft deleted by hand) is dismissed, with a reason." />
      <Grid>
        <Grid.Col span={{ base: 12, md: 5 }}>
          <Loaded load={list} what="review bundles">
            {(page) =>
              page.items.length === 0 ? (
                <Text c="dark.6">No review bundles.</Text>
              ) : (
                <Stack gap="xs">
                  {page.items.map((r) => (
                    <UnstyledButton key={r.taskId} onClick={() => setSelected(r.taskId)} aria-pressed={selected === r.taskId}>
                      <Card withBorder padding="sm">
                        <Group justify="space-between">
                          <Text fw={600}>Task {r.taskId.slice(0, 8)}</Text>
                          <Badge color={r.pending ? 'orange.9' : 'green.9'}>{r.pending ? `${r.pending} to review` : 'settled'}</Badge>
                        </Group>
                        <Text size="sm" c="dark.6">
                          {name(r.userId)} · {r.accepted} accepted · {r.reverted} reverted{r.dismissed ? ` · ${r.dismissed} dismissed` : ''}
                        </Text>
                      </Card>
                    </UnstyledButton>
                  ))}
                </Stack>
              )
            }
          </Loaded>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 7 }}>{selected ? <Bundle key={selected} id={selected} onChanged={list.reload} /> : <Text c="dark.6">Select a bundle.</Text>}</Grid.Col>
      </Grid>
      <GatewayReviews />
    </Stack>
  );
}

function Bundle({ id, onChanged }: { id: string; onChanged(): void }) {
  const bundle = useLoad(() => ok(api.GET('/v1/reviews/{id}', { params: { path: { id } } })), [id]);
  const { session } = useSession();
  const [reason, setReason] = useState('');
  const action = useAction();
  const body = () => (reason.trim() ? { reason: reason.trim() } : {});
  async function all(kind: 'accept' | 'revert') {
    const res = await action.run(() =>
      kind === 'accept' ? ok(api.POST('/v1/reviews/{id}/accept', { params: { path: { id } }, body: body() })) : ok(api.POST('/v1/reviews/{id}/revert', { params: { path: { id } }, body: body() })),
    );
    if (res) {
      bundle.setData(res);
      onChanged();
    }
  }
  async function settle(actionId: string, done: boolean) {
    const res = await action.run(() => ok(api.POST('/v1/reviews/{id}/actions/{actionId}/settle', { params: { path: { id, actionId } }, body: { done, ...body() } })));
    if (res) {
      bundle.setData(res);
      onChanged();
    }
  }
  async function one(actionId: string, kind: 'accept' | 'revert' | 'dismiss') {
    const params = { path: { id, actionId } };
    const res = await action.run(() =>
      kind === 'accept'
        ? ok(api.POST('/v1/reviews/{id}/actions/{actionId}/accept', { params, body: body() }))
        : kind === 'revert'
          ? ok(api.POST('/v1/reviews/{id}/actions/{actionId}/revert', { params, body: body() }))
          : ok(api.POST('/v1/reviews/{id}/actions/{actionId}/dismiss', { params, body: { reason: reason.trim() } })),
    );
    if (res) {
      bundle.setData(res);
      onChanged();
    }
  }
  return (
    <Loaded load={bundle} what="this review bundle">
      {(b) => {
        // Another reviewer accepts the work of one's own agent task; one may revert it.
        const mine = b.userId === session.user.id;
        return (
          <Card withBorder>
            <Stack>
              <Title order={2} size="h3">
                Task <Link href={`/tasks/${b.taskId}`}>{b.taskId.slice(0, 8)}</Link> ({b.taskState})
              </Title>
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Step</Table.Th>
                    <Table.Th>Action</Table.Th>
                    <Table.Th>Level</Table.Th>
                    <Table.Th>Review</Table.Th>
                    <Table.Th />
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {b.actions.map((a) => (
                    <Table.Tr key={a.actionId}>
                      <Table.Td>{a.step ?? '—'}</Table.Td>
                      <Table.Td>
                        {a.connector} · {a.tool}
                        <Text size="xs" c="dark.6">
                          {a.actionType}
                          {a.undoTool ? ` · undo: ${a.undoTool}` : ''}
                        </Text>
                      </Table.Td>
                      <Table.Td>{a.level}</Table.Td>
                      <Table.Td>{a.needsReview ? <ReviewState a={a} /> : 'read only'}</Table.Td>
                      <Table.Td>
                        {a.interrupted && <SettleButtons onSettle={(done) => settle(a.actionId, done)} canSayDone={!(mine && a.reviewState === 'accepting')} />}
                        {a.needsReview && a.reviewState === 'pending' && (
                          <Group gap={4} wrap="nowrap">
                            {!mine && (
                              <Button size="xs" variant="light" color="green" onClick={() => one(a.actionId, 'accept')}>
                                Accept
                              </Button>
                            )}
                            <Button size="xs" variant="light" color="red" disabled={!a.reversible} onClick={() => one(a.actionId, 'revert')}>
                              Revert
                            </Button>
                            {!mine && <DismissButton reason={reason} onDismiss={() => one(a.actionId, 'dismiss')} label={`Dismiss ${a.tool}`} />}
                          </Group>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
              <TextInput label="Reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)} maxLength={1000} />
              <ActionError error={action.error} />
              {b.pending > 0 && mine && <Text size="sm">This is your own agent task: another reviewer accepts its work. You may revert it.</Text>}
              {b.pending > 0 && (
                <Group>
                  {!mine && (
                    <Button color="green.9" onClick={() => all('accept')} loading={action.busy}>
                      Accept the whole bundle
                    </Button>
                  )}
                  <Button color="red.9" variant="outline" onClick={() => all('revert')} loading={action.busy}>
                    Revert the whole bundle
                  </Button>
                </Group>
              )}
            </Stack>
          </Card>
        );
      }}
    </Loaded>
  );
}

/**
 * Batched writes that MCP clients (Claude Desktop, Claude Code, IDEs) made through the gateway: no
 * task holds them, so each waits here under the member it acted for.
 */
function GatewayReviews() {
  const list = useLoad(() => ok(api.GET('/v1/reviews/gateway', { params: { query: { limit: 100 } } })), []);
  const { session } = useSession();
  const name = useMemberNames();
  const action = useAction();
  const [reason, setReason] = useState('');
  async function settle(actionId: string, done: boolean) {
    const res = await action.run(() => ok(api.POST('/v1/reviews/gateway/actions/{actionId}/settle', { params: { path: { actionId } }, body: { done, ...(reason.trim() ? { reason: reason.trim() } : {}) } })));
    if (res) list.reload();
  }
  async function decide(actionIds: string[], kind: 'accept' | 'revert' | 'dismiss') {
    const body = { actionIds, ...(reason.trim() ? { reason: reason.trim() } : {}) };
    const res = await action.run(() =>
      kind === 'accept'
        ? ok(api.POST('/v1/reviews/gateway/accept', { body }))
        : kind === 'revert'
          ? ok(api.POST('/v1/reviews/gateway/revert', { body }))
          : ok(api.POST('/v1/reviews/gateway/dismiss', { body: { actionIds, reason: reason.trim() } })),
    );
    if (res) list.reload();
  }
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h3">
          MCP gateway
        </Title>
        <Text size="sm" c="dark.6">
          Batched writes that members&apos; own agents (Claude Desktop, Claude Code, IDEs) made through the gateway. They ran in their reversible form; accept them, or revert them through their undo.
        </Text>
        <Loaded load={list} what="gateway actions under review">
          {(page) =>
            page.items.length === 0 ? (
              <Text c="dark.6">Nothing from the gateway waits for review.</Text>
            ) : (
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>When</Table.Th>
                    <Table.Th>Member</Table.Th>
                    <Table.Th>Action</Table.Th>
                    <Table.Th>Client</Table.Th>
                    <Table.Th />
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {page.items.map((a) => (
                    <Table.Tr key={a.actionId} data-testid={`gateway-review-${a.actionId}`}>
                      <Table.Td>{fmtDate(a.createdAt)}</Table.Td>
                      <Table.Td>{name(a.userId)}</Table.Td>
                      <Table.Td>
                        {a.connector} · {a.tool}
                        <Text size="xs" c="dark.6">
                          {a.actionType}
                          {a.undoTool ? ` · undo: ${a.undoTool}` : ''}
                          {a.finalizeTool ? ` · on accept: ${a.finalizeTool}` : ''}
                        </Text>
                      </Table.Td>
                      <Table.Td>{a.clientName ?? '—'}</Table.Td>
                      <Table.Td>
                        {a.reviewState !== 'pending' ? (
                          <Stack gap={4}>
                            <ReviewState a={a} />
                            {a.interrupted && <SettleButtons onSettle={(done) => settle(a.actionId, done)} canSayDone={!(a.userId === session.user.id && a.reviewState === 'accepting')} />}
                          </Stack>
                        ) : (
                        <Group gap={4} wrap="nowrap">
                          {a.userId !== session.user.id && (
                            <Button size="xs" color="green.9" onClick={() => decide([a.actionId], 'accept')} aria-label={`Accept ${a.tool} of ${name(a.userId)}`}>
                              Accept
                            </Button>
                          )}
                          <Button size="xs" variant="outline" color="red.9" disabled={!a.undoTool} onClick={() => decide([a.actionId], 'revert')} aria-label={`Revert ${a.tool} of ${name(a.userId)}`}>
                            Revert
                          </Button>
                          {a.userId !== session.user.id && <DismissButton reason={reason} onDismiss={() => decide([a.actionId], 'dismiss')} label={`Dismiss ${a.tool} of ${name(a.userId)}`} />}
                        </Group>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )
          }
        </Loaded>
        <TextInput label="Reason (gateway)" value={reason} onChange={(e) => setReason(e.currentTarget.value)} maxLength={1000} />
        <ActionError error={action.error} />
      </Stack>
    </Card>
  );
}

type StepState = { reviewState: 'pending' | 'accepting' | 'reverting' | 'accepted' | 'reverted' | 'dismissed' | null; interrupted: boolean; reviewedAt: string | null };

/** A review's state in words: a step underway says so, one cut short says that its outcome is unknown. */
function ReviewState({ a }: { a: StepState }) {
  if (a.interrupted) return <Badge color="orange.9">{a.reviewState === 'accepting' ? 'accept' : 'revert'} interrupted: outcome unknown</Badge>;
  if (a.reviewState === 'accepting' || a.reviewState === 'reverting') return <Text size="sm">{a.reviewState === 'accepting' ? 'being accepted' : 'being reverted'}…</Text>;
  return <>{`${a.reviewState ?? 'pending'}${a.reviewedAt ? ` ${fmtDate(a.reviewedAt)}` : ''}`}</>;
}

/** Closes an action without running its undo or finishing step (when neither can run): only with a reason, typed in the reason field first. */
function DismissButton({ reason, onDismiss, label }: { reason: string; onDismiss(): void; label: string }) {
  const why = reason.trim() ? 'Close it without running anything (neither undo nor finishing step)' : 'Type a reason first: dismissing closes the action without running anything';
  return (
    <Button size="xs" variant="outline" color="dark.9" disabled={!reason.trim()} onClick={onDismiss} aria-label={label} title={why}>
      Dismiss
    </Button>
  );
}

/** For a step whose outcome is unknown: a person checked the target and says whether it was carried out. */
function SettleButtons({ onSettle, canSayDone }: { onSettle(done: boolean): void; /** Not for one's own interrupted accept: that would accept one's own work. */ canSayDone: boolean }) {
  return (
    <Group gap={4} wrap="nowrap">
      {canSayDone && (
        <Button size="xs" color="dark.9" onClick={() => onSettle(true)}>
          It was carried out
        </Button>
      )}
      <Button size="xs" color="dark.9" variant="outline" onClick={() => onSettle(false)}>
        It was not
      </Button>
    </Group>
  );
}
