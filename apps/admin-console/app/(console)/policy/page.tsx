'use client';

import { Alert, Badge, Button, Card, Code, Group, Modal, Radio, ScrollArea, Stack, Table, Tabs, Text, Textarea, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { useMemberNames } from '@/components/people';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

type Level = 'autonomous' | 'batched' | 'watched' | 'forbidden';
const LEVELS: Level[] = ['autonomous', 'batched', 'watched', 'forbidden'];
const LEVEL_LABEL: Record<Level, string> = { autonomous: 'Autonomous', batched: 'Batched', watched: 'Watched', forbidden: 'Forbidden' };
const LEVEL_COLOR: Record<Level, string> = { autonomous: 'green.9', batched: 'blue.9', watched: 'orange.9', forbidden: 'red.9' };
type Catalog = Out<'getActionCatalog'>;
type Version = Out<'getPolicyVersion'>;
type Doc = { baseline?: Record<string, Level>; rules?: Rule[]; rateLimits?: RateLimit[]; approvals?: unknown[]; forbiddenAreas?: ForbiddenArea[] } & Record<string, unknown>;
type Rule = { id: string; scope: { type: string; id?: string }; actions: string[]; level: Level; when?: unknown; reason: string };
type RateLimit = { id: string; actions: string[]; max: number; per: string; by: string; then: Level; reason: string };
type ForbiddenArea = { id: string; actions: string[]; when?: unknown; reason: string };

export default function PolicyPage() {
  return (
    <Guard anyOf={['create:Policy', 'read:AuditEvent']} what="the Trust Level policy">
      <Policy />
    </Guard>
  );
}

function Policy() {
  const { can } = useSession();
  const editable = can('create:Policy') && can('update:Policy');
  const name = useMemberNames();
  const catalog = useLoad(() => ok(api.GET('/v1/catalog/actions')), []);
  const versions = useLoad(() => ok(api.GET('/v1/policies', { params: { query: { limit: 50 } } })), []);
  const active = useLoad(() => ok(api.GET('/v1/policies/active')), []);
  const draftSummary = versions.data?.items.find((v) => v.status === 'draft');
  const draft = useLoad(async () => (draftSummary ? ok(api.GET('/v1/policies/{id}', { params: { path: { id: draftSummary.id } } })) : null), [draftSummary?.id]);
  const action = useAction();

  const reloadAll = () => {
    versions.reload();
    active.reload();
    draft.reload();
  };

  async function setLevel(type: string, level: Level) {
    const base = (draft.data ?? active.data)?.document as Doc | undefined;
    if (!base) return;
    const document: Doc = { ...base, baseline: { ...(base.baseline ?? {}), [type]: level } };
    const saved = await action.run(() =>
      draft.data
        ? ok(api.PATCH('/v1/policies/{id}', { params: { path: { id: draft.data.id } }, body: { document } }))
        : ok(api.POST('/v1/policies', { body: { note: `Edit from the console: ${type} → ${level}`, document } })),
    );
    if (saved) {
      draft.setData(saved);
      if (!draftSummary) versions.reload();
    }
  }

  return (
    <Stack>
      <PageHeader
        title="Trust Levels"
        description="What agents may do on their own, per action type. Edits make a draft; review its diff and simulation, then activate it."
      />
      <Loaded load={active} what="the active policy">
        {(act) => (
          <Group gap="xs">
            <Badge variant="filled" color="dark.7" size="lg" data-testid="active-version">
              Active: version {act.version}
            </Badge>
            <Text size="sm" c="dark.6">
              activated {fmtDate(act.activatedAt)} · review due {fmtDate(act.reviewDueAt)}
            </Text>
            {draft.data && (
              <Badge variant="filled" color="orange.9" size="lg" data-testid="draft-version">
                Draft: version {draft.data.version}
              </Badge>
            )}
          </Group>
        )}
      </Loaded>
      <ActionError error={action.error} />
      <Tabs defaultValue="matrix" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="matrix">Matrix</Tabs.Tab>
          <Tabs.Tab value="overrides">Overrides and limits</Tabs.Tab>
          {draft.data && <Tabs.Tab value="draft">Draft: diff and simulation</Tabs.Tab>}
          <Tabs.Tab value="history">Revision history</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="matrix" pt="md">
          <Loaded load={catalog} what="the action catalog">
            {(cat) =>
              active.data ? <Matrix catalog={cat} doc={(draft.data ?? active.data).document as Doc} active={active.data.document as Doc} editable={editable} busy={action.busy} onSet={setLevel} /> : null
            }
          </Loaded>
        </Tabs.Panel>
        <Tabs.Panel value="overrides" pt="md">
          {active.data && <Overrides doc={(draft.data ?? active.data).document as Doc} />}
        </Tabs.Panel>
        {draft.data && (
          <Tabs.Panel value="draft" pt="md">
            <DraftPanel draft={draft.data} catalog={catalog.data} canActivate={can('activate:Policy')} canDelete={can('delete:Policy')} onChanged={reloadAll} />
          </Tabs.Panel>
        )}
        <Tabs.Panel value="history" pt="md">
          <Loaded load={versions} what="the revision history">
            {(page) => (
              <Table data-testid="policy-history">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Version</Table.Th>
                    <Table.Th>Status</Table.Th>
                    <Table.Th>Why</Table.Th>
                    <Table.Th>Who</Table.Th>
                    <Table.Th>Created</Table.Th>
                    <Table.Th>Activated</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {page.items.map((v) => (
                    <Table.Tr key={v.id}>
                      <Table.Td>{v.version}</Table.Td>
                      <Table.Td>
                        <Badge variant="light" color={v.status === 'active' ? 'green.9' : v.status === 'draft' ? 'orange.9' : 'gray.9'}>
                          {v.status}
                        </Badge>
                      </Table.Td>
                      <Table.Td>{v.note}</Table.Td>
                      <Table.Td>{name(v.activatedBy ?? v.authorId)}</Table.Td>
                      <Table.Td>{fmtDate(v.createdAt)}</Table.Td>
                      <Table.Td>{fmtDate(v.activatedAt)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
          </Loaded>
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function Matrix({ catalog, doc, active, editable, busy, onSet }: { catalog: Catalog; doc: Doc; active: Doc; editable: boolean; busy: boolean; onSet(type: string, l: Level): void }) {
  return (
    <ScrollArea>
      <Table withTableBorder withColumnBorders data-testid="trust-matrix">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Action type</Table.Th>
            {LEVELS.map((l) => (
              <Table.Th key={l} scope="col" ta="center">
                {LEVEL_LABEL[l]}
              </Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {catalog.actions.map((a) => {
            const level = (doc.baseline?.[a.type] ?? a.default) as Level;
            const before = (active.baseline?.[a.type] ?? a.default) as Level;
            const floorIdx = a.floor ? LEVELS.indexOf(a.floor as Level) : 0;
            return (
                <Table.Tr key={a.type} data-testid={`row-${a.type}`}>
                  <Table.Th scope="row">
                    <Text fw={600} size="sm">
                      {a.type} {level !== before && <Badge color="orange.9" size="xs">changed</Badge>}
                    </Text>
                    <Text size="xs" c="dark.6">
                      {a.description}
                    </Text>
                  </Table.Th>
                  {LEVELS.map((l, i) => {
                    const locked = i < floorIdx;
                    return (
                      <Table.Td key={l} ta="center" bg={l === level ? 'var(--mantine-color-gray-1)' : undefined}>
                        {locked ? (
                          <Text size="xs" c="dark.6" title={`Locked: ${a.type} is never below ${a.floor}`} data-testid={`locked-${a.type}-${l}`}>
                            <span aria-hidden="true">🔒</span> locked
                          </Text>
                        ) : (
                          <Radio
                            name={`level-${a.type}`}
                            value={l}
                            checked={l === level}
                            onChange={() => onSet(a.type, l)}
                            disabled={!editable || busy}
                            aria-label={`${a.type}: ${LEVEL_LABEL[l]}`}
                            styles={{ body: { justifyContent: 'center' } }}
                          />
                        )}
                      </Table.Td>
                    );
                  })}
                </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      {!editable && (
        <Text size="sm" c="dark.6" mt="xs">
          Read only: your role may not change the policy.
        </Text>
      )}
    </ScrollArea>
  );
}

function Overrides({ doc }: { doc: Doc }) {
  const rules = doc.rules ?? [];
  return (
    <Stack>
      <Title order={2} size="h4">
        Overrides (org, group, workflow and user rules)
      </Title>
      {rules.length === 0 ? (
        <Text c="dark.6">No overrides.</Text>
      ) : (
        <Table>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Rule</Table.Th>
              <Table.Th>Scope</Table.Th>
              <Table.Th>Actions</Table.Th>
              <Table.Th>Level</Table.Th>
              <Table.Th>Conditions</Table.Th>
              <Table.Th>Reason</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rules.map((r) => (
              <Table.Tr key={r.id}>
                <Table.Td>{r.id}</Table.Td>
                <Table.Td>{r.scope.type + (r.scope.id ? ` ${r.scope.id.slice(0, 8)}` : '')}</Table.Td>
                <Table.Td>{r.actions.join(', ')}</Table.Td>
                <Table.Td>
                  <Badge color={LEVEL_COLOR[r.level]}>{r.level}</Badge>
                </Table.Td>
                <Table.Td>{r.when ? <Code>{JSON.stringify(r.when)}</Code> : '—'}</Table.Td>
                <Table.Td>{r.reason}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Title order={2} size="h4">
        Rate limits
      </Title>
      <Table>
        <Table.Tbody>
          {(doc.rateLimits ?? []).map((r) => (
            <Table.Tr key={r.id}>
              <Table.Td>{r.id}</Table.Td>
              <Table.Td>{r.actions.join(', ')}</Table.Td>
              <Table.Td>
                {r.max} per {r.per} per {r.by}, then {r.then}
              </Table.Td>
              <Table.Td>{r.reason}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Title order={2} size="h4">
        Forbidden areas
      </Title>
      <Table>
        <Table.Tbody>
          {(doc.forbiddenAreas ?? []).map((r) => (
            <Table.Tr key={r.id}>
              <Table.Td>{r.id}</Table.Td>
              <Table.Td>{r.actions.join(', ')}</Table.Td>
              <Table.Td>{r.when ? <Code>{JSON.stringify(r.when)}</Code> : 'always'}</Table.Td>
              <Table.Td>{r.reason}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

function DraftPanel({ draft, catalog, canActivate, canDelete, onChanged }: { draft: Version; catalog?: Catalog; canActivate: boolean; canDelete: boolean; onChanged(): void }) {
  const diff = useLoad(() => ok(api.GET('/v1/policies/{id}/diff', { params: { path: { id: draft.id } } })), [draft.id, draft.updatedAt]);
  const [sim, setSim] = useState<Out<'simulatePolicy'> | null>(null);
  const [confirm, setConfirm] = useState<'activate' | 'discard' | null>(null);
  const [note, setNote] = useState(draft.note);
  const action = useAction();

  async function simulate() {
    if (!catalog) return;
    const actions = catalog.actions.map((a) => ({ action: a.type as never }));
    const res = await action.run(() => ok(api.POST('/v1/policies/{id}/simulate', { params: { path: { id: draft.id } }, body: { actions } })));
    if (res) setSim(res);
  }
  async function activate() {
    const res = await action.run(() => ok(api.POST('/v1/policies/{id}/activate', { params: { path: { id: draft.id } }, body: note.trim() ? { note: note.trim() } : {} })));
    if (res) {
      setConfirm(null);
      onChanged();
    }
  }
  async function discard() {
    const res = await action.run(async () => (await ok(api.DELETE('/v1/policies/{id}', { params: { path: { id: draft.id } } })), true));
    if (res) {
      setConfirm(null);
      onChanged();
    }
  }

  return (
    <Stack>
      <Card withBorder>
        <Title order={2} size="h4" mb="xs">
          Changes against the active version
        </Title>
        <Loaded load={diff} what="the diff">
          {(d) =>
            d.changes.length === 0 ? (
              <Text c="dark.6">The draft is the same as the active version.</Text>
            ) : (
              <Table data-testid="policy-diff">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Path</Table.Th>
                    <Table.Th>Change</Table.Th>
                    <Table.Th>Before</Table.Th>
                    <Table.Th>After</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {d.changes.map((c) => (
                    <Table.Tr key={c.path}>
                      <Table.Td>
                        <Code>{c.path}</Code>
                      </Table.Td>
                      <Table.Td>{c.kind}</Table.Td>
                      <Table.Td>{c.before === undefined ? '—' : JSON.stringify(c.before)}</Table.Td>
                      <Table.Td>{c.after === undefined ? '—' : JSON.stringify(c.after)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )
          }
        </Loaded>
      </Card>
      <Card withBorder>
        <Group justify="space-between" mb="xs">
          <Title order={2} size="h4">
            Simulation
          </Title>
          <Button variant="light" onClick={simulate} loading={action.busy} disabled={!catalog}>
            Simulate every action type
          </Button>
        </Group>
        {sim ? (
          <Stack gap="xs" data-testid="simulation">
            <Text>
              {sim.summary.total} actions decided: <strong>{sim.summary.changed} change</strong> ({sim.summary.stricter} stricter, {sim.summary.looser} looser).
            </Text>
            <Table>
              <Table.Tbody>
                {sim.results
                  .filter((r) => r.changed)
                  .map((r) => (
                    <Table.Tr key={r.index}>
                      <Table.Td>{r.action}</Table.Td>
                      <Table.Td>
                        <Badge color={LEVEL_COLOR[r.before.level]}>{r.before.level}</Badge> → <Badge color={LEVEL_COLOR[r.after.level]}>{r.after.level}</Badge>
                      </Table.Td>
                      <Table.Td>{r.after.reason}</Table.Td>
                    </Table.Tr>
                  ))}
              </Table.Tbody>
            </Table>
          </Stack>
        ) : (
          <Text c="dark.6">Decide one action of every type under the draft and the active version, and see what changes.</Text>
        )}
      </Card>
      <TextInput label="Why (recorded with the version)" value={note} onChange={(e) => setNote(e.currentTarget.value)} maxLength={1000} />
      <ActionError error={action.error} />
      <Group>
        {canActivate && (
          <Button color="green.9" onClick={() => setConfirm('activate')}>
            Activate draft
          </Button>
        )}
        {canDelete && (
          <Button variant="outline" color="red.9" onClick={() => setConfirm('discard')}>
            Discard draft
          </Button>
        )}
      </Group>
      <Modal opened={confirm !== null} onClose={() => setConfirm(null)} title={confirm === 'activate' ? 'Activate this draft?' : 'Discard this draft?'}>
        <Stack>
          {confirm === 'activate' ? (
            <Alert color="orange" variant="light">
              Version {draft.version} becomes the policy every agent action is decided by, from the next action on. The current version is archived.
            </Alert>
          ) : (
            <Text>The draft and its changes are deleted.</Text>
          )}
          <Textarea label="Note" value={note} onChange={(e) => setNote(e.currentTarget.value)} maxLength={1000} />
          <ActionError error={action.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirm(null)}>
              Cancel
            </Button>
            <Button color={confirm === 'activate' ? 'green.9' : 'red.9'} loading={action.busy} onClick={confirm === 'activate' ? activate : discard}>
              {confirm === 'activate' ? 'Yes, activate' : 'Yes, discard'}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}
