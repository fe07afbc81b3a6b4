'use client';

import { Alert, Anchor, Badge, Button, Card, Checkbox, Code, Group, Modal, MultiSelect, NativeSelect, NumberInput, Radio, ScrollArea, Select, Stack, Table, Tabs, Text, Textarea, TextInput, Title } from '@mantine/core';
import Link from 'next/link';
import { useState, type ReactNode } from 'react';
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
type Scope = { type: 'org' } | { type: 'group' | 'workflow' | 'user'; id: string };
type Rule = { id: string; scope: Scope; actions: string[]; level: Level; when?: unknown; reason: string; guard?: boolean };
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

  /** Saves an edited document into the draft, making the draft from the active version first when there is none. */
  async function saveDocument(document: Doc, note: string): Promise<boolean> {
    const saved = await action.run(() =>
      draft.data
        ? ok(api.PATCH('/v1/policies/{id}', { params: { path: { id: draft.data.id } }, body: { document } }))
        : ok(api.POST('/v1/policies', { body: { note, document } })),
    );
    if (saved) {
      draft.setData(saved);
      if (!draftSummary) versions.reload();
    }
    return !!saved;
  }

  async function setLevel(type: string, level: Level) {
    const base = (draft.data ?? active.data)?.document as Doc | undefined;
    if (!base) return;
    await saveDocument({ ...base, baseline: { ...(base.baseline ?? {}), [type]: level } }, `Edit from the console: ${type} → ${level}`);
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
          {draft.data && <Tabs.Tab value="draft">Draft: diff, simulation and replay</Tabs.Tab>}
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
          {active.data && (
            <Overrides doc={(draft.data ?? active.data).document as Doc} catalog={catalog.data} editable={editable} busy={action.busy} onSave={saveDocument} />
          )}
        </Tabs.Panel>
        {draft.data && (
          <Tabs.Panel value="draft" pt="md">
            <DraftPanel draft={draft.data} catalog={catalog.data} canActivate={can('activate:Policy')} canDelete={can('delete:Policy')} canReplay={can('read:AuditEvent')} onChanged={reloadAll} />
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

function Overrides({ doc, catalog, editable, busy, onSave }: { doc: Doc; catalog?: Catalog; editable: boolean; busy: boolean; onSave(d: Doc, note: string): Promise<boolean> }) {
  const rules = doc.rules ?? [];
  const scopeName = useScopeNames();
  const [removing, setRemoving] = useState<Rule | null>(null);
  return (
    <Stack>
      <Title order={2} size="h4">
        Overrides (org, group, workflow and user rules)
      </Title>
      <Text size="sm" c="dark.6">
        The most specific matching scope decides (user, then workflow, then group, then org); among a person's groups the strictest wins; the org's guards and floors still hold (a guard only raises, whatever a more specific rule says). Changes go into the draft.
      </Text>
      {rules.length === 0 ? (
        <Text c="dark.6">No overrides.</Text>
      ) : (
        <Table data-testid="override-rules">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Rule</Table.Th>
              <Table.Th>Scope</Table.Th>
              <Table.Th>Actions</Table.Th>
              <Table.Th>Level</Table.Th>
              <Table.Th>Conditions</Table.Th>
              <Table.Th>Reason</Table.Th>
              {editable && <Table.Th>Change</Table.Th>}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rules.map((r) => (
              <Table.Tr key={r.id}>
                <Table.Td>{r.id}</Table.Td>
                <Table.Td>
                  {scopeName(r.scope)}
                  {r.guard && (
                    <Badge ml="xs" variant="outline" color="dark" title="A guard: only raises, and no group, workflow or person rule lowers it">
                      guard
                    </Badge>
                  )}
                </Table.Td>
                <Table.Td>{r.actions.join(', ')}</Table.Td>
                <Table.Td>
                  <Badge color={LEVEL_COLOR[r.level]}>{r.level}</Badge>
                </Table.Td>
                <Table.Td>{r.when ? <Code>{JSON.stringify(r.when)}</Code> : '—'}</Table.Td>
                <Table.Td>{r.reason}</Table.Td>
                {editable && (
                  <Table.Td>
                    <Button size="xs" variant="outline" color="red.9" disabled={busy} onClick={() => setRemoving(r)} aria-label={`Remove rule ${r.id}`}>
                      Remove
                    </Button>
                  </Table.Td>
                )}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {editable && catalog && <AddRule doc={doc} catalog={catalog} busy={busy} onSave={onSave} />}
      <Modal opened={removing !== null} onClose={() => setRemoving(null)} title={`Remove rule ${removing?.id ?? ''} from the draft?`}>
        <Stack>
          <Text>
            {removing?.guard ? 'What it guarded is decided by the scopes alone again.' : 'Its actions fall back to the next, less specific scope.'} The active policy is unchanged until the draft is activated.
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setRemoving(null)}>
              Cancel
            </Button>
            <Button
              color="red.9"
              loading={busy}
              onClick={async () => {
                if (removing && (await onSave({ ...doc, rules: rules.filter((x) => x.id !== removing.id) }, `Edit from the console: remove rule ${removing.id}`))) setRemoving(null);
              }}
            >
              Yes, remove
            </Button>
          </Group>
        </Stack>
      </Modal>
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

function DraftPanel({ draft, catalog, canActivate, canDelete, canReplay, onChanged }: { draft: Version; catalog?: Catalog; canActivate: boolean; canDelete: boolean; canReplay: boolean; onChanged(): void }) {
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
    // Bound to the draft and the diff as shown here: a draft edited, or another version activated, meanwhile is refused (409), to be reviewed again.
    const res = await action.run(() => ok(api.POST('/v1/policies/{id}/activate', { params: { path: { id: draft.id } }, body: { reviewedUpdatedAt: draft.updatedAt, ...(diff.data ? { reviewedAgainst: diff.data.from } : {}), ...(note.trim() ? { note: note.trim() } : {}) } })));
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
      {canReplay && <ReplayCard draft={draft} />}
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

type Replay = Out<'replayPolicy'>;

/** Replays the draft over the stored trail: which past actions it would decide differently, and what that means for approvers. */
function ReplayCard({ draft }: { draft: Version }) {
  const [days, setDays] = useState<number | string>(180);
  const [result, setResult] = useState<Replay | null>(null);
  const action = useAction();
  async function replay() {
    const res = await action.run(() => ok(api.POST('/v1/policies/{id}/replay', { params: { path: { id: draft.id } }, body: { days: Number(days) || 180, examples: 20 } })));
    if (res) setResult(res);
  }
  const tally = (rows: { changed: number; stricter: number; looser: number }[], key: (i: number) => ReactNode, caption: string) =>
    rows.length > 0 && (
      <Table withTableBorder>
        <Table.Caption>{caption}</Table.Caption>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Who / what</Table.Th>
            <Table.Th>Changed</Table.Th>
            <Table.Th>Stricter</Table.Th>
            <Table.Th>Looser</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.slice(0, 10).map((r, i) => (
            <Table.Tr key={i}>
              <Table.Td>{key(i)}</Table.Td>
              <Table.Td>{r.changed}</Table.Td>
              <Table.Td>{r.stricter}</Table.Td>
              <Table.Td>{r.looser}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    );
  return (
    <Card withBorder>
      <Group justify="space-between" mb="xs" align="flex-end">
        <Title order={2} size="h4">
          Replay over past activity
        </Title>
        <Group align="flex-end">
          <NumberInput label="Days of the trail" min={1} max={366} value={days} onChange={setDays} w={150} />
          <Button variant="light" onClick={replay} loading={action.busy}>
            Replay the draft
          </Button>
        </Group>
      </Group>
      <ActionError error={action.error} />
      {result ? (
        <Stack gap="xs" data-testid="replay">
          <Text>
            {result.replayed.toLocaleString('en-GB')} past actions of the last {result.days} days replayed:{' '}
            <strong>
              {result.changed.toLocaleString('en-GB')} decided differently
            </strong>{' '}
            ({result.stricter} stricter, {result.looser} looser){result.sameLevelOtherRules > 0 ? `; ${result.sameLevelOtherRules} keep their level under other rules` : ''}
            {result.notReplayable > 0 ? `; ${result.notReplayable} could not be replayed` : ''}.
          </Text>
          <Text data-testid="replay-approvals">
            Approvals a day: {result.approvalsPerDay.before.toFixed(1)} → {result.approvalsPerDay.after.toFixed(1)} ({result.approvalsPerDay.delta >= 0 ? '+' : ''}
            {result.approvalsPerDay.delta.toFixed(1)})
          </Text>
          {result.transitions.length > 0 && (
            <Group gap="xs">
              {result.transitions.map((t) => (
                <Badge key={`${t.from}-${t.to}`} variant="outline" color="dark.6">
                  {t.from} → {t.to}: {t.count}
                </Badge>
              ))}
            </Group>
          )}
          {tally(result.byAction, (i) => result.byAction[i].action, 'By action type')}
          {tally(result.byWorkflow, (i) => result.byWorkflow[i].workflow ?? 'no workflow', 'By workflow')}
          {tally(result.byUser, (i) => result.byUser[i].email ?? result.byUser[i].user.slice(0, 8), 'By person')}
          {result.examples.length > 0 && (
            <Table withTableBorder>
              <Table.Caption>Examples</Table.Caption>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>When</Table.Th>
                  <Table.Th>Action</Table.Th>
                  <Table.Th>Before → after</Table.Th>
                  <Table.Th>Why now</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {result.examples.map((e) => (
                  <Table.Tr key={e.eventId}>
                    <Table.Td>
                      <Anchor component={Link} href={`/audit?event=${e.eventId}`}>
                        {fmtDate(e.at)}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>
                      {e.action}
                      {e.workflow ? ` (${e.workflow})` : ''}
                    </Table.Td>
                    <Table.Td>
                      <Badge color={LEVEL_COLOR[e.before.level]}>{e.before.level}</Badge> → <Badge color={LEVEL_COLOR[e.after.level]}>{e.after.level}</Badge>
                    </Table.Td>
                    <Table.Td>{e.after.reason}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Stack>
      ) : (
        <Text c="dark.6">Decide every stored agent action of the period again under the draft, and see which would change (the replay read is audited).</Text>
      )}
    </Card>
  );
}

/** Names for rule scopes: group names, workflow names, member emails (ids when the caller may not list them). */
function useScopeNames() {
  const { can } = useSession();
  const name = useMemberNames();
  const groups = useLoad(async () => (can('read:Group') ? ok(api.GET('/v1/groups', { params: { query: { limit: 200 } } })) : null), []);
  const workflows = useLoad(() => ok(api.GET('/v1/workflows', { params: { query: { limit: 200 } } })), []);
  return (s: Scope) => {
    if (s.type === 'org') return 'whole org';
    if (s.type === 'group') return `group ${groups.data?.items.find((g) => g.id === s.id)?.name ?? s.id.slice(0, 8)}`;
    if (s.type === 'workflow') return `workflow ${workflows.data?.items.find((w) => w.key === s.id)?.name ?? s.id}`;
    return `user ${name(s.id)}`;
  };
}

/** A new override rule in the draft: a scope (org, group, workflow or user), action types and the level they get there. */
function AddRule({ doc, catalog, busy, onSave }: { doc: Doc; catalog: Catalog; busy: boolean; onSave(d: Doc, note: string): Promise<boolean> }) {
  const { can } = useSession();
  const [type, setType] = useState<Scope['type']>('group');
  const [scopeId, setScopeId] = useState<string | null>(null);
  const [actions, setActions] = useState<string[]>([]);
  const [level, setLevel] = useState<Level>('watched');
  const [reason, setReason] = useState('');
  const [guard, setGuard] = useState(false);
  const groups = useLoad(async () => (can('read:Group') ? ok(api.GET('/v1/groups', { params: { query: { limit: 200 } } })) : null), []);
  const workflows = useLoad(() => ok(api.GET('/v1/workflows', { params: { query: { limit: 200 } } })), []);
  const members = useLoad(async () => (can('read:Member') ? ok(api.GET('/v1/members', { params: { query: { limit: 200 } } })) : null), []);
  const options =
    type === 'group'
      ? (groups.data?.items ?? []).map((g) => ({ value: g.id, label: g.name }))
      : type === 'workflow'
        ? (workflows.data?.items ?? []).map((w) => ({ value: w.key, label: `${w.name} (${w.key})` }))
        : type === 'user'
          ? (members.data?.items ?? []).map((m) => ({ value: m.userId, label: m.email }))
          : [];
  const ready = actions.length > 0 && reason.trim() && (type === 'org' || scopeId);

  async function add() {
    const scope: Scope = type === 'org' ? { type } : { type, id: scopeId! };
    const id = `console-${type}-${Date.now().toString(36)}`;
    const rule: Rule = { id, scope, actions, level, reason: reason.trim(), ...(type === 'org' && guard ? { guard: true } : {}) };
    if (await onSave({ ...doc, rules: [...(doc.rules ?? []), rule] }, `Edit from the console: rule ${id}`)) {
      setActions([]);
      setReason('');
      setGuard(false);
    }
  }

  return (
    <Card withBorder data-testid="add-rule">
      <Title order={3} size="h5" mb="xs">
        Add an override
      </Title>
      <Group align="flex-end">
        <NativeSelect
          label="Scope"
          value={type}
          onChange={(e) => {
            setType(e.currentTarget.value as Scope['type']);
            setScopeId(null);
          }}
          data={[
            { value: 'group', label: 'Group' },
            { value: 'workflow', label: 'Workflow' },
            { value: 'user', label: 'Person' },
            { value: 'org', label: 'Whole org' },
          ]}
        />
        {type !== 'org' && <Select label={type === 'user' ? 'Person' : type === 'group' ? 'Group' : 'Workflow'} data={options} value={scopeId} onChange={setScopeId} searchable w={260} nothingFoundMessage="None" />}
        <MultiSelect label="Action types" data={catalog.actions.map((a) => a.type)} value={actions} onChange={setActions} searchable w={320} />
        <NativeSelect label="Level" value={level} onChange={(e) => setLevel(e.currentTarget.value as Level)} data={LEVELS.map((l) => ({ value: l, label: LEVEL_LABEL[l] }))} />
        <TextInput label="Reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)} maxLength={300} w={260} />
        {type === 'org' && <Checkbox label="Guard (only raises; no group, workflow or person rule lowers it)" checked={guard} onChange={(e) => setGuard(e.currentTarget.checked)} mb={8} />}
        <Button onClick={add} disabled={!ready} loading={busy}>
          Add to draft
        </Button>
      </Group>
    </Card>
  );
}
