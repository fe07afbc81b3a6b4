'use client';

import { Alert, Anchor, Badge, Button, Card, Checkbox, Code, Grid, Group, Modal, MultiSelect, NativeSelect, NumberInput, PasswordInput, SegmentedControl, Stack, Switch, Table, Tabs, Text, Textarea, TextInput, Timeline, Title, UnstyledButton } from '@mantine/core';
import Link from 'next/link';
import { useState } from 'react';
import { useMemberNames } from '@/components/people';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, SEVERITY_COLOR, useAction, useLoad } from '@/components/ui';
import { api, ok, type In, type Out } from '@/lib/client';

type Incident = Out<'getIncident'>;
type StateFilter = 'open' | 'acknowledged' | 'resolved' | 'closed' | 'all';
const STATE_COLOR: Record<string, string> = { open: 'red.9', acknowledged: 'orange.9', resolved: 'green.9', closed: 'gray.9' };

export default function IncidentsPage() {
  return (
    <Guard anyOf={['read:Incident']} what="the incidents">
      <Incidents />
    </Guard>
  );
}

function Incidents() {
  const { can } = useSession();
  const name = useMemberNames();
  const [filter, setFilter] = useState<StateFilter>('open');
  const [selected, setSelected] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const list = useLoad(() => ok(api.GET('/v1/incidents', { params: { query: { limit: 100, ...(filter === 'all' ? {} : { state: filter }) } } })), [filter]);

  return (
    <Stack>
      <PageHeader
        title="Incidents"
        description="Opened by high-severity findings, by attempts in the forbidden areas, or by hand. Each must be acknowledged in time, or it escalates to the next contact and then to the executive."
        actions={
          can('create:Incident') && (
            <Button onClick={() => setCreating(true)} variant="light">
              Open an incident
            </Button>
          )
        }
      />
      <Tabs defaultValue="incidents" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="incidents">Incidents</Tabs.Tab>
          <Tabs.Tab value="escalation">Escalation settings</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="escalation" pt="md">
          <EscalationSettings />
        </Tabs.Panel>
        <Tabs.Panel value="incidents" pt="md">
          <Stack>
            <SegmentedControl
              aria-label="Show incidents"
              w="fit-content"
              value={filter}
              onChange={(v) => setFilter(v as StateFilter)}
              data={[
                { value: 'open', label: 'Open' },
                { value: 'acknowledged', label: 'Acknowledged' },
                { value: 'resolved', label: 'Resolved' },
                { value: 'closed', label: 'Closed' },
                { value: 'all', label: 'All' },
              ]}
            />
            <Grid>
              <Grid.Col span={{ base: 12, md: 5 }}>
                <Loaded load={list} what="incidents">
                  {(page) =>
                    page.items.length === 0 ? (
                      <Text c="dark.6">No incident here.</Text>
                    ) : (
                      <Stack gap="xs" data-testid="incident-list">
                        {page.items.map((i) => {
                          const late = i.state === 'open' && new Date(i.ackDueAt).getTime() < Date.now();
                          return (
                            <UnstyledButton key={i.id} onClick={() => setSelected(i.id)} aria-pressed={selected === i.id} data-testid="incident-item">
                              <Card withBorder padding="sm" bg={selected === i.id ? 'var(--mantine-color-indigo-0)' : undefined}>
                                <Group justify="space-between" wrap="nowrap">
                                  <Text fw={600}>{i.title}</Text>
                                  <Group gap={4} wrap="nowrap" style={{ flexShrink: 0 }}>
                                    <Badge color={SEVERITY_COLOR[i.severity]}>{i.severity}</Badge>
                                    <Badge variant="outline" color={STATE_COLOR[i.state]}>
                                      {i.state}
                                    </Badge>
                                  </Group>
                                </Group>
                                <Text size="sm" c="dark.6">
                                  {i.source === 'manual' ? 'opened by hand' : `from a ${i.source}`} · owner {name(i.ownerId)} · {fmtDate(i.createdAt)}
                                </Text>
                                {i.state === 'open' && (
                                  <Text size="xs" c={late ? 'red.9' : 'dark.6'} fw={late ? 700 : 400}>
                                    {late ? `Acknowledgement overdue since ${fmtDate(i.ackDueAt)} (escalation level ${i.escalationLevel})` : `Acknowledge by ${fmtDate(i.ackDueAt)}`}
                                  </Text>
                                )}
                              </Card>
                            </UnstyledButton>
                          );
                        })}
                      </Stack>
                    )
                  }
                </Loaded>
              </Grid.Col>
              <Grid.Col span={{ base: 12, md: 7 }}>
                {selected ? <Detail key={selected} id={selected} onChanged={list.reload} /> : <Text c="dark.6">Select an incident to see its evidence, comments and escalation.</Text>}
              </Grid.Col>
            </Grid>
          </Stack>
        </Tabs.Panel>
      </Tabs>
      <CreateIncident
        opened={creating}
        onClose={() => setCreating(false)}
        onCreated={(i) => {
          setCreating(false);
          setFilter('open');
          list.reload();
          setSelected(i.id);
        }}
      />
    </Stack>
  );
}

