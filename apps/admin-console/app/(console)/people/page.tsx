'use client';

import { Alert, Badge, Button, Card, Checkbox, Code, CopyButton, Group, Modal, MultiSelect, Stack, Table, Tabs, Text, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ApiError, ok, type Out } from '@/lib/client';
import { linkWithToken } from '@/lib/link-token';

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

/** A one-time link in full, wrapped anywhere (it has no spaces) rather than wider than its dialog. */
const LINK_STYLE = { whiteSpace: 'pre-wrap', wordBreak: 'break-all' } as const;

const roleName = (r: Role) => (r.builtin ? r.key : `custom:${r.key}`);

function Members({ roles }: { roles: Role[] }) {
  const { can, session } = useSession();
  const list = useLoad(() => ok(api.GET('/v1/members', { params: { query: { limit: 200 } } })), []);
  const [editing, setEditing] = useState<Member | null>(null);
  const [picked, setPicked] = useState<string[]>([]);
  const [suspending, setSuspending] = useState<Member | null>(null);
  const [reason, setReason] = useState('');
  const [recovering, setRecovering] = useState<Member | null>(null);
  const action = useAction();
  // Whom the caller may give a recovery link (the API refuses the rest anyway): an active member,
  // never themself, an owner only when the caller is an owner.
  const recoverable = (m: Member) => can('recover:Member') && m.status === 'active' && m.userId !== session.user.id && (!m.roles.includes('owner') || session.roles.includes('owner'));
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
                      {recoverable(m) && (
                        <Button size="xs" variant="outline" onClick={() => setRecovering(m)}>
                          Recovery link
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
          <Modal opened={!!recovering} onClose={() => setRecovering(null)} title={`Recovery link for ${recovering?.email ?? ''}`} size="lg">
            {recovering && <RecoveryLink member={recovering} />}
          </Modal>
        </>
      )}
    </Loaded>
  );
}

/**
 * A one-time link with which a member who lost their password (or authenticator) sets a new one:
 * issued here, shown once (closing the dialog forgets it), withdrawn here. Whoever holds it can
 * take the account over, so it goes to the person over a channel the issuer trusts them on.
 */
function RecoveryLink({ member }: { member: Member }) {
  const [secondFactor, setSecondFactor] = useState(false);
  const [issued, setIssued] = useState<{ link: string; expiresAt: string; secondFactor: boolean } | null>(null);
  const [withdrawn, setWithdrawn] = useState<string | null>(null);
  const action = useAction();
  async function issue() {
    setWithdrawn(null);
    const res = await action.run(() => ok(api.POST('/v1/members/{userId}/recovery', { params: { path: { userId: member.userId } }, body: { secondFactor } })));
    if (res) setIssued({ link: linkWithToken('/recover', res.token), expiresAt: res.expiresAt, secondFactor: res.secondFactor });
  }
  async function withdraw() {
    setWithdrawn(null);
    const res = await action.run(async () => {
      try {
        await ok(api.DELETE('/v1/members/{userId}/recovery', { params: { path: { userId: member.userId } } }));
        return 'withdrawn' as const;
      } catch (e) {
        // 404: the member has no pending link (none issued, or it was used, withdrawn or expired).
        if (e instanceof ApiError && e.problem.status === 404) return 'none' as const;
        throw e;
      }
    });
    if (res === 'withdrawn') {
      setIssued(null);
      setWithdrawn(`Withdrawn: the pending recovery link for ${member.email} no longer works.`);
    } else if (res === 'none') {
      setWithdrawn(`${member.email} has no pending recovery link: there was nothing to withdraw.`);
    }
  }
  return (
    <Stack>
      <Text size="sm">
        A one-time link with which {member.name} sets a new password, for when they lost it or their authenticator. It is valid 24 hours and shown once; a new link replaces
        an earlier one. Using it signs them out everywhere and ends their API keys and connected MCP clients.
      </Text>
      <Checkbox
        label="Also remove their authenticator"
        description="Only when they lost it too (with their phone, say). Left unticked, signing in still needs their authenticator's code."
        checked={secondFactor}
        onChange={(e) => setSecondFactor(e.currentTarget.checked)}
      />
      {issued && (
        <Alert color="green" variant="light" title="Recovery link issued: copy it now, it is shown once" data-testid="recovery-issued">
          <Stack gap="xs">
            <Code block data-testid="recovery-link" style={LINK_STYLE}>
              {issued.link}
            </Code>
            <Group gap="xs">
              <CopyButton value={issued.link}>
                {({ copied, copy }) => (
                  <Button size="xs" variant="light" onClick={copy}>
                    {copied ? 'Copied' : 'Copy link'}
                  </Button>
                )}
              </CopyButton>
            </Group>
            <Text size="sm" data-testid="recovery-expiry">
              Valid until {fmtDate(issued.expiresAt)}.{' '}
              {issued.secondFactor ? 'It also removes their authenticator.' : 'Their authenticator stays: they still need its code to sign in.'}
            </Text>
            <Text size="sm" fw={500}>
              Give it to {member.name} yourself, over a channel you trust them on: in person, on a call, or in a chat where you know it is them. Whoever holds the link
              can take the account over.
            </Text>
          </Stack>
        </Alert>
      )}
      {withdrawn && (
        <Text size="sm" role="status" data-testid="recovery-withdrawn">
          {withdrawn}
        </Text>
      )}
      <ActionError error={action.error} />
      <Group>
        <Button onClick={issue} loading={action.busy}>
          {issued ? 'Issue a new link' : 'Issue recovery link'}
        </Button>
        <Button variant="outline" color="red.9" onClick={withdraw} disabled={action.busy}>
          Withdraw pending link
        </Button>
      </Group>
    </Stack>
  );
}

function Invitations({ roles }: { roles: Role[] }) {
  const { can } = useSession();
  const list = useLoad(() => ok(api.GET('/v1/invitations', { params: { query: { limit: 100 } } })), []);
  const [email, setEmail] = useState('');
  const [picked, setPicked] = useState<string[]>(['member']);
  const [created, setCreated] = useState<{ email: string; token: string; link: string } | null>(null);
  const action = useAction();
  async function invite() {
    const res = await action.run(() => ok(api.POST('/v1/invitations', { body: { email: email.trim(), roles: picked } })));
    if (res) {
      setCreated({ email: res.invitation.email, token: res.token, link: linkWithToken('/join', res.token) });
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
          {created && (
            <Alert mt="sm" color="green" variant="light" title="Invitation created: copy its link now, it is shown once" data-testid="invitation-created">
              <Stack gap="xs">
                <Text size="sm">Send {created.email} this link: they open it to create their account (or join with the one they have).</Text>
                <Code block data-testid="invitation-link" style={LINK_STYLE}>
                  {created.link}
                </Code>
                <Group gap="xs">
                  <CopyButton value={created.link}>
                    {({ copied, copy }) => (
                      <Button size="xs" variant="light" onClick={copy}>
                        {copied ? 'Copied' : 'Copy link'}
                      </Button>
                    )}
                  </CopyButton>
                </Group>
                <Text size="sm">
                  Its token, to paste on the join page instead: <Code data-testid="invitation-token">{created.token}</Code>
                </Text>
              </Stack>
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
