'use client';

import { Badge, Button, Card, Code, Group, Modal, NativeSelect, PasswordInput, Stack, Table, Tabs, Text, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

type Connector = Out<'listConnectors'>['items'][number];
type Tool = Out<'listConnectorTools'>['items'][number];

/**
 * What approving a tool pins, shown whole before the approval: its title, its whole description,
 * its input schema (property descriptions are text the model reads too), every flag with where it
 * was found, and for a tool changed since its approval what changed. An approval pins the hash of
 * all of it; a reviewer who saw a part would approve the rest unseen.
 */
function Definition({ tool }: { tool: Tool }) {
  return (
    <Stack gap={4} mt={4} aria-label={`Definition of ${tool.name}`}>
      {tool.title && <Text size="xs">Title: {tool.title}</Text>}
      <Text size="xs" c="dark.7" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>
        {tool.description || '(no description)'}
      </Text>
      <Text size="xs" fw={600}>
        Input schema
      </Text>
      <Code block style={{ maxHeight: 320, overflow: 'auto', fontSize: 11 }}>
        {JSON.stringify(tool.inputSchema, null, 2)}
      </Code>
      {tool.flags.map((f, i) => (
        <Text key={i} size="xs" c="red.9">
          Flagged ({f.reason}) in {f.where}: “{f.excerpt}”
        </Text>
      ))}
      {tool.diff.length > 0 && (
        <>
          <Text size="xs" fw={600}>
            Changed since its approval
          </Text>
          {tool.diff.map((d, i) => (
            <Text key={i} size="xs" style={{ overflowWrap: 'anywhere' }}>
              {d.kind} {d.path}
              {d.kind !== 'added' && `: was ${JSON.stringify(d.before)}`}
              {d.kind !== 'removed' && ` → now ${JSON.stringify(d.after)}`}
            </Text>
          ))}
        </>
      )}
    </Stack>
  );
}

export default function ConnectorsPage() {
  return (
    <Guard anyOf={['update:Connector', 'read:Credential']} what="connectors">
      <Connectors />
    </Guard>
  );
}

function Connectors() {
  const { can } = useSession();
  const installed = useLoad(() => ok(api.GET('/v1/connectors')), []);
  const catalog = useLoad(() => ok(api.GET('/v1/catalog/connectors')), []);
  const [open, setOpen] = useState<Connector | null>(null);
  const action = useAction();
  async function install(catalogId: string) {
    if (await action.run(() => ok(api.POST('/v1/connectors', { body: { catalogId } })))) installed.reload();
  }
  return (
    <Stack>
      <PageHeader title="Connectors" description="The tools agents may reach, each tool mapped to an action type; credentials are write-only." />
      <ActionError error={action.error} />
      <Tabs defaultValue="installed" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="installed">Installed</Tabs.Tab>
          <Tabs.Tab value="catalog">Catalog</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="installed" pt="md">
          <Loaded load={installed} what="connectors">
            {(page) =>
              page.items.length === 0 ? (
                <Text c="dark.6">No connector installed yet.</Text>
              ) : (
                <Table>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Connector</Table.Th>
                      <Table.Th>Status</Table.Th>
                      <Table.Th>Tools</Table.Th>
                      <Table.Th>Credentials</Table.Th>
                      <Table.Th />
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {page.items.map((c) => (
                      <Table.Tr key={c.id}>
                        <Table.Td>
                          {c.name}
                          <Text size="xs" c="dark.6">
                            {c.kind} {c.url ?? ''}
                          </Text>
                        </Table.Td>
                        <Table.Td>
                          <Badge color={c.status === 'active' ? 'green.9' : 'orange.9'}>{c.status.replace('_', ' ')}</Badge>
                        </Table.Td>
                        <Table.Td>
                          {c.tools.approved} approved · {c.tools.pending} pending · {c.tools.held} held
                        </Table.Td>
                        <Table.Td>
                          {c.auth.kind} ({c.credentialScope})
                        </Table.Td>
                        <Table.Td>
                          <Button size="xs" variant="light" onClick={() => setOpen(c)}>
                            Manage
                          </Button>
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )
            }
          </Loaded>
        </Tabs.Panel>
        <Tabs.Panel value="catalog" pt="md">
          <Loaded load={catalog} what="the connector catalog">
            {(cat) => (
              <Stack>
                {cat.items.map((c) => (
                  <Card withBorder key={c.id}>
                    <Group justify="space-between">
                      <div>
                        <Title order={2} size="h5">
                          {c.name} <Badge variant="light">{c.vendor}</Badge>
                        </Title>
                        <Text size="sm" c="dark.6">
                          {c.description ?? ''} · {c.auth} · {c.tools.length} tools
                        </Text>
                      </div>
                      {can('create:Connector') && (
                        <Button size="xs" onClick={() => install(c.id)} loading={action.busy}>
                          Install
                        </Button>
                      )}
                    </Group>
                  </Card>
                ))}
              </Stack>
            )}
          </Loaded>
        </Tabs.Panel>
      </Tabs>
      <Modal opened={!!open} onClose={() => (setOpen(null), installed.reload())} title={open?.name ?? ''} size="xl">
        {open && <ConnectorDetail connector={open} />}
      </Modal>
    </Stack>
  );
}

function ConnectorDetail({ connector }: { connector: Connector }) {
  const { can } = useSession();
  const id = connector.id;
  const tools = useLoad(() => ok(api.GET('/v1/connectors/{id}/tools', { params: { path: { id } } })), [id]);
  const creds = useLoad(() => ok(api.GET('/v1/credentials', { params: { query: { connectorId: id } } })), [id]);
  const actions = useLoad(() => ok(api.GET('/v1/catalog/actions')), []);
  const [secret, setSecret] = useState('');
  const [holdReason, setHoldReason] = useState('');
  const [result, setResult] = useState<string | null>(null);
  const action = useAction();
  const types = actions.data?.actions.map((a) => a.type) ?? [];

  async function setCredential() {
    if (await action.run(() => ok(api.POST('/v1/connectors/{id}/credentials', { params: { path: { id } }, body: { secret } })))) {
      setSecret('');
      creds.reload();
    }
  }
  async function oauth() {
    const res = await action.run(() => ok(api.POST('/v1/connectors/{id}/oauth/start', { params: { path: { id } }, body: { redirectUri: `${window.location.origin}/connectors/callback` } })));
    if (res) window.location.assign(res.authorizationUrl);
  }
  async function discover() {
    const res = await action.run(() => ok(api.POST('/v1/connectors/{id}/discover', { params: { path: { id } } })));
    if (res) {
      setResult(`Discovered: ${res.added.length} added, ${res.changed.length} changed, ${res.removed.length} removed.`);
      tools.reload();
    }
  }
  return (
    <Stack>
      <Group>
        {can('update:Connector') && connector.kind === 'remote' && (
          <Button size="xs" variant="light" onClick={discover} loading={action.busy}>
            Discover tools
          </Button>
        )}
        {connector.auth.kind === 'oauth2' && (
          <Button size="xs" onClick={oauth} loading={action.busy}>
            Connect with OAuth
          </Button>
        )}
        {can('delete:Connector') && (
          <Button size="xs" variant="outline" color="red.9" onClick={() => action.run(() => ok(api.DELETE('/v1/connectors/{id}', { params: { path: { id } } })))}>
            Uninstall
          </Button>
        )}
      </Group>
      {result && <Text size="sm">{result}</Text>}
      <ActionError error={action.error} />
      <Title order={3} size="h5">
        Tools and their action types
      </Title>
      <Loaded load={tools} what="tools">
        {(t) => (
          <Table>
            <Table.Tbody>
              {t.items.map((tool) => (
                <Table.Tr key={tool.name}>
                  <Table.Td>
                    {tool.name}
                    {tool.status === 'approved' ? (
                      <Text size="xs" c="dark.6">
                        {tool.description.slice(0, 160)}
                      </Text>
                    ) : (
                      <Definition tool={tool} />
                    )}
                    {tool.status === 'approved' && tool.flags.length > 0 && <Badge color="red.9">flagged: {tool.flags[0].reason}</Badge>}
                  </Table.Td>
                  <Table.Td>
                    <NativeSelect
                      aria-label={`Action type of ${tool.name}`}
                      value={tool.action}
                      disabled={!can('review_tools:Connector')}
                      data={types.length ? types : [tool.action]}
                      onChange={(e) => {
                        const value = e.currentTarget.value;
                        void action.run(() => ok(api.PATCH('/v1/connectors/{id}/tools/{name}', { params: { path: { id, name: tool.name } }, body: { action: value as never } }))).then(tools.reload);
                      }}
                    />
                  </Table.Td>
                  <Table.Td>
                    <Badge color={tool.status === 'approved' ? 'green.9' : tool.status === 'held' ? 'red.9' : 'orange.9'}>{tool.status}</Badge>
                  </Table.Td>
                  <Table.Td>
                    {can('review_tools:Connector') && tool.status !== 'approved' && (
                      <Button size="xs" variant="light" color="green" onClick={() => action.run(() => ok(api.POST('/v1/connectors/{id}/tools/{name}/approve', { params: { path: { id, name: tool.name } }, body: { hash: tool.hash } }))).then(tools.reload)}>
                        Approve
                      </Button>
                    )}
                    {can('review_tools:Connector') && tool.status !== 'held' && connector.kind === 'remote' && (
                      <Button size="xs" variant="subtle" color="red.9" disabled={!holdReason.trim()} onClick={() => action.run(() => ok(api.POST('/v1/connectors/{id}/tools/{name}/hold', { params: { path: { id, name: tool.name } }, body: { reason: holdReason.trim() } }))).then(tools.reload)}>
                        Hold
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Loaded>
      {can('review_tools:Connector') && <TextInput label="Reason to hold a tool" value={holdReason} onChange={(e) => setHoldReason(e.currentTarget.value)} />}
      <Title order={3} size="h5">
        Credentials (never shown again once set)
      </Title>
      <Loaded load={creds} what="credentials">
        {(c) => (
          <Table>
            <Table.Tbody>
              {c.items.map((k) => (
                <Table.Tr key={k.id}>
                  <Table.Td>
                    {k.kind} {k.userId ? '(personal)' : '(organisation)'}
                  </Table.Td>
                  <Table.Td>{k.status}</Table.Td>
                  <Table.Td>rotated {fmtDate(k.rotatedAt ?? k.createdAt)}</Table.Td>
                  <Table.Td>
                    <Group gap={4}>
                      <Button size="xs" variant="light" onClick={() => action.run(() => ok(api.POST('/v1/credentials/{id}/test', { params: { path: { id: k.id } } }))).then((r) => r && setResult(r.ok ? `Credential works (${r.checked}).` : 'Credential test failed.'))}>
                        Test
                      </Button>
                      {k.status !== 'revoked' && (
                        <Button size="xs" variant="outline" color="red.9" onClick={() => action.run(() => ok(api.POST('/v1/credentials/{id}/revoke', { params: { path: { id: k.id } } }))).then(creds.reload)}>
                          Revoke
                        </Button>
                      )}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Loaded>
      {connector.auth.kind === 'api_key' && (
        <Group align="flex-end">
          <PasswordInput label="New secret (write-only)" value={secret} onChange={(e) => setSecret(e.currentTarget.value)} autoComplete="off" />
          <Button onClick={setCredential} disabled={!secret} loading={action.busy}>
            Save credential
          </Button>
        </Group>
      )}
    </Stack>
  );
}
