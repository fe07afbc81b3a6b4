'use client';

import { Alert, Anchor, Badge, Button, Card, Code, Grid, Group, Modal, NativeSelect, SegmentedControl, Stack, Table, Tabs, Text, Textarea, Title, UnstyledButton } from '@mantine/core';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { Suspense, useState } from 'react';
import { useMemberNames } from '@/components/people';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type In, type Out } from '@/lib/client';

type ViolationFilter = 'open' | 'confirmed' | 'dismissed' | 'all';
type Sanction = Out<'listSanctions'>['items'][number];
const V_COLOR: Record<string, string> = { open: 'orange.9', confirmed: 'red.9', dismissed: 'gray.9' };
const KIND_LABEL: Record<string, string> = { warning: 'Warning', suspension: 'Suspension', disciplinary_review: 'Disciplinary review' };
const OUTCOMES: In<'recordSanctionOutcome'>['outcome'][] = ['no_action', 'retraining', 'final_warning', 'access_revoked', 'dismissal_referred'];

export default function ViolationsPage() {
  return (
    <Guard anyOf={['read:Violation', 'read:Sanction']} what="violations and sanctions">
      <Suspense>
        <Violations />
      </Suspense>
    </Guard>
  );
}

function Violations() {
  const { can } = useSession();
  const params = useSearchParams();
  return (
    <Stack>
      <PageHeader
        title="Violations and sanctions"
        description="Every Forbidden attempt waits here for security: confirm it as the person's violation (a strike) or dismiss it as an agent steered by injected content. Strikes lead to a warning, then a suspension, then a disciplinary review."
      />
      <Tabs defaultValue={can('read:Violation') ? 'triage' : 'sanctions'} keepMounted={false}>
        <Tabs.List>
          {can('read:Violation') && <Tabs.Tab value="triage">Triage queue</Tabs.Tab>}
          {can('read:Sanction') && <Tabs.Tab value="sanctions">Strikes and suspensions</Tabs.Tab>}
        </Tabs.List>
        <Tabs.Panel value="triage" pt="md">
          <Triage initial={params.get('violation')} />
        </Tabs.Panel>
        <Tabs.Panel value="sanctions" pt="md">
          <Sanctions />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function Triage({ initial }: { initial: string | null }) {
  const name = useMemberNames();
  const [filter, setFilter] = useState<ViolationFilter>(initial ? 'all' : 'open');
  const [selected, setSelected] = useState<string | null>(initial);
  const list = useLoad(() => ok(api.GET('/v1/violations', { params: { query: { limit: 100, ...(filter === 'all' ? {} : { state: filter }) } } })), [filter]);
  return (
    <Stack>
      <SegmentedControl
        aria-label="Show violations"
        w="fit-content"
        value={filter}
        onChange={(v) => setFilter(v as ViolationFilter)}
        data={[
          { value: 'open', label: 'To triage' },
          { value: 'confirmed', label: 'Confirmed' },
          { value: 'dismissed', label: 'Dismissed' },
          { value: 'all', label: 'All' },
        ]}
      />
      <Grid>
        <Grid.Col span={{ base: 12, md: 5 }}>
          <Loaded load={list} what="violations">
            {(page) =>
              page.items.length === 0 ? (
                <Text c="dark.6">Nothing to triage.</Text>
              ) : (
                <Stack gap="xs" data-testid="violation-list">
                  {page.items.map((v) => (
                    <UnstyledButton key={v.id} onClick={() => setSelected(v.id)} aria-pressed={selected === v.id} data-testid="violation-item">
                      <Card withBorder padding="sm" bg={selected === v.id ? 'var(--mantine-color-indigo-0)' : undefined}>
                        <Group justify="space-between" wrap="nowrap">
                          <Text fw={600}>
                            {v.actionType} · {v.tool}
                          </Text>
                          <Group gap={4} wrap="nowrap" style={{ flexShrink: 0 }}>
                            {v.tainted && <Badge color="grape.9">tainted</Badge>}
                            <Badge color={V_COLOR[v.state]}>{v.state}</Badge>
                          </Group>
                        </Group>
                        <Text size="sm" c="dark.6">
                          {name(v.userId)} · {fmtDate(v.createdAt)}
                        </Text>
                      </Card>
                    </UnstyledButton>
                  ))}
                </Stack>
              )
            }
          </Loaded>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 7 }}>
          {selected ? <ViolationDetail key={selected} id={selected} onDecided={list.reload} /> : <Text c="dark.6">Select an attempt to see its evidence.</Text>}
        </Grid.Col>
      </Grid>
    </Stack>
  );
}

