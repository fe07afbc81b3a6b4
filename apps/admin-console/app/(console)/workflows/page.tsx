'use client';

import { Badge, Button, Card, Group, Modal, MultiSelect, Select, Stack, Table, Text, Textarea, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { useSession } from '@/components/session';
import { ActionError, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

type Workflow = Out<'listWorkflows'>['items'][number];
type GroupItem = Out<'listGroups'>['items'][number];
type Level = 'autonomous' | 'batched' | 'watched' | 'forbidden';
type Tier = 'quick' | 'standard' | 'complex';
const LEVEL_COLOR: Record<Level, string> = { autonomous: 'green.9', batched: 'blue.9', watched: 'orange.9', forbidden: 'red.9' };
const TIERS = [
  { value: 'org', label: "The organisation's model tier" },
  { value: 'quick', label: 'Quick (Haiku)' },
  { value: 'standard', label: 'Standard (Sonnet)' },
  { value: 'complex', label: 'Complex (Opus)' },
];

export default function WorkflowsPage() {
  return (
    <Guard anyOf={['update:Workflow', 'create:Policy', 'read:AuditEvent']} what="the workflows">
      <Workflows />
    </Guard>
  );
}

function Workflows() {
  const { can } = useSession();
  const workflows = useLoad(() => ok(api.GET('/v1/workflows', { params: { query: { limit: 200 } } })), []);
  const catalog = useLoad(() => ok(api.GET('/v1/catalog/actions')), []);
  // The org's groups (who a workflow is open to); names only where the caller may read them.
  const groups = useLoad(() => (can('read:Group') ? ok(api.GET('/v1/groups', { params: { query: { limit: 200 } } })) : Promise.resolve({ items: [] as GroupItem[] })), []);
  const groupNames = new Map((groups.data?.items ?? []).map((g) => [g.id, g.name]));
  const [editing, setEditing] = useState<Workflow | 'new' | null>(null);
  const actionTypes = catalog.data?.actions.map((a) => a.type) ?? [];
  return (
    <Stack>
      <PageHeader
        title="Workflows"
        description="Each workflow the agents run, the action types it uses and its documented classification: the level the active policy gives each of its actions, and the strictest of them."
        actions={
          can('create:Workflow') && (
            <Button onClick={() => setEditing('new')} disabled={!actionTypes.length}>
              New workflow
            </Button>
          )
        }
      />
      <Loaded load={workflows} what="the workflows">
        {(w) =>
          w.items.length === 0 ? (
            <Card withBorder>
              <Text>No workflow yet. Define one for each kind of work the agents do (the weekly brief, contract triage, …).</Text>
            </Card>
          ) : (
            <Stack>
              {w.items.map((x) => (
                <WorkflowCard key={x.id} workflow={x} groupNames={groupNames} editable={can('update:Workflow')} onEdit={() => setEditing(x)} onDeleted={workflows.reload} />
              ))}
            </Stack>
          )
        }
      </Loaded>
      {editing && (
        <WorkflowForm
          workflow={editing === 'new' ? null : editing}
          actionTypes={actionTypes}
          groups={groups.data?.items ?? []}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            workflows.reload();
          }}
        />
      )}
    </Stack>
  );
}

/** Who may run tasks under a workflow, in words. */
function openTo(w: Workflow, names: Map<string, string>): string {
  if (w.allowedGroups === null) return 'every member';
  if (w.allowedGroups.length === 0) return 'nobody';
  return w.allowedGroups.map((id) => names.get(id) ?? 'a group').join(', ');
}

