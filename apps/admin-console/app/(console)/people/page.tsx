'use client';

import { Alert, Badge, Button, Card, Checkbox, Code, Group, Modal, MultiSelect, Stack, Table, Tabs, Text, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

type Role = Out<'listRoles'>['items'][number];
type Member = Out<'listMembers'>['items'][number];

export default function PeoplePage() {
  return (
    <Guard anyOf={['read:Member']} what="members, groups and roles">
      <People />
    </Guard>
  );
}

function People() {
  const { can } = useSession();
  const roles = useLoad(async () => (can('read:Role') ? ok(api.GET('/v1/roles')) : { items: [] as Role[] }), []);
  return (
    <Stack>
      <PageHeader title="Members & roles" description="Who belongs to the organisation, in which groups, and what each role may do." />
      <Tabs defaultValue="members" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="members">Members</Tabs.Tab>
          {can('read:Invitation') && <Tabs.Tab value="invitations">Invitations</Tabs.Tab>}
          {can('read:Group') && <Tabs.Tab value="groups">Groups</Tabs.Tab>}
          {can('read:Role') && <Tabs.Tab value="roles">Roles</Tabs.Tab>}
        </Tabs.List>
        <Tabs.Panel value="members" pt="md">
          <Members roles={roles.data?.items ?? []} />
        </Tabs.Panel>
        <Tabs.Panel value="invitations" pt="md">
          <Invitations roles={roles.data?.items ?? []} />
        </Tabs.Panel>
        <Tabs.Panel value="groups" pt="md">
          <Groups />
        </Tabs.Panel>
        <Tabs.Panel value="roles" pt="md">
          <Loaded load={roles} what="roles">
            {(r) => <Roles roles={r.items} onChanged={roles.reload} />}
          </Loaded>
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

const roleName = (r: Role) => (r.builtin ? r.key : `custom:${r.key}`);

function Members({ roles }: { roles: Role[] }) {
  const { can } = useSession();
  const list = useLoad(() => ok(api.GET('/v1/members', { params: { query: { limit: 200 } } })), []);
  const [editing, setEditing] = useState<Member | null>(null);
  const [picked, setPicked] = useState<string[]>([]);
  const [suspending, setSuspending] = useState<Member | null>(null);
  const [reason, setReason] = useState('');
  const action = useAction();
  async function saveRoles() {
    if (!editing) return;
    if (await action.run(() => ok(api.PUT('/v1/members/{userId}/roles', { params: { path: { userId: editing.userId } }, body: { roles: picked } })))) {
      setEditing(null);
      list.reload();
    }
  }
  async function suspend() {
    if (!suspending) return;
    const m = suspending;
    const done =
      m.status === 'active'
        ? await action.run(() => ok(api.POST('/v1/members/{userId}/suspend', { params: { path: { userId: m.userId } }, body: { reason: reason.trim() } })))
        : await action.run(() => ok(api.POST('/v1/members/{userId}/reactivate', { params: { path: { userId: m.userId } } })));
    if (done) {
      setSuspending(null);
      setReason('');
      list.reload();
    }
  }
  return (
    <Loaded load={list} what="members">
      {(page) => (
        <>
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Member</Table.Th>
                <Table.Th>Roles</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Joined</Table.Th>
                <Table.Th />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {page.items.map((m) => (
                <Table.Tr key={m.userId}>
                  <Table.Td>
                    {m.name} <Text size="xs" c="dark.6">{m.email}</Text>
                  </Table.Td>
                  <Table.Td>
                    {m.roles.map((r) => (
                      <Badge key={r} variant="light" color="indigo" mr={4}>
                        {r}
                      </Badge>
                    ))}
                  </Table.Td>
                  <Table.Td>
                    <Badge color={m.status === 'active' ? 'green.9' : 'red.9'}>{m.status}</Badge>
                  </Table.Td>
                  <Table.Td>{fmtDate(m.joinedAt)}</Table.Td>
                  <Table.Td>
                    <Group gap={4} wrap="nowrap">
                      {can('assign_roles:Member') && (
                        <Button size="xs" variant="light" onClick={() => (setEditing(m), setPicked(m.roles))}>
                          Roles
                        </Button>
                      )}
                      {can('suspend:Member') && (
                        <Button size="xs" variant="outline" color={m.status === 'active' ? 'red.9' : 'green.9'} onClick={() => setSuspending(m)}>
                          {m.status === 'active' ? 'Suspend' : 'Reactivate'}
                        </Button>
                      )}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Modal opened={!!editing} onClose={() => setEditing(null)} title={`Roles of ${editing?.email ?? ''}`}>
            <Stack>
              <MultiSelect label="Roles" data={roles.map(roleName)} value={picked} onChange={setPicked} />
              <ActionError error={action.error} />
              <Button onClick={saveRoles} loading={action.busy}>
                Save roles
              </Button>
            </Stack>
          </Modal>
          <Modal opened={!!suspending} onClose={() => setSuspending(null)} title={suspending?.status === 'active' ? `Suspend ${suspending?.email}?` : `Reactivate ${suspending?.email}?`}>
            <Stack>
              {suspending?.status === 'active' && (
                <>
                  <Text>Their sessions and API keys stop working and their running agent tasks stop.</Text>
                  <TextInput label="Reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)} />
                </>
              )}
              <ActionError error={action.error} />
              <Button color={suspending?.status === 'active' ? 'red.9' : 'green.9'} onClick={suspend} loading={action.busy} disabled={suspending?.status === 'active' && !reason.trim()}>
                Confirm
              </Button>
            </Stack>
          </Modal>
        </>
      )}
    </Loaded>
  );
}

function Invitations({ roles }: { roles: Role[] }) {
  const { can } = useSession();
  const list = useLoad(() => ok(api.GET('/v1/invitations', { params: { query: { limit: 100 } } })), []);
  const [email, setEmail] = useState('');
  const [picked, setPicked] = useState<string[]>(['member']);
  const [token, setToken] = useState<string | null>(null);
  const action = useAction();
  async function invite() {
    const res = await action.run(() => ok(api.POST('/v1/invitations', { body: { email: email.trim(), roles: picked } })));
    if (res) {
      setToken(res.token);
      setEmail('');
      list.reload();
    }
  }
  return (
    <Stack>
      {can('create:Invitation') && (
        <Card withBorder>
          <Group align="flex-end">
            <TextInput label="Email" type="email" value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
            <MultiSelect label="Roles" data={roles.map(roleName)} value={picked} onChange={setPicked} miw={220} />
            <Button onClick={invite} loading={action.busy} disabled={!email.trim() || picked.length === 0}>
              Invite
            </Button>
          </Group>
          <ActionError error={action.error} />
          {token && (
            <Alert mt="sm" color="green" variant="light" title="Invitation created: copy its token now, it is shown once">
              <Code>{token}</Code>
            </Alert>
          )}
        </Card>
      )}
      <Loaded load={list} what="invitations">
        {(page) => (
          <Table>
            <Table.Tbody>
              {page.items.map((i) => (
                <Table.Tr key={i.id}>
                  <Table.Td>{i.email}</Table.Td>
                  <Table.Td>{i.roles.join(', ')}</Table.Td>
                  <Table.Td>{i.status}</Table.Td>
                  <Table.Td>expires {fmtDate(i.expiresAt)}</Table.Td>
                  <Table.Td>
                    {i.status === 'pending' && can('revoke:Invitation') && (
                      <Button size="xs" variant="outline" color="red.9" onClick={() => action.run(() => ok(api.DELETE('/v1/invitations/{id}', { params: { path: { id: i.id } } }))).then(list.reload)}>
                        Revoke
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Loaded>
    </Stack>
  );
}

function Groups() {
  const { can } = useSession();
  const list = useLoad(() => ok(api.GET('/v1/groups', { params: { query: { limit: 200 } } })), []);
  const [name, setName] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const action = useAction();
  async function create() {
    if (await action.run(() => ok(api.POST('/v1/groups', { body: { name: name.trim() } })))) {
      setName('');
      list.reload();
    }
  }
  return (
    <Stack>
      {can('create:Group') && (
        <Group align="flex-end">
          <TextInput label="New group" value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <Button onClick={create} disabled={!name.trim()} loading={action.busy}>
            Create group
          </Button>
        </Group>
      )}
      <ActionError error={action.error} />
      <Loaded load={list} what="groups">
        {(page) => (
          <Table>
            <Table.Tbody>
              {page.items.map((g) => (
                <Table.Tr key={g.id}>
                  <Table.Td>{g.name}</Table.Td>
                  <Table.Td>{g.memberCount} members</Table.Td>
                  <Table.Td>
                    <Button size="xs" variant="light" onClick={() => setOpen(g.id)}>
                      Members
                    </Button>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Loaded>
      <Modal opened={!!open} onClose={() => (setOpen(null), list.reload())} title="Group members">
        {open && <GroupMembers id={open} />}
      </Modal>
    </Stack>
  );
}

function GroupMembers({ id }: { id: string }) {
  const { can } = useSession();
  const members = useLoad(() => ok(api.GET('/v1/groups/{id}/members', { params: { path: { id } } })), [id]);
  const all = useLoad(() => ok(api.GET('/v1/members', { params: { query: { limit: 200 } } })), []);
  const [add, setAdd] = useState<string[]>([]);
  const action = useAction();
  const manage = can('manage_members:Group');
  async function addMembers() {
    for (const userId of add) await action.run(() => ok(api.PUT('/v1/groups/{id}/members/{userId}', { params: { path: { id, userId } } })));
    setAdd([]);
    members.reload();
  }
  return (
    <Loaded load={members} what="group members">
      {(m) => (
        <Stack>
          {m.items.map((u) => (
            <Group key={u.id} justify="space-between">
              <Text>{u.email}</Text>
              {manage && (
                <Button size="xs" variant="outline" color="red.9" onClick={() => action.run(() => ok(api.DELETE('/v1/groups/{id}/members/{userId}', { params: { path: { id, userId: u.id } } }))).then(members.reload)}>
                  Remove
                </Button>
              )}
            </Group>
          ))}
          {manage && (
            <>
              <MultiSelect label="Add members" data={(all.data?.items ?? []).filter((x) => !m.items.some((y) => y.id === x.userId)).map((x) => ({ value: x.userId, label: x.email }))} value={add} onChange={setAdd} searchable />
              <Button onClick={addMembers} disabled={add.length === 0} loading={action.busy}>
                Add
              </Button>
            </>
          )}
          <ActionError error={action.error} />
        </Stack>
      )}
    </Loaded>
  );
}

/** What each role may do, as a subject × action grid; custom roles are edited in the same grid. */
function Roles({ roles, onChanged }: { roles: Role[]; onChanged(): void }) {
  const { can } = useSession();
  const [editing, setEditing] = useState<{ id: string | null; key: string; name: string; perms: Set<string> } | null>(null);
  const action = useAction();
  const catalog = rolesCatalog(roles);
  async function save() {
    if (!editing) return;
    const permissions = [...editing.perms].map((p) => {
      const [actionName, subject] = p.split(':');
      return { action: actionName, subject } as never;
    });
    const res = editing.id
      ? await action.run(() => ok(api.PATCH('/v1/roles/{id}', { params: { path: { id: editing.id! } }, body: { name: editing.name, permissions } })))
      : await action.run(() => ok(api.POST('/v1/roles', { body: { key: editing.key, name: editing.name, permissions } })));
    if (res) {
      setEditing(null);
      onChanged();
    }
  }
  return (
    <Stack>
      {can('create:Role') && (
        <Button w="fit-content" onClick={() => setEditing({ id: null, key: '', name: '', perms: new Set() })}>
          New custom role
        </Button>
      )}
      {roles.map((r) => (
        <Card withBorder key={r.key}>
          <Group justify="space-between">
            <Title order={2} size="h5">
              {r.name} <Badge variant="light">{r.builtin ? 'built-in' : 'custom'}</Badge>
            </Title>
            {!r.builtin && can('update:Role') && (
              <Button size="xs" variant="light" onClick={() => setEditing({ id: r.id, key: r.key, name: r.name, perms: new Set(r.permissions.map((p) => `${p.action}:${p.subject}`)) })}>
                Edit
              </Button>
            )}
          </Group>
          <Text size="sm" c="dark.6">
            {r.description}
          </Text>
          <Text size="sm" mt={4}>
            {r.permissions.map((p) => `${p.action} ${p.subject}${p.own ? ' (own)' : ''}`).join(' · ') || 'nothing'}
          </Text>
        </Card>
      ))}
      <Modal opened={!!editing} onClose={() => setEditing(null)} title={editing?.id ? 'Edit custom role' : 'New custom role'} size="xl">
        {editing && (
          <Stack>
            {!editing.id && <TextInput label="Key (a-z, 0-9, -)" value={editing.key} onChange={(e) => setEditing({ ...editing, key: e.currentTarget.value })} />}
            <TextInput label="Name" value={editing.name} onChange={(e) => setEditing({ ...editing, name: e.currentTarget.value })} />
            <Table>
              <Table.Tbody>
                {Object.entries(catalog).map(([subject, actions]) => (
                  <Table.Tr key={subject}>
                    <Table.Th>{subject}</Table.Th>
                    <Table.Td>
                      <Group gap="sm">
                        {actions.map((a) => (
                          <Checkbox
                            key={a}
                            label={a}
                            checked={editing.perms.has(`${a}:${subject}`)}
                            onChange={(e) => {
                              const perms = new Set(editing.perms);
                              if (e.currentTarget.checked) perms.add(`${a}:${subject}`);
                              else perms.delete(`${a}:${subject}`);
                              setEditing({ ...editing, perms });
                            }}
                          />
                        ))}
                      </Group>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            <ActionError error={action.error} />
            <Button onClick={save} loading={action.busy}>
              Save role
            </Button>
          </Stack>
        )}
      </Modal>
    </Stack>
  );
}

/** Every subject and its actions, as the owner role (which holds them all) lists them. */
function rolesCatalog(roles: Role[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of roles.find((r) => r.key === 'owner')?.permissions ?? []) (out[p.subject] ??= []).push(p.action);
  return out;
}