function CreateIncident({ opened, onClose, onCreated }: { opened: boolean; onClose(): void; onCreated(i: Incident): void }) {
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [severity, setSeverity] = useState<In<'createIncident'>['severity']>('medium');
  const action = useAction();
  async function create() {
    const res = await action.run(() => ok(api.POST('/v1/incidents', { body: { title: title.trim(), severity, ...(description.trim() ? { description: description.trim() } : {}) } })));
    if (res) {
      setTitle('');
      setDescription('');
      onCreated(res);
    }
  }
  return (
    <Modal opened={opened} onClose={onClose} title="Open an incident">
      <Stack>
        <TextInput label="Title" value={title} onChange={(e) => setTitle(e.currentTarget.value)} maxLength={200} required />
        <Textarea label="What happened" value={description} onChange={(e) => setDescription(e.currentTarget.value)} maxLength={4000} autosize minRows={3} />
        <NativeSelect label="Severity" value={severity} onChange={(e) => setSeverity(e.currentTarget.value as typeof severity)} data={['low', 'medium', 'high', 'critical']} />
        <Text size="sm" c="dark.6">
          It goes to the org's incident owner, who must acknowledge it in time or it escalates.
        </Text>
        <ActionError error={action.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button onClick={create} loading={action.busy} disabled={!title.trim()}>
            Open incident
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

function Detail({ id, onChanged }: { id: string; onChanged(): void }) {
  const { can } = useSession();
  const name = useMemberNames();
  const detail = useLoad(() => ok(api.GET('/v1/incidents/{id}', { params: { path: { id } } })), [id]);
  const members = useLoad(async () => (can('read:Member') ? ok(api.GET('/v1/members', { params: { query: { limit: 200 } } })) : null), []);
  const [note, setNote] = useState('');
  const [comment, setComment] = useState('');
  const [owner, setOwner] = useState('');
  const [confirm, setConfirm] = useState<'resolve' | 'close' | null>(null);
  const action = useAction();
  const respond = can('respond:Incident');

  async function act(fn: () => Promise<Incident>) {
    const res = await action.run(fn);
    if (res) {
      detail.setData(res);
      setNote('');
      setConfirm(null);
      onChanged();
    }
  }
  const path = { params: { path: { id } } };
  const withNote = () => (note.trim() ? { note: note.trim() } : {});

  async function addComment() {
    const res = await action.run(() => ok(api.POST('/v1/incidents/{id}/comments', { ...path, body: { body: comment.trim() } })));
    if (res) {
      setComment('');
      detail.reload();
    }
  }

  return (
    <Loaded load={detail} what="this incident">
      {(i) => (
        <Card withBorder data-testid="incident-detail">
          <Stack>
            <Group justify="space-between">
              <Title order={2} size="h3">
                {i.title}
              </Title>
              <Badge size="lg" color={STATE_COLOR[i.state]} data-testid="incident-state">
                {i.state}
              </Badge>
            </Group>
            {i.description && <Text>{i.description}</Text>}
            <Table variant="vertical" layout="fixed">
              <Table.Tbody>
                <Table.Tr>
                  <Table.Th w={170}>Severity</Table.Th>
                  <Table.Td>
                    <Badge color={SEVERITY_COLOR[i.severity]}>{i.severity}</Badge>
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Source</Table.Th>
                  <Table.Td>
                    {i.source}
                    {i.violationId && (
                      <>
                        {' · '}
                        <Anchor component={Link} href={`/violations?violation=${i.violationId}`}>
                          the violation
                        </Anchor>
                      </>
                    )}
                    {i.taskId && (
                      <>
                        {' · '}
                        <Anchor component={Link} href={`/tasks/${i.taskId}`}>
                          the task
                        </Anchor>
                      </>
                    )}
                  </Table.Td>
                </Table.Tr>
                {i.subjectUserId && (
                  <Table.Tr>
                    <Table.Th>About</Table.Th>
                    <Table.Td>
                      {name(i.subjectUserId)}
                      {i.actionType ? ` · ${i.actionType}` : ''}
                    </Table.Td>
                  </Table.Tr>
                )}
                <Table.Tr>
                  <Table.Th>Owner</Table.Th>
                  <Table.Td>{name(i.ownerId)}</Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Acknowledge by</Table.Th>
                  <Table.Td>
                    {fmtDate(i.ackDueAt)}
                    {i.acknowledgedAt && ` · acknowledged ${fmtDate(i.acknowledgedAt)} by ${name(i.acknowledgedBy)}`}
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Escalation</Table.Th>
                  <Table.Td>
                    level {i.escalationLevel}
                    {i.nextEscalationAt && ` · next step ${fmtDate(i.nextEscalationAt)}`}
                  </Table.Td>
                </Table.Tr>
                {i.resolution && (
                  <Table.Tr>
                    <Table.Th>Resolution</Table.Th>
                    <Table.Td>
                      {i.resolution} ({fmtDate(i.resolvedAt)})
                    </Table.Td>
                  </Table.Tr>
                )}
              </Table.Tbody>
            </Table>
            {Object.keys(i.evidence).length > 0 && (
              <div>
                <Text fw={600} size="sm">
                  Evidence
                </Text>
                <Code block>{JSON.stringify(i.evidence, null, 2)}</Code>
              </div>
            )}
            {respond && i.state !== 'closed' && (
              <Stack gap="xs">
                <Textarea label="Note (recorded with the change)" value={note} onChange={(e) => setNote(e.currentTarget.value)} maxLength={2000} autosize minRows={2} />
                <Group>
                  {i.state === 'open' && (
                    <Button color="orange.9" loading={action.busy} onClick={() => act(() => ok(api.POST('/v1/incidents/{id}/acknowledge', { ...path, body: withNote() })))}>
                      Acknowledge
                    </Button>
                  )}
                  {(i.state === 'open' || i.state === 'acknowledged') && (
                    <Button color="green.9" variant="outline" onClick={() => setConfirm('resolve')}>
                      Resolve…
                    </Button>
                  )}
                  <Button color="gray.9" variant="outline" onClick={() => setConfirm('close')}>
                    Close…
                  </Button>
                </Group>
                {members.data && (
                  <Group align="flex-end">
                    <NativeSelect
                      label="Give to another owner"
                      value={owner}
                      onChange={(e) => setOwner(e.currentTarget.value)}
                      data={[{ value: '', label: 'Choose a member' }, ...members.data.items.map((m) => ({ value: m.userId, label: m.email }))]}
                    />
                    <Button variant="default" disabled={!owner} loading={action.busy} onClick={() => act(() => ok(api.POST('/v1/incidents/{id}/assign', { ...path, body: { ownerId: owner } })))}>
                      Assign
                    </Button>
                  </Group>
                )}
              </Stack>
            )}
            <ActionError error={action.error} />
            <Title order={3} size="h4">
              Comments
            </Title>
            {i.comments.length === 0 ? (
              <Text c="dark.6">No comment yet.</Text>
            ) : (
              <Timeline bulletSize={12} data-testid="incident-comments">
                {i.comments.map((c) => (
                  <Timeline.Item key={c.id} title={`${name(c.authorId)} · ${fmtDate(c.createdAt)}`}>
                    <Text size="sm" style={{ whiteSpace: 'pre-wrap' }}>
                      {c.body}
                    </Text>
                  </Timeline.Item>
                ))}
              </Timeline>
            )}
            {respond && i.state !== 'closed' && (
              <Group align="flex-end">
                <Textarea label="Add a comment" value={comment} onChange={(e) => setComment(e.currentTarget.value)} maxLength={4000} autosize minRows={2} style={{ flex: 1 }} />
                <Button onClick={addComment} disabled={!comment.trim()} loading={action.busy}>
                  Comment
                </Button>
              </Group>
            )}
            <Title order={3} size="h4">
              Escalation notices
            </Title>
            {i.notifications.length === 0 ? (
              <Text c="dark.6">None sent.</Text>
            ) : (
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Level</Table.Th>
                    <Table.Th>Channel</Table.Th>
                    <Table.Th>To</Table.Th>
                    <Table.Th>State</Table.Th>
                    <Table.Th>Sent</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {i.notifications.map((n) => (
                    <Table.Tr key={n.id}>
                      <Table.Td>{n.level}</Table.Td>
                      <Table.Td>{n.channel}</Table.Td>
                      <Table.Td>{name(n.recipientUserId)}</Table.Td>
                      <Table.Td>
                        {n.state}
                        {n.lastError ? ` (${n.lastError})` : ''}
                      </Table.Td>
                      <Table.Td>{fmtDate(n.sentAt)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
          </Stack>
          <StateChange
            kind={confirm}
            busy={action.busy}
            error={action.error}
            onCancel={() => setConfirm(null)}
            onConfirm={(text) =>
              act(() =>
                confirm === 'resolve'
                  ? ok(api.POST('/v1/incidents/{id}/resolve', { ...path, body: { resolution: text } }))
                  : ok(api.POST('/v1/incidents/{id}/close', { ...path, body: text ? { note: text } : {} })),
              )
            }
          />
        </Card>
      )}
    </Loaded>
  );
}

function StateChange({ kind, busy, error, onCancel, onConfirm }: { kind: 'resolve' | 'close' | null; busy: boolean; error: unknown; onCancel(): void; onConfirm(text: string): void }) {
  const [text, setText] = useState('');
  return (
    <Modal opened={kind !== null} onClose={onCancel} title={kind === 'resolve' ? 'Resolve this incident?' : 'Close this incident?'}>
      <Stack>
        {kind === 'close' && (
          <Alert color="orange" variant="light">
            A closed incident takes no more changes or comments.
          </Alert>
        )}
        <Textarea
          label={kind === 'resolve' ? 'What was done (required)' : 'Note'}
          value={text}
          onChange={(e) => setText(e.currentTarget.value)}
          maxLength={2000}
          autosize
          minRows={3}
        />
        <ActionError error={error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onCancel}>
            Cancel
          </Button>
          <Button color={kind === 'resolve' ? 'green.9' : 'gray.9'} loading={busy} disabled={kind === 'resolve' && !text.trim()} onClick={() => onConfirm(text.trim())}>
            {kind === 'resolve' ? 'Yes, resolve' : 'Yes, close'}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

type Settings = Out<'getIncidentSettings'>;
type Put = In<'putIncidentSettings'>;
const CHANNELS = ['email', 'webhook', 'slack'] as const;

/** Who an unacknowledged incident escalates to, how fast, and through which channels (secrets write-only). */
function EscalationSettings() {
  const { can } = useSession();
  const editable = can('configure:Incident');
  const settings = useLoad(() => ok(api.GET('/v1/incident-settings')), []);
  const members = useLoad(async () => (can('read:Member') ? ok(api.GET('/v1/members', { params: { query: { limit: 200 } } })) : null), []);
  return (
    <Loaded load={settings} what="the escalation settings">
      {(s) => <SettingsForm s={s} editable={editable} members={members.data?.items ?? []} onSaved={settings.setData} />}
    </Loaded>
  );
}

function SettingsForm({ s, editable, members, onSaved }: { s: Settings; editable: boolean; members: { userId: string; email: string }[]; onSaved(s: Settings): void }) {
  const name = useMemberNames();
  const [f, setF] = useState({
    ownerUserId: s.ownerUserId ?? '',
    escalationChain: s.escalationChain,
    executiveUserId: s.executiveUserId ?? '',
    executiveTitle: s.executiveTitle,
    ackMinutes: s.ackMinutes as number | string,
    stepMinutes: s.stepMinutes as number | string,
    channels: s.channels as string[],
    webhookUrl: s.webhookUrl ?? '',
    smtpOn: s.smtp !== null,
    smtp: { host: s.smtp?.host ?? '', port: (s.smtp?.port ?? 587) as number | string, secure: s.smtp?.secure ?? false, user: s.smtp?.user ?? '', from: s.smtp?.from ?? '' },
    slackOn: s.slack !== null,
    slack: { channel: s.slack?.channel ?? '', postAs: s.slack?.postAs ?? '' },
  });
  const [secrets, setSecrets] = useState({ webhookSigningSecret: '', smtpPassword: '', slackWebhookUrl: '' });
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const people = [{ value: '', label: 'Nobody' }, ...members.map((m) => ({ value: m.userId, label: m.email }))];
  const set = <K extends keyof typeof f>(k: K, v: (typeof f)[K]) => {
    setSaved(false);
    setF({ ...f, [k]: v });
  };

  async function save() {
    const body: Put = {
      ownerUserId: f.ownerUserId || null,
      escalationChain: f.escalationChain,
      executiveUserId: f.executiveUserId || null,
      executiveTitle: f.executiveTitle.trim() || 'CTO',
      ackMinutes: Number(f.ackMinutes),
      stepMinutes: Number(f.stepMinutes),
      channels: f.channels as Put['channels'],
      webhookUrl: f.webhookUrl.trim() || null,
      smtp: f.smtpOn ? { host: f.smtp.host.trim(), port: Number(f.smtp.port), secure: f.smtp.secure, from: f.smtp.from.trim(), ...(f.smtp.user.trim() ? { user: f.smtp.user.trim() } : {}) } : null,
    };
    // Slack through the connector: sent only when changed (the API checks again that the member can post).
    const slack = f.slackOn ? { channel: f.slack.channel.trim(), postAs: f.slack.postAs } : null;
    if (JSON.stringify(slack) !== JSON.stringify(s.slack)) body.slack = slack;
    const written = Object.fromEntries(Object.entries(secrets).filter(([, v]) => v.trim()).map(([k, v]) => [k, v.trim()]));
    if (Object.keys(written).length) body.secrets = written;
    const res = await action.run(() => ok(api.PUT('/v1/incident-settings', { body })));
    if (res) {
      setSecrets({ webhookSigningSecret: '', smtpPassword: '', slackWebhookUrl: '' });
      onSaved(res);
      setSaved(true);
    }
  }

  const secretLabel = (label: string, isSet: boolean) => `${label} (${isSet ? 'set; type to replace' : 'not set'})`;
  return (
    <Card withBorder data-testid="escalation-settings">
      <Stack>
        <Text size="sm" c="dark.6">
          A new incident goes to its owner, who must acknowledge it within the window; unacknowledged, it escalates to each contact of the chain in turn, one step at a time, then to the
          executive.
        </Text>
        {!editable && (
          <Text size="sm" c="dark.6">
            Read only: only an owner changes the escalation. Chain now: {s.escalationChain.map((id) => name(id)).join(' → ') || 'none'}, then {s.executiveTitle} {name(s.executiveUserId)}.
          </Text>
        )}
        <Group align="flex-end">
          <NativeSelect label="Incident owner" value={f.ownerUserId} onChange={(e) => set('ownerUserId', e.currentTarget.value)} data={people} disabled={!editable} />
          <NumberInput label="Acknowledge within (minutes)" min={5} max={10080} value={f.ackMinutes} onChange={(v) => set('ackMinutes', v)} disabled={!editable} w={220} />
          <NumberInput label="Each escalation step (minutes)" min={5} max={10080} value={f.stepMinutes} onChange={(v) => set('stepMinutes', v)} disabled={!editable} w={220} />
        </Group>
        <MultiSelect
          label="Escalation chain, in order"
          data={members.map((m) => ({ value: m.userId, label: m.email }))}
          value={f.escalationChain}
          onChange={(v) => set('escalationChain', v)}
          maxValues={10}
          disabled={!editable}
          searchable
        />
        <Group align="flex-end">
          <NativeSelect label="Executive (last step)" value={f.executiveUserId} onChange={(e) => set('executiveUserId', e.currentTarget.value)} data={people} disabled={!editable} />
          <TextInput label="Executive's title" value={f.executiveTitle} onChange={(e) => set('executiveTitle', e.currentTarget.value)} maxLength={100} disabled={!editable} />
        </Group>
        <Checkbox.Group label="Channels" value={f.channels} onChange={(v) => set('channels', v)}>
          <Group mt={4}>
            {CHANNELS.map((c) => (
              <Checkbox key={c} value={c} label={c === 'email' ? 'E-mail' : c === 'webhook' ? 'Webhook (signed)' : 'Slack'} disabled={!editable} />
            ))}
          </Group>
        </Checkbox.Group>
        <TextInput label="Webhook URL" value={f.webhookUrl} onChange={(e) => set('webhookUrl', e.currentTarget.value)} maxLength={2000} disabled={!editable} />
        {editable && (
          <Group align="flex-end">
            <PasswordInput label={secretLabel('Webhook signing secret', s.secrets.webhookSigningSecret)} value={secrets.webhookSigningSecret} onChange={(e) => setSecrets({ ...secrets, webhookSigningSecret: e.currentTarget.value })} w={320} />
            <PasswordInput label={secretLabel('Slack incoming webhook URL', s.secrets.slackWebhookUrl)} value={secrets.slackWebhookUrl} onChange={(e) => setSecrets({ ...secrets, slackWebhookUrl: e.currentTarget.value })} w={320} />
          </Group>
        )}
        <Switch label="Slack through the org's Slack connector" checked={f.slackOn} onChange={(e) => set('slackOn', e.currentTarget.checked)} disabled={!editable} />
        {f.slackOn && (
          <Group align="flex-end">
            <TextInput label="Slack channel (id or #name)" value={f.slack.channel} onChange={(e) => set('slack', { ...f.slack, channel: e.currentTarget.value })} maxLength={80} disabled={!editable} />
            <NativeSelect
              label="Posts as (a member who connected Slack)"
              value={f.slack.postAs}
              onChange={(e) => set('slack', { ...f.slack, postAs: e.currentTarget.value })}
              data={[{ value: '', label: 'Choose a member' }, ...members.map((m) => ({ value: m.userId, label: m.email }))]}
              disabled={!editable}
            />
          </Group>
        )}
        <Switch label="E-mail through an SMTP server" checked={f.smtpOn} onChange={(e) => set('smtpOn', e.currentTarget.checked)} disabled={!editable} />
        {f.smtpOn && (
          <Group align="flex-end">
            <TextInput label="SMTP host" value={f.smtp.host} onChange={(e) => set('smtp', { ...f.smtp, host: e.currentTarget.value })} disabled={!editable} />
            <NumberInput label="Port" min={1} max={65535} value={f.smtp.port} onChange={(v) => set('smtp', { ...f.smtp, port: v })} disabled={!editable} w={110} />
            <Switch label="Implicit TLS" checked={f.smtp.secure} onChange={(e) => set('smtp', { ...f.smtp, secure: e.currentTarget.checked })} disabled={!editable} />
            <TextInput label="User" value={f.smtp.user} onChange={(e) => set('smtp', { ...f.smtp, user: e.currentTarget.value })} disabled={!editable} />
            <TextInput label="From address" value={f.smtp.from} onChange={(e) => set('smtp', { ...f.smtp, from: e.currentTarget.value })} disabled={!editable} />
            {editable && (
              <PasswordInput label={secretLabel('SMTP password', s.secrets.smtpPassword)} value={secrets.smtpPassword} onChange={(e) => setSecrets({ ...secrets, smtpPassword: e.currentTarget.value })} w={260} />
            )}
          </Group>
        )}
        <ActionError error={action.error} />
        {editable && (
          <Group>
            <Button onClick={save} loading={action.busy} disabled={f.channels.length === 0}>
              Save escalation settings
            </Button>
            {saved && (
              <Text size="sm" c="green.9" data-testid="escalation-saved">
                Saved.
              </Text>
            )}
          </Group>
        )}
      </Stack>
    </Card>
  );
}