function ViolationDetail({ id, onDecided }: { id: string; onDecided(): void }) {
  const { can } = useSession();
  const name = useMemberNames();
  const violation = useLoad(() => ok(api.GET('/v1/violations/{id}', { params: { path: { id } } })), [id]);
  const evidence = useLoad(() => ok(api.GET('/v1/violations/{id}/evidence', { params: { path: { id } } })), [id]);
  const [note, setNote] = useState('');
  const action = useAction();

  async function decide(kind: 'confirm' | 'dismiss') {
    const body = { note: note.trim() };
    const res = await action.run(() =>
      kind === 'confirm' ? ok(api.POST('/v1/violations/{id}/confirm', { params: { path: { id } }, body })) : ok(api.POST('/v1/violations/{id}/dismiss', { params: { path: { id } }, body })),
    );
    if (res) {
      violation.setData(res);
      evidence.reload();
      setNote('');
      onDecided();
    }
  }

  return (
    <Loaded load={violation} what="this violation">
      {(v) => (
        <Card withBorder data-testid="violation-detail">
          <Stack>
            <Group justify="space-between">
              <Title order={2} size="h3">
                {v.connector} · {v.tool}
              </Title>
              <Badge size="lg" color={V_COLOR[v.state]} data-testid="violation-state">
                {v.state}
              </Badge>
            </Group>
            <Table variant="vertical" layout="fixed">
              <Table.Tbody>
                <Table.Tr>
                  <Table.Th w={170}>Who</Table.Th>
                  <Table.Td>{name(v.userId)}</Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Action type</Table.Th>
                  <Table.Td>{v.actionType}</Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Why Forbidden</Table.Th>
                  <Table.Td>
                    {v.reason} {v.ruleIds.length > 0 && <Code>{v.ruleIds.join(', ')}</Code>}
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Arguments digest</Table.Th>
                  <Table.Td>
                    <Code>{v.argsDigest.slice(0, 16)}…</Code>
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Read untrusted content</Table.Th>
                  <Table.Td>{v.tainted ? 'Yes: the task had read content from outside (injection is plausible)' : 'No'}</Table.Td>
                </Table.Tr>
                {v.labels.length > 0 && (
                  <Table.Tr>
                    <Table.Th>Data labels</Table.Th>
                    <Table.Td>{v.labels.join(', ')}</Table.Td>
                  </Table.Tr>
                )}
                <Table.Tr>
                  <Table.Th>When</Table.Th>
                  <Table.Td>{fmtDate(v.createdAt)}</Table.Td>
                </Table.Tr>
                {v.decidedAt && (
                  <Table.Tr>
                    <Table.Th>Decided</Table.Th>
                    <Table.Td>
                      {fmtDate(v.decidedAt)} by {name(v.decidedBy)}: {v.note}
                      {v.sanction && v.sanction !== 'none' && ` → ${KIND_LABEL[v.sanction]} (${v.strikes} strike${v.strikes === 1 ? '' : 's'} this year)`}
                    </Table.Td>
                  </Table.Tr>
                )}
              </Table.Tbody>
            </Table>
            <Loaded load={evidence} what="the evidence">
              {(e) => (
                <Stack gap="xs" data-testid="violation-evidence">
                  <Text size="sm">
                    Prior confirmed strikes: <strong>{e.priorStrikes}</strong>
                    {v.automatic && ' · counted automatically (the org chose automatic strikes)'}
                  </Text>
                  {e.task ? (
                    <>
                      <Text size="sm">
                        Task{' '}
                        <Anchor component={Link} href={`/tasks/${e.task.id}`}>
                          {e.task.id.slice(0, 8)}
                        </Anchor>{' '}
                        ({e.task.state}
                        {e.task.workflow ? `, workflow ${e.task.workflow}` : ''}, started {fmtDate(e.task.createdAt)}) — its steps before the attempt:
                      </Text>
                      {e.task.priorActions.length === 0 ? (
                        <Text size="sm" c="dark.6">
                          None: the attempt was the task's first action.
                        </Text>
                      ) : (
                        <Table>
                          <Table.Thead>
                            <Table.Tr>
                              <Table.Th>Step</Table.Th>
                              <Table.Th>Tool</Table.Th>
                              <Table.Th>Level</Table.Th>
                              <Table.Th>State</Table.Th>
                              <Table.Th>Untrusted</Table.Th>
                            </Table.Tr>
                          </Table.Thead>
                          <Table.Tbody>
                            {e.task.priorActions.map((a, i) => (
                              <Table.Tr key={i}>
                                <Table.Td>{a.step ?? '—'}</Table.Td>
                                <Table.Td>
                                  {a.connector} · {a.tool} ({a.actionType})
                                </Table.Td>
                                <Table.Td>{a.level}</Table.Td>
                                <Table.Td>{a.state}</Table.Td>
                                <Table.Td>{a.tainted ? 'yes' : 'no'}</Table.Td>
                              </Table.Tr>
                            ))}
                          </Table.Tbody>
                        </Table>
                      )}
                    </>
                  ) : (
                    <Text size="sm" c="dark.6">
                      Not from an agent task of Steward's worker (an MCP client through the gateway).
                    </Text>
                  )}
                </Stack>
              )}
            </Loaded>
            {v.state === 'open' && can('triage:Violation') && (
              <Stack gap="xs">
                <Textarea label="Finding (required, recorded with the decision)" value={note} onChange={(e) => setNote(e.currentTarget.value)} maxLength={1000} autosize minRows={2} />
                <Group>
                  <Button color="red.9" disabled={!note.trim()} loading={action.busy} onClick={() => decide('confirm')}>
                    Confirm: the person meant it
                  </Button>
                  <Button variant="outline" color="gray.9" disabled={!note.trim()} loading={action.busy} onClick={() => decide('dismiss')}>
                    Dismiss: the agent was steered
                  </Button>
                </Group>
              </Stack>
            )}
            <ActionError error={action.error} />
          </Stack>
        </Card>
      )}
    </Loaded>
  );
}