function WorkflowCard({ workflow: w, groupNames, editable, onEdit, onDeleted }: { workflow: Workflow; groupNames: Map<string, string>; editable: boolean; onEdit(): void; onDeleted(): void }) {
  const classification = useLoad(() => ok(api.GET('/v1/workflows/{id}/classification', { params: { path: { id: w.id } } })), [w.id, w.updatedAt]);
  const [confirm, setConfirm] = useState(false);
  const action = useAction();
  async function remove() {
    if (await action.run(async () => (await ok(api.DELETE('/v1/workflows/{id}', { params: { path: { id: w.id } } })), true))) {
      setConfirm(false);
      onDeleted();
    }
  }
  return (
    <Card withBorder data-testid={`workflow-${w.key}`}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Title order={2} size="h4">
            {w.name}{' '}
            <Text span size="sm" c="dark.6">
              ({w.key})
            </Text>
          </Title>
          <Group gap="xs">
            <Loaded load={classification} what="the classification">
              {(c) => (
                <Badge color={LEVEL_COLOR[c.classification as Level]} data-testid={`classification-${w.key}`}>
                  Classified {c.classification}
                </Badge>
              )}
            </Loaded>
            <Badge variant="outline" color="dark.6">
              Model: {w.modelTier ?? "the organisation's"}
            </Badge>
            <Badge variant="outline" color={w.allowedGroups === null ? 'dark.6' : 'blue.9'} data-testid={`open-to-${w.key}`}>
              Open to: {openTo(w, groupNames)}
            </Badge>
            {editable && (
              <>
                <Button size="xs" variant="default" onClick={onEdit}>
                  Edit
                </Button>
                <Button size="xs" variant="default" color="red.9" onClick={() => setConfirm(true)}>
                  Delete
                </Button>
              </>
            )}
          </Group>
        </Group>
        {w.description && <Text size="sm">{w.description}</Text>}
        <Loaded load={classification} what="the classification">
          {(c) => (
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Action type</Table.Th>
                  <Table.Th>Level (policy v{c.version})</Table.Th>
                  <Table.Th>Why</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {c.actions.map((a) => (
                  <Table.Tr key={a.action}>
                    <Table.Td>{a.action}</Table.Td>
                    <Table.Td>
                      <Badge color={LEVEL_COLOR[a.level as Level]}>{a.level}</Badge>
                    </Table.Td>
                    <Table.Td>
                      <Text size="xs">{a.reason}</Text>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Loaded>
      </Stack>
      <Modal opened={confirm} onClose={() => setConfirm(false)} title={`Delete the workflow ${w.key}?`}>
        <Stack>
          <Text size="sm">Its tasks keep their history. A workflow that an active or draft policy still names cannot be deleted.</Text>
          <ActionError error={action.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirm(false)}>
              Keep it
            </Button>
            <Button color="red.9" onClick={remove} loading={action.busy}>
              Delete the workflow
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Card>
  );
}

const ACCESS = [
  { value: 'all', label: 'Every member' },
  { value: 'groups', label: 'Members of these groups only' },
];

function WorkflowForm({ workflow, actionTypes, groups, onClose, onSaved }: { workflow: Workflow | null; actionTypes: string[]; groups: GroupItem[]; onClose(): void; onSaved(): void }) {
  const [f, setF] = useState({
    access: workflow?.allowedGroups === null || !workflow ? 'all' : 'groups',
    allowedGroups: workflow?.allowedGroups ?? [],
    key: workflow?.key ?? '',
    name: workflow?.name ?? '',
    description: workflow?.description ?? '',
    actionTypes: workflow?.actionTypes ?? [],
    tier: (workflow?.modelTier ?? 'org') as Tier | 'org',
  });
  const action = useAction();
  async function save() {
    const modelTier = f.tier === 'org' ? null : f.tier;
    const allowedGroups = f.access === 'all' ? null : f.allowedGroups;
    const res = await action.run(() =>
      workflow
        ? ok(api.PATCH('/v1/workflows/{id}', { params: { path: { id: workflow.id } }, body: { name: f.name, description: f.description, actionTypes: f.actionTypes as never, modelTier, allowedGroups } }))
        : ok(api.POST('/v1/workflows', { body: { key: f.key, name: f.name, description: f.description, actionTypes: f.actionTypes as never, modelTier, allowedGroups } })),
    );
    if (res) onSaved();
  }
  return (
    <Modal opened onClose={onClose} title={workflow ? `Edit ${workflow.key}` : 'New workflow'} size="lg">
      <Stack>
        <TextInput label="Key" description="Lower-case letters, digits and '-'; policy rules and tasks name the workflow by it." value={f.key} disabled={!!workflow} onChange={(e) => setF({ ...f, key: e.currentTarget.value })} />
        <TextInput label="Name" value={f.name} onChange={(e) => setF({ ...f, name: e.currentTarget.value })} />
        <Textarea label="Description" value={f.description} onChange={(e) => setF({ ...f, description: e.currentTarget.value })} />
        <MultiSelect label="Action types it uses" data={actionTypes} value={f.actionTypes} searchable onChange={(v) => setF({ ...f, actionTypes: v })} />
        <Select label="Model tier" data={TIERS} value={f.tier} allowDeselect={false} onChange={(v) => v && setF({ ...f, tier: v as Tier | 'org' })} />
        <Select
          label="Who may run tasks under it"
          description="Its policy rules decide before group rules: a workflow that lowers a level should be open only to the people it is for."
          data={ACCESS}
          value={f.access}
          allowDeselect={false}
          onChange={(v) => v && setF({ ...f, access: v })}
        />
        {f.access === 'groups' && (
          <MultiSelect label="Groups" data={groups.map((g) => ({ value: g.id, label: g.name }))} value={f.allowedGroups} searchable onChange={(v) => setF({ ...f, allowedGroups: v })} />
        )}
        <ActionError error={action.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button onClick={save} loading={action.busy}>
            {workflow ? 'Save the workflow' : 'Create the workflow'}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
