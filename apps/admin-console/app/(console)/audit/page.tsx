'use client';

import { Alert, Anchor, Badge, Button, Card, Code, Drawer, Group, NativeSelect, Pagination, Stack, Switch, Table, Tabs, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useSearchParams } from 'next/navigation';
import { Suspense, useState } from 'react';
import { useMemberNames } from '@/components/people';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, short, useAction, useLoad, uuidTime } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

const PAGE = 100;
type Filters = { action: string; actorType: string; outcome: string; level: string; taskId: string; since: string; until: string };
const EMPTY: Filters = { action: '', actorType: '', outcome: '', level: '', taskId: '', since: '', until: '' };
type AuditEvent = Out<'listAuditEvents'>['items'][number];

export default function AuditPage() {
  return (
    <Guard anyOf={['read:AuditEvent']} what="the audit trail">
      <Suspense>
        <Audit />
      </Suspense>
    </Guard>
  );
}

function Audit() {
  const { can } = useSession();
  return (
    <Stack>
      <PageHeader title="Audit trail" description="Every decision and every admin change, hash-chained and signed. Search, export and verify it." />
      <Tabs defaultValue="events" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="events">Events</Tabs.Tab>
          {(can('export:AuditEvent') || can('verify:AuditEvent')) && <Tabs.Tab value="integrity">Export and verify</Tabs.Tab>}
          {can('read:LegalHold') && <Tabs.Tab value="holds">Legal holds</Tabs.Tab>}
        </Tabs.List>
        <Tabs.Panel value="events" pt="md">
          <Events />
        </Tabs.Panel>
        <Tabs.Panel value="integrity" pt="md">
          <Integrity />
        </Tabs.Panel>
        <Tabs.Panel value="holds" pt="md">
          <Holds />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function query(f: Filters, cursor: string | undefined) {
  const q: Record<string, string | number> = { limit: PAGE };
  for (const [k, v] of Object.entries(f)) if (v.trim()) q[k] = k === 'since' || k === 'until' ? new Date(v).toISOString() : v.trim();
  if (cursor) q.cursor = cursor;
  return q;
}

function Events() {
  const params = useSearchParams();
  const name = useMemberNames();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  // Cursors of the pages seen so far: page n starts after cursors[n-1].
  const [cursors, setCursors] = useState<string[]>([]);
  const [pageNo, setPageNo] = useState(1);
  const [open, setOpen] = useState<string | null>(params.get('event'));
  const list = useLoad(() => ok(api.GET('/v1/audit-events', { params: { query: query(filters, cursors[pageNo - 2]) as never } })), [filters, pageNo]);
  const next = list.data?.nextCursor ?? null;

  function search() {
    setCursors([]);
    setPageNo(1);
    setFilters(draft);
  }
  function goTo(n: number) {
    if (n === pageNo + 1 && next) setCursors((c) => [...c.slice(0, pageNo - 1), next]);
    setPageNo(n);
  }
  const set = (k: keyof Filters) => (e: { currentTarget: { value: string } }) => setDraft({ ...draft, [k]: e.currentTarget.value });
  const selected = list.data?.items.find((e) => e.id === open);

  return (
    <Stack>
      <Card withBorder>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            search();
          }}
        >
          <Group align="flex-end">
            <TextInput label="Action" placeholder="policy.activate" value={draft.action} onChange={set('action')} />
            <NativeSelect label="Actor" value={draft.actorType} onChange={set('actorType')} data={['', 'user', 'api_key', 'agent_task', 'system', 'scim_token']} />
            <NativeSelect label="Outcome" value={draft.outcome} onChange={set('outcome')} data={['', 'success', 'failure', 'denied']} />
            <NativeSelect label="Trust level" value={draft.level} onChange={set('level')} data={['', 'autonomous', 'batched', 'watched', 'forbidden']} />
            <TextInput label="Task id" value={draft.taskId} onChange={set('taskId')} />
            <TextInput label="From" type="datetime-local" value={draft.since} onChange={set('since')} />
            <TextInput label="Until" type="datetime-local" value={draft.until} onChange={set('until')} />
            <Button type="submit">Search</Button>
          </Group>
        </form>
      </Card>
      <Loaded load={list} what="audit events">
        {(page) => (
          <Stack>
            <Table striped highlightOnHover data-testid="audit-table">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>When</Table.Th>
                  <Table.Th>Action</Table.Th>
                  <Table.Th>Outcome</Table.Th>
                  <Table.Th>Actor</Table.Th>
                  <Table.Th>Target</Table.Th>
                  <Table.Th>Sealed</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {page.items.map((e) => (
                  <Table.Tr key={e.id}>
                    <Table.Td>{fmtDate(e.occurredAt)}</Table.Td>
                    <Table.Td>
                      <Anchor component="button" type="button" onClick={() => setOpen(e.id)}>
                        {e.action}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>
                      <Badge color={e.outcome === 'success' ? 'green.9' : e.outcome === 'denied' ? 'red.9' : 'orange.9'}>{e.outcome}</Badge>
                    </Table.Td>
                    <Table.Td>{e.actorType === 'user' ? name(e.actorId) : `${e.actorType} ${short(e.actorId)}`}</Table.Td>
                    <Table.Td>{e.targetType ? `${e.targetType} ${short(e.targetId)}` : '—'}</Table.Td>
                    <Table.Td>{e.sealed ? 'yes' : 'not yet'}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            {page.items.length === 0 && <Text c="dark.6">No events match.</Text>}
            <Group>
              <Pagination total={next ? pageNo + 1 : pageNo} value={pageNo} onChange={goTo} aria-label="Audit pages" getControlProps={(c) => ({ 'aria-label': `${c} page` })} />
              <Text size="sm" c="dark.6">
                {PAGE} events a page
              </Text>
            </Group>
          </Stack>
        )}
      </Loaded>
      <Drawer opened={!!open} onClose={() => setOpen(null)} position="right" size="lg" title="Audit event">
        {open && <EventDetail id={open} event={selected} />}
      </Drawer>
    </Stack>
  );
}

function EventDetail({ id, event }: { id: string; event?: AuditEvent }) {
  const { can } = useSession();
  const [sensitive, setSensitive] = useState<Out<'getAuditEventSensitive'> | null>(null);
  const action = useAction();
  const one = useLoad(async () => {
    if (event) return event;
    // Ids are time-ordered (UUIDv7): look around the time the event was made (links from reports, incidents), then among the latest.
    const at = uuidTime(id);
    if (at !== null) {
      const around = { since: new Date(at - 3_600_000).toISOString(), until: new Date(at + 3_600_000).toISOString(), limit: 500 };
      const hit = (await ok(api.GET('/v1/audit-events', { params: { query: around } }))).items.find((e) => e.id === id);
      if (hit) return hit;
    }
    return (await ok(api.GET('/v1/audit-events', { params: { query: { limit: 200 } } }))).items.find((e) => e.id === id) ?? null;
  }, [id]);
  return (
    <Loaded load={one} what="this event">
      {(e) =>
        !e ? (
          <Text>Event {id} is not among the latest events; search for it with filters.</Text>
        ) : (
          <Stack data-testid="audit-event-detail">
            <Code block>{JSON.stringify(e, null, 2)}</Code>
            {can('read_sensitive:AuditEvent') && (
              <>
                <Button variant="light" onClick={async () => setSensitive((await action.run(() => ok(api.GET('/v1/audit-events/{id}/sensitive', { params: { path: { id } } })))) ?? null)}>
                  Reveal personal fields (audited)
                </Button>
                <ActionError error={action.error} />
                {sensitive && <Code block>{JSON.stringify(sensitive.fields, null, 2)}</Code>}
              </>
            )}
          </Stack>
        )
      }
    </Loaded>
  );
}

const FORMATS = ['ndjson', 'csv', 'cef', 'ocsf', 'ecs'] as const;

function Integrity() {
  const { can } = useSession();
  const [format, setFormat] = useState<(typeof FORMATS)[number]>('ndjson');
  const [gzip, setGzip] = useState(false);
  const [verify, setVerify] = useState<Out<'verifyAuditTrail'> | null>(null);
  const [publicKeyPem, setPublicKeyPem] = useState('');
  const checkpoints = useLoad(() => ok(api.GET('/v1/audit/checkpoints')), []);
  const canExport = can('export:AuditEvent');
  // Loaded again once the session says the reader may export (before it has loaded, nothing is).
  const manifest = useLoad(async () => (canExport ? ok(api.GET('/v1/audit/export/manifest')) : null), [canExport]);
  const action = useAction();
  // The export and its manifest cover exactly the range of the manifest shown (events sealed since, such as this page's
  // own reads, are in neither), so that the pair verifies offline.
  const m = manifest.data;
  const range = m && m.toSeq >= 1 ? `fromSeq=${m.fromSeq}&toSeq=${m.toSeq}` : '';
  const href = `/api/v1/audit/export?format=${format}${gzip ? '&gzip=true' : ''}${range ? `&${range}` : ''}`;
  const manifestHref = `/api/v1/audit/export/manifest${range ? `?${range}` : ''}`;

  async function runVerify() {
    const res = await action.run(() => ok(api.POST('/v1/audit/verify', { body: publicKeyPem.trim() ? { publicKeyPem: publicKeyPem.trim() } : {} })));
    if (res) setVerify(res);
  }
  async function checkpoint() {
    const res = await action.run(() => ok(api.POST('/v1/audit/checkpoints')));
    if (res) {
      checkpoints.reload();
      // What was just sealed is in the export range from now on.
      manifest.reload();
    }
  }

  return (
    <Stack>
      {can('export:AuditEvent') && (
        <Card withBorder>
          <Title order={2} size="h4" mb="sm">
            Export
          </Title>
          <Group align="flex-end">
            <NativeSelect label="Format" value={format} onChange={(e) => setFormat(e.currentTarget.value as (typeof FORMATS)[number])} data={[...FORMATS]} />
            <Switch label="gzip" checked={gzip} onChange={(e) => setGzip(e.currentTarget.checked)} />
            <Button component="a" href={href} download data-testid="export-link">
              Download export
            </Button>
            <Button component="a" variant="light" href={manifestHref} download="audit-manifest.json" data-testid="manifest-link">
              Download manifest
            </Button>
          </Group>
          <Loaded load={manifest} what="the export manifest">
            {(m) =>
              m && (
                <Text size="sm" c="dark.6" mt="sm" data-testid="export-manifest">
                  {m.count} sealed events, seq {m.fromSeq}–{m.toSeq}, last hash <Code>{m.lastHash?.slice(0, 16) ?? '—'}</Code>, {m.checkpoints.length} signed checkpoints. Verify offline with{' '}
                  <Code>npm run audit:verify</Code>.
                </Text>
              )
            }
          </Loaded>
        </Card>
      )}
      {can('verify:AuditEvent') && (
        <Card withBorder>
          <Title order={2} size="h4" mb="sm">
            Verify the chain
          </Title>
          <Textarea label="Public key (PEM, optional: else the server's own key)" value={publicKeyPem} onChange={(e) => setPublicKeyPem(e.currentTarget.value)} autosize minRows={2} />
          <Group mt="sm">
            <Button onClick={runVerify} loading={action.busy}>
              Verify now
            </Button>
            {can('checkpoint:AuditEvent') && (
              <Button variant="light" onClick={checkpoint} loading={action.busy}>
                Seal and sign a checkpoint
              </Button>
            )}
          </Group>
          <ActionError error={action.error} />
          {verify && (
            <Alert mt="sm" color={verify.ok ? 'green' : 'red'} variant="light" title={verify.ok ? 'Verified' : 'Verification failed'} data-testid="verify-result">
              {verify.checked} events checked up to seq {verify.lastSeq}; {verify.checkpointsVerified} signed checkpoints verified ({verify.publicKey} key).
              {!verify.ok && ` First bad seq ${verify.firstBadSeq}: ${verify.reason}`}
            </Alert>
          )}
        </Card>
      )}
      <Card withBorder>
        <Title order={2} size="h4" mb="sm">
          Checkpoints
        </Title>
        <Loaded load={checkpoints} what="checkpoints">
          {(c) =>
            c.items.length === 0 ? (
              <Text c="dark.6">No checkpoints yet.</Text>
            ) : (
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Seq</Table.Th>
                    <Table.Th>At</Table.Th>
                    <Table.Th>Hash</Table.Th>
                    <Table.Th>Key</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {c.items.map((k) => (
                    <Table.Tr key={k.seq}>
                      <Table.Td>{k.seq}</Table.Td>
                      <Table.Td>{fmtDate(k.at)}</Table.Td>
                      <Table.Td>
                        <Code>{k.hash.slice(0, 24)}…</Code>
                      </Table.Td>
                      <Table.Td>{k.kid}</Table.Td>
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

function Holds() {
  const { can } = useSession();
  const name = useMemberNames();
  const holds = useLoad(() => ok(api.GET('/v1/legal-holds')), []);
  const [form, setForm] = useState({ userId: '', from: '', until: '', reason: '' });
  const action = useAction();
  async function create() {
    const body = {
      reason: form.reason.trim(),
      from: new Date(form.from).toISOString(),
      ...(form.until ? { until: new Date(form.until).toISOString() } : {}),
      ...(form.userId.trim() ? { userId: form.userId.trim() } : {}),
    };
    if (await action.run(() => ok(api.POST('/v1/legal-holds', { body })))) {
      setForm({ userId: '', from: '', until: '', reason: '' });
      holds.reload();
    }
  }
  async function release(id: string) {
    if (await action.run(() => ok(api.POST('/v1/legal-holds/{id}/release', { params: { path: { id } } })))) holds.reload();
  }
  return (
    <Stack>
      <Text c="dark.6">A legal hold keeps the events it covers past the retention period until it is released.</Text>
      <Loaded load={holds} what="legal holds">
        {(h) => (
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Who</Table.Th>
                <Table.Th>From</Table.Th>
                <Table.Th>Until</Table.Th>
                <Table.Th>Reason</Table.Th>
                <Table.Th>State</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {h.items.map((x) => (
                <Table.Tr key={x.id}>
                  <Table.Td>{x.userId ? name(x.userId) : 'everyone'}</Table.Td>
                  <Table.Td>{fmtDate(x.from)}</Table.Td>
                  <Table.Td>{fmtDate(x.until)}</Table.Td>
                  <Table.Td>{x.reason}</Table.Td>
                  <Table.Td>
                    {x.releasedAt ? (
                      `released ${fmtDate(x.releasedAt)}`
                    ) : can('release:LegalHold') ? (
                      <Button size="xs" variant="outline" onClick={() => release(x.id)}>
                        Release
                      </Button>
                    ) : (
                      'active'
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Loaded>
      {can('create:LegalHold') && (
        <Card withBorder>
          <Title order={2} size="h4" mb="sm">
            Place a legal hold
          </Title>
          <Group align="flex-end">
            <TextInput label="Member id (empty: everyone)" value={form.userId} onChange={(e) => setForm({ ...form, userId: e.currentTarget.value })} />
            <TextInput label="From" type="datetime-local" required value={form.from} onChange={(e) => setForm({ ...form, from: e.currentTarget.value })} />
            <TextInput label="Until" type="datetime-local" value={form.until} onChange={(e) => setForm({ ...form, until: e.currentTarget.value })} />
            <TextInput label="Reason" required value={form.reason} onChange={(e) => setForm({ ...form, reason: e.currentTarget.value })} />
            <Button onClick={create} disabled={!form.from || !form.reason.trim()} loading={action.busy}>
              Place hold
            </Button>
          </Group>
          <ActionError error={action.error} />
        </Card>
      )}
    </Stack>
  );
}
