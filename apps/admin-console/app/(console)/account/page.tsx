'use client';

import { Alert, Badge, Button, Card, Code, Group, MultiSelect, NumberInput, PasswordInput, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

export default function AccountPage() {
  const { session } = useSession();
  return (
    <Stack>
      <PageHeader title="Account" description={`${session.user.name} · ${session.user.email} · roles: ${session.roles.join(', ')}`} />
      <Password />
      <SecondFactor />
      <ApiKeys />
      <McpClients />
    </Stack>
  );
}

function Password() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [done, setDone] = useState(false);
  const action = useAction();
  async function change() {
    setDone(false);
    if ((await action.run(async () => (await ok(api.POST('/v1/auth/password', { body: { currentPassword: current, newPassword: next } })), true))) === true) {
      setCurrent('');
      setNext('');
      setDone(true);
    }
  }
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h4">
          Password
        </Title>
        <Group grow>
          <PasswordInput label="Current password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.currentTarget.value)} />
          <PasswordInput label="New password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.currentTarget.value)} />
        </Group>
        <ActionError error={action.error} />
        {done && <Text c="green.9" role="status">Password changed.</Text>}
        <Button w="fit-content" onClick={change} loading={action.busy} disabled={!current || !next}>
          Change password
        </Button>
      </Stack>
    </Card>
  );
}

function SecondFactor() {
  const { session, reload } = useSession();
  const [enrol, setEnrol] = useState<Out<'enrollTotp'> | null>(null);
  const [code, setCode] = useState('');
  const [password, setPassword] = useState('');
  const action = useAction();
  async function start() {
    const res = await action.run(() => ok(api.POST('/v1/auth/totp/enroll', { body: password ? { password } : {} })));
    if (res) {
      setEnrol(res);
      setPassword('');
    }
  }
  async function confirm() {
    if ((await action.run(async () => (await ok(api.POST('/v1/auth/totp/confirm', { body: { totpCode: code } })), true))) === true) {
      setEnrol(null);
      setCode('');
      reload();
    }
  }
  async function disable() {
    if ((await action.run(async () => (await ok(api.POST('/v1/auth/totp/disable', { body: { password, totpCode: code } })), true))) === true) {
      setCode('');
      setPassword('');
      reload();
    }
  }
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h4">
          Second factor (authenticator app) {session.mfa.enrolled ? <Badge color="green.9">on</Badge> : <Badge color="gray.9">off</Badge>}
        </Title>
        {!session.mfa.enrolled && !enrol && (
          <Group align="flex-end">
            <PasswordInput
              label="Password"
              description="Your account's password (an account that signs in only through single sign-on: leave it empty, within 10 minutes of signing in)"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
            />
            <Button onClick={start} loading={action.busy}>
              Set up an authenticator app
            </Button>
          </Group>
        )}
        {enrol && (
          <>
            <Text size="sm">Add this key to your authenticator app (or open the otpauth link on your phone), then enter the code it shows.</Text>
            <Code block>{enrol.secret}</Code>
            <Text size="xs" c="dark.6" style={{ wordBreak: 'break-all' }}>
              {enrol.otpauthUri}
            </Text>
            <Group align="flex-end">
              <TextInput label="Code" inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.currentTarget.value)} />
              <Button onClick={confirm} loading={action.busy} disabled={code.length !== 6}>
                Confirm
              </Button>
            </Group>
          </>
        )}
        {session.mfa.enrolled && (
          <Group align="flex-end">
            <PasswordInput label="Password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
            <TextInput label="Code" inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.currentTarget.value)} />
            <Button color="red.9" variant="outline" onClick={disable} loading={action.busy} disabled={!password || code.length !== 6}>
              Turn off
            </Button>
          </Group>
        )}
        <ActionError error={action.error} />
      </Stack>
    </Card>
  );
}

