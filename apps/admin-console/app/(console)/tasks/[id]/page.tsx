'use client';

import { Alert, Badge, Button, Card, Code, Group, SegmentedControl, Stack, Table, Text, Textarea, Timeline, Title } from '@mantine/core';
import Link from 'next/link';
import { useParams } from 'next/navigation';
import { useEffect, useRef, useState } from 'react';
import { ActionError, errorText, fmtDate, fmtUsd, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';
import { readSse } from '@/lib/sse';
import { useSession } from '@/components/session';
import { STATE_COLOR } from '@/components/status';

type TaskEvent = { seq: number; kind: string; at: string; [k: string]: unknown };
const LIVE = new Set(['queued', 'running']);

const RATABLE = new Set(['completed', 'failed', 'cancelled', 'in_review']);

export default function TaskPage() {
  const { id } = useParams<{ id: string }>();
  const { session } = useSession();
  const task = useLoad(() => ok(api.GET('/v1/tasks/{id}', { params: { path: { id } } })), [id]);
  const [events, setEvents] = useState<TaskEvent[]>([]);
  const [streamError, setStreamError] = useState<string | null>(null);
  const [following, setFollowing] = useState(false);
  const last = useRef(0);
  const cancel = useAction();
  const state = task.data?.state;

  // Follow the task live: read its events, and reconnect from the last one while it still runs.
  useEffect(() => {
    if (!state) return;
    const ctrl = new AbortController();
    let stopped = false;
    (async () => {
      setFollowing(true);
      for (let round = 0; !stopped && round < 1000; round++) {
        try {
          await readSse(
            `/v1/tasks/${id}/events?after=${last.current}&follow=true`,
            (e) => {
              const data = JSON.parse(e.data) as TaskEvent;
              if (data.seq <= last.current) return;
              last.current = data.seq;
              setEvents((prev) => [...prev, data]);
            },
            ctrl.signal,
          );
          setStreamError(null);
        } catch (e) {
          if (ctrl.signal.aborted) return;
          setStreamError(errorText(e));
        }
        // The stream ends when the task stops or waits for a person: look at its state again.
        const fresh = await ok(api.GET('/v1/tasks/{id}', { params: { path: { id } } })).catch(() => null);
        if (stopped) return;
        if (fresh) task.setData(fresh);
        if (!fresh || !LIVE.has(fresh.state)) {
          if (fresh?.state === 'awaiting_approval' || fresh?.state === 'in_review') await new Promise((r) => setTimeout(r, 1500));
          else break;
        }
      }
      setFollowing(false);
    })();
    return () => {
      stopped = true;
      ctrl.abort();
    };
    // Reconnect only for a new task, not on every state change this loop itself makes.
  }, [id, !!state]);

  return (
    <Stack>
      <PageHeader title={`Task ${id.slice(0, 8)}`} description={<Link href="/tasks">All tasks</Link>} />
      <Loaded load={task} what="this task">
        {(t) => (
          <Card withBorder>
            <Group justify="space-between">
              <Group>
                <Badge size="lg" color={STATE_COLOR[t.state] ?? 'gray.9'} data-testid="task-state">
                  {t.state.replace('_', ' ')}
                </Badge>
                {following && <Text size="sm" c="dark.6">following live…</Text>}
              </Group>
              {(t.state === 'queued' || t.state === 'running' || t.state === 'awaiting_approval') && (
                <Button variant="outline" color="red.9" loading={cancel.busy} onClick={() => cancel.run(() => ok(api.POST('/v1/tasks/{id}/cancel', { params: { path: { id } } })).then(task.setData))}>
                  Cancel task
                </Button>
              )}
            </Group>
            <ActionError error={cancel.error} />
            <Table variant="vertical" mt="sm">
              <Table.Tbody>
                <Table.Tr>
                  <Table.Th w={160}>Model</Table.Th>
                  <Table.Td>
                    {t.model ?? '—'}
                    {t.offlineModel ? ' (offline demo model)' : ''}
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Steps</Table.Th>
                  <Table.Td>
                    {t.steps} of {t.maxSteps}, {t.turns} model turns
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Usage</Table.Th>
                  <Table.Td>
                    {t.usage.inputTokens} in / {t.usage.outputTokens} out tokens · {fmtUsd(t.usage.costUsd)}
                  </Table.Td>
                </Table.Tr>
                <Table.Tr>
                  <Table.Th>Started / finished</Table.Th>
                  <Table.Td>
                    {fmtDate(t.startedAt)} / {fmtDate(t.finishedAt)}
                  </Table.Td>
                </Table.Tr>
              </Table.Tbody>
            </Table>
            {t.state === 'awaiting_approval' && (
              <Alert color="orange" variant="light" mt="sm">
                A Watched action waits for an approver. <Link href="/approvals">Open the approvals inbox</Link>
              </Alert>
            )}
            {t.error && (
              <Alert color="red" variant="light" mt="sm" title={t.error.code}>
                {t.error.message}
              </Alert>
            )}
          </Card>
        )}
      </Loaded>
      {task.data && RATABLE.has(task.data.state) && task.data.userId === session.user.id && <RateTask id={id} current={task.data.rating} />}
      <Card withBorder>
        <Title order={2} size="h4" mb="sm">
          Steps and decisions
        </Title>
        {streamError && (
          <Text c="red.9" role="alert">
            {streamError}
          </Text>
        )}
        {events.length === 0 ? (
          <Text c="dark.6">No events yet.</Text>
        ) : (
          <Timeline bulletSize={14} lineWidth={2} data-testid="task-events">
            {events.map((e) => (
              <Timeline.Item key={e.seq} title={<EventTitle e={e} />}>
                <Text size="xs" c="dark.6">
                  {fmtDate(e.at)}
                </Text>
                <EventBody e={e} />
              </Timeline.Item>
            ))}
          </Timeline>
        )}
      </Card>
    </Stack>
  );
}

function EventTitle({ e }: { e: TaskEvent }) {
  if (e.kind === 'action') {
    const level = typeof e.level === 'string' ? e.level : null;
    return (
      <Text fw={600} size="sm">
        Step {String(e.step ?? '')}: {String(e.connector)} · {String(e.tool)} {level && <Badge size="sm" color={level === 'forbidden' ? 'red.9' : level === 'watched' ? 'orange.9' : 'gray.9'}>{level}</Badge>}{' '}
        <Badge size="sm" variant="outline" color="dark.6">
          {String(e.status)}
        </Badge>
      </Text>
    );
  }
  if (e.kind === 'state') return <Text fw={600} size="sm">State: {String(e.state ?? '')}</Text>;
  return (
    <Text fw={600} size="sm">
      {e.kind}
    </Text>
  );
}

function EventBody({ e }: { e: TaskEvent }) {
  if (e.kind === 'state') return null;
  if (e.kind === 'action' && typeof e.reason === 'string') return <Text size="sm">{e.reason}</Text>;
  if (typeof e.text === 'string') return <Code block>{e.text.slice(0, 4000)}</Code>;
  const { seq: _s, kind: _k, at: _a, ...rest } = e;
  return Object.keys(rest).length ? <Code block>{JSON.stringify(rest, null, 2).slice(0, 2000)}</Code> : null;
}

const RATING_LABEL = ['', 'poor', 'weak', 'fair', 'good', 'excellent'];

/** The employee who ran a finished task rates it 1–5 (the pilot metrics' satisfaction); a new rating replaces theirs. */
function RateTask({ id, current }: { id: string; current: number | null }) {
  const [rating, setRating] = useState(current ? String(current) : '');
  const [comment, setComment] = useState('');
  const [saved, setSaved] = useState<Out<'rateTask'> | null>(null);
  const action = useAction();
  async function save() {
    const res = await action.run(() => ok(api.PUT('/v1/tasks/{id}/rating', { params: { path: { id } }, body: { rating: Number(rating), ...(comment.trim() ? { comment: comment.trim() } : {}) } })));
    if (res) setSaved(res);
  }
  return (
    <Card withBorder data-testid="task-rating">
      <Title order={2} size="h4" mb="xs">
        How well did the agent do this work?
      </Title>
      <Stack gap="xs">
        <SegmentedControl
          aria-label="Rating from 1 (poor) to 5 (excellent)"
          w="fit-content"
          value={rating}
          onChange={setRating}
          data={[1, 2, 3, 4, 5].map((n) => ({ value: String(n), label: `${n} ${RATING_LABEL[n]}` }))}
        />
        <Textarea label="Comment (optional)" value={comment} onChange={(e) => setComment(e.currentTarget.value)} maxLength={1000} autosize minRows={2} />
        <Group>
          <Button onClick={save} disabled={!rating} loading={action.busy}>
            Save rating
          </Button>
          {!saved && current && (
            <Text size="sm" c="dark.6" data-testid="task-rating-current">
              Your rating: {current} of 5 ({RATING_LABEL[current]}). Rate again to replace it.
            </Text>
          )}
          {saved && (
            <Text size="sm" c="green.9" data-testid="task-rating-saved">
              Saved: {saved.rating} of 5 ({RATING_LABEL[saved.rating]}). Rate again to replace it.
            </Text>
          )}
        </Group>
        <ActionError error={action.error} />
      </Stack>
    </Card>
  );
}
