'use client';

import { Anchor, Badge, Button, Card, Group, NumberInput, Stack, Table, Text, Textarea, Title } from '@mantine/core';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { useMemberNames } from '@/components/people';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, fmtUsd, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok } from '@/lib/client';
import { STATE_COLOR } from '@/components/status';


export default function TasksPage() {
  return (
    <Guard anyOf={['create:Task', 'create:Task:own', 'read:Task']} what="agent tasks">
      <Tasks />
    </Guard>
  );
}

function Tasks() {
  const { can } = useSession();
  const router = useRouter();
  const name = useMemberNames();
  const list = useLoad(() => ok(api.GET('/v1/tasks', { params: { query: { limit: 50 } } })), []);
  const [prompt, setPrompt] = useState('');
  const [maxSteps, setMaxSteps] = useState<number | string>(20);
  const action = useAction();

  async function run() {
    const task = await action.run(() => ok(api.POST('/v1/tasks', { body: { prompt, maxSteps: Number(maxSteps) || undefined } })));
    if (task) router.push(`/tasks/${task.id}`);
  }

  return (
    <Stack>
      <PageHeader title="Tasks" description="Run an agent task and follow every step and decision live." />
      {can('create:Task', { own: true }) && (
        <Card withBorder>
          <Stack>
            <Title order={2} size="h4">
              Run a task
            </Title>
            <Textarea label="What should the agent do?" autosize minRows={3} value={prompt} onChange={(e) => setPrompt(e.currentTarget.value)} maxLength={20000} />
            <NumberInput label="Most steps" min={1} max={200} value={maxSteps} onChange={setMaxSteps} w={160} />
            <ActionError error={action.error} />
            <Group>
              <Button onClick={run} loading={action.busy} disabled={!prompt.trim()}>
                Run task
              </Button>
            </Group>
          </Stack>
        </Card>
      )}
      <Loaded load={list} what="tasks">
        {(page) =>
          page.items.length === 0 ? (
            <Text c="dark.6">No tasks yet.</Text>
          ) : (
            <Table data-testid="task-list">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Task</Table.Th>
                  <Table.Th>State</Table.Th>
                  <Table.Th>Owner</Table.Th>
                  <Table.Th>Steps</Table.Th>
                  <Table.Th>Cost</Table.Th>
                  <Table.Th>Created</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {page.items.map((t) => (
                  <Table.Tr key={t.id}>
                    <Table.Td>
                      <Anchor component={Link} href={`/tasks/${t.id}`}>
                        {t.id.slice(0, 8)}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>
                      <Badge color={STATE_COLOR[t.state] ?? 'gray.9'}>{t.state.replace('_', ' ')}</Badge>
                    </Table.Td>
                    <Table.Td>{name(t.userId)}</Table.Td>
                    <Table.Td>
                      {t.steps} / {t.maxSteps}
                    </Table.Td>
                    <Table.Td>{fmtUsd(t.usage.costUsd)}</Table.Td>
                    <Table.Td>{fmtDate(t.createdAt)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )
        }
      </Loaded>
    </Stack>
  );
}