function Sanctions() {
  const { can } = useSession();
  const name = useMemberNames();
  const [state, setState] = useState<'open' | 'all'>('open');
  const [acting, setActing] = useState<{ s: Sanction; kind: 'lift' | 'outcome' } | null>(null);
  const list = useLoad(() => ok(api.GET('/v1/sanctions', { params: { query: { limit: 100, ...(state === 'open' ? { state: 'open' as const } : {}) } } })), [state]);
  const resolve = can('resolve:Sanction');
  return (
    <Stack>
      <SegmentedControl aria-label="Show sanctions" w="fit-content" value={state} onChange={(v) => setState(v as typeof state)} data={[{ value: 'open', label: 'In force' }, { value: 'all', label: 'All' }]} />
      <Loaded load={list} what="sanctions">
        {(page) =>
          page.items.length === 0 ? (
            <Text c="dark.6">No sanction.</Text>
          ) : (
            <Table data-testid="sanction-list">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Person</Table.Th>
                  <Table.Th>Sanction</Table.Th>
                  <Table.Th>Strikes</Table.Th>
                  <Table.Th>State</Table.Th>
                  <Table.Th>Since</Table.Th>
                  <Table.Th>Decision</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {page.items.map((s) => (
                  <Table.Tr key={s.id}>
                    <Table.Td>{name(s.userId)}</Table.Td>
                    <Table.Td>
                      <Badge color={s.kind === 'warning' ? 'orange.9' : 'red.9'}>{KIND_LABEL[s.kind]}</Badge>{' '}
                      <Anchor component={Link} href={`/violations?violation=${s.violationId}`} size="sm">
                        violation
                      </Anchor>
                    </Table.Td>
                    <Table.Td>{s.strikes}</Table.Td>
                    <Table.Td>{s.state}</Table.Td>
                    <Table.Td>{fmtDate(s.createdAt)}</Table.Td>
                    <Table.Td>
                      {s.state === 'open' && resolve ? (
                        <Group gap="xs">
                          {s.kind !== 'warning' && (
                            <Button size="xs" color="green.9" variant="outline" onClick={() => setActing({ s, kind: 'lift' })}>
                              Lift…
                            </Button>
                          )}
                          {s.kind !== 'suspension' && (
                            <Button size="xs" variant="default" onClick={() => setActing({ s, kind: 'outcome' })}>
                              Record outcome…
                            </Button>
                          )}
                        </Group>
                      ) : s.decidedAt ? (
                        `${s.outcome ? s.outcome.replace(/_/g, ' ') : s.state} · ${name(s.decidedBy)} · ${s.note ?? ''}`
                      ) : (
                        <Text size="sm" c="dark.6">
                          {s.state === 'open' ? 'an owner decides' : '—'}
                        </Text>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )
        }
      </Loaded>
      <SanctionDecision
        acting={acting}
        onClose={() => setActing(null)}
        onDone={() => {
          setActing(null);
          list.reload();
        }}
      />
    </Stack>
  );
}

function SanctionDecision({ acting, onClose, onDone }: { acting: { s: Sanction; kind: 'lift' | 'outcome' } | null; onClose(): void; onDone(): void }) {
  const [note, setNote] = useState('');
  const [outcome, setOutcome] = useState<(typeof OUTCOMES)[number]>('retraining');
  const action = useAction();
  if (!acting) return null;
  const { s, kind } = acting;
  const allowed = s.kind === 'warning' ? OUTCOMES.slice(0, 2) : OUTCOMES;
  async function submit() {
    const path = { params: { path: { id: s.id } } };
    const res = await action.run(() =>
      kind === 'lift'
        ? ok(api.POST('/v1/sanctions/{id}/lift', { ...path, body: { note: note.trim() } }))
        : ok(api.POST('/v1/sanctions/{id}/outcome', { ...path, body: { outcome, note: note.trim() } })),
    );
    if (res) {
      setNote('');
      onDone();
    }
  }
  return (
    <Modal opened onClose={onClose} title={kind === 'lift' ? `Lift this ${KIND_LABEL[s.kind].toLowerCase()}?` : `Outcome of the ${KIND_LABEL[s.kind].toLowerCase()}`}>
      <Stack>
        {kind === 'lift' && (
          <Alert color="orange" variant="light">
            The person's agents may act again from their next action on. The decision is audited.
          </Alert>
        )}
        {kind === 'outcome' && (
          <NativeSelect label="Outcome" value={outcome} onChange={(e) => setOutcome(e.currentTarget.value as typeof outcome)} data={allowed.map((o) => ({ value: o, label: o.replace(/_/g, ' ') }))} />
        )}
        <Textarea label="Note (required)" value={note} onChange={(e) => setNote(e.currentTarget.value)} maxLength={2000} autosize minRows={2} />
        <ActionError error={action.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button color={kind === 'lift' ? 'green.9' : undefined} disabled={!note.trim()} loading={action.busy} onClick={submit}>
            {kind === 'lift' ? 'Yes, lift it' : 'Record outcome'}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