function ApiKeys() {
  const { session, can } = useSession();
  const keys = useLoad(async () => (can('read:ApiKey', { own: true }) ? ok(api.GET('/v1/api-keys', { params: { query: { limit: 100, user: session.user.id } } })) : null), []);
  const [name, setName] = useState('');
  const [days, setDays] = useState<number | string>(90);
  const [scopes, setScopes] = useState<string[]>(['read:Task']);
  const [secret, setSecret] = useState<string | null>(null);
  const action = useAction();
  // A key can hold at most what its owner may do.
  const available = ['*', ...session.permissions.map((p) => p.replace(/:own$/, ''))].filter((p, i, a) => a.indexOf(p) === i);
  async function create() {
    const res = await action.run(() => ok(api.POST('/v1/api-keys', { body: { name: name.trim(), scopes: scopes as never, expiresInDays: Number(days) || undefined } })));
    if (res) {
      setSecret(res.secret);
      setName('');
      keys.reload();
    }
  }
  if (!can('create:ApiKey', { own: true })) return null;
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h4">
          API keys
        </Title>
        {secret && (
          <Alert color="green" variant="light" title="Copy this key now: it is shown once and never again" data-testid="api-key-secret">
            <Code>{secret}</Code>
          </Alert>
        )}
        <Group align="flex-end">
          <TextInput label="Name" value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <MultiSelect label="Scopes" data={available} value={scopes} onChange={setScopes} miw={240} searchable />
          <NumberInput label="Expires in (days)" min={1} max={365} value={days} onChange={setDays} w={150} />
          <Button onClick={create} loading={action.busy} disabled={!name.trim() || scopes.length === 0}>
            Create key
          </Button>
        </Group>
        <Text size="sm" c="dark.6">
          Revoking a key also pauses the task schedules whose prompt it wrote; rewrite their prompt from here (the API) before resuming them, or delete them.
        </Text>
        <ActionError error={action.error} />
        <Loaded load={keys} what="API keys">
          {(k) =>
            k && (
              <Table>
                <Table.Tbody>
                  {k.items.map((key) => (
                    <Table.Tr key={key.id}>
                      <Table.Td>{key.name}</Table.Td>
                      <Table.Td>
                        <Code>{key.hint}</Code>
                      </Table.Td>
                      <Table.Td>{key.scopes.join(', ')}</Table.Td>
                      <Table.Td>{key.status}</Table.Td>
                      <Table.Td>expires {fmtDate(key.expiresAt)}</Table.Td>
                      <Table.Td>
                        {key.status === 'active' && (
                          <Button size="xs" variant="outline" color="red.9" onClick={() => action.run(() => ok(api.DELETE('/v1/api-keys/{id}', { params: { path: { id: key.id } } }))).then(keys.reload)}>
                            Revoke
                          </Button>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )
          }
        </Loaded>
      </Stack>
    </Card>
  );
}

/** The MCP clients (Claude Desktop, an IDE) this person let act for them through OAuth, each revocable at once. */
function McpClients() {
  const { session, can } = useSession();
  const grants = useLoad(async () => (can('read:ApiKey', { own: true }) ? ok(api.GET('/v1/mcp-grants', { params: { query: { limit: 100, user: session.user.id } } })) : null), []);
  const action = useAction();
  if (!can('read:ApiKey', { own: true })) return null;
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h4">
          Connected MCP clients
        </Title>
        <Text size="sm" c="dimmed">
          Clients you allowed to use Steward&apos;s MCP gateway as you. Revoking one ends its tokens at once; it must ask you again.
        </Text>
        <ActionError error={action.error} />
        <Loaded load={grants} what="connected MCP clients">
          {(g) =>
            g &&
            (g.items.length === 0 ? (
              <Text size="sm">No MCP client has been allowed yet.</Text>
            ) : (
              <Table data-testid="mcp-grants">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Client</Table.Th>
                    <Table.Th>Status</Table.Th>
                    <Table.Th>Allowed</Table.Th>
                    <Table.Th>Last token</Table.Th>
                    <Table.Th>Ends</Table.Th>
                    <Table.Th />
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {g.items.map((grant) => (
                    <Table.Tr key={grant.id}>
                      <Table.Td>
                        {grant.clientName ?? 'Unnamed client'} <Code>{grant.clientId}</Code>
                      </Table.Td>
                      <Table.Td>
                        <Badge variant="light" color={grant.status === 'active' ? 'green' : 'gray'}>
                          {grant.status}
                        </Badge>
                      </Table.Td>
                      <Table.Td>{fmtDate(grant.createdAt)}</Table.Td>
                      <Table.Td>{fmtDate(grant.lastRefreshedAt)}</Table.Td>
                      <Table.Td>{grant.revokedAt ? `revoked ${fmtDate(grant.revokedAt)}` : fmtDate(grant.expiresAt)}</Table.Td>
                      <Table.Td>
                        {grant.status === 'active' && (
                          <Button size="xs" variant="outline" color="red.9" aria-label={`Revoke ${grant.clientName ?? grant.clientId}`} onClick={() => action.run(() => ok(api.DELETE('/v1/mcp-grants/{id}', { params: { path: { id: grant.id } } }))).then(grants.reload)}>
                            Revoke
                          </Button>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            ))
          }
        </Loaded>
      </Stack>
    </Card>
  );
}
