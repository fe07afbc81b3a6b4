'use client';

import { Alert, Anchor, Badge, Button, Card, Checkbox, Group, NativeSelect, Stack, Table, Text, TextInput } from '@mantine/core';
import Link from 'next/link';
import { useState } from 'react';
import { useSession } from '@/components/session';
import { ActionError, fmtDate, fmtPct, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type Out } from '@/lib/client';

type Rec = Out<'listTrustRecommendations'>['items'][number];
const LEVEL_COLOR: Record<string, string> = { autonomous: 'green.9', batched: 'blue.9', watched: 'orange.9', forbidden: 'red.9' };
const scopeText = (s: Rec['scope']) => (s.type === 'org' ? 'whole org' : `workflow ${s.id}`);

export default function TuningPage() {
  return (
    <Guard anyOf={['create:Policy', 'read:AuditEvent']} what="the trust-tuning recommendations">
      <Tuning />
    </Guard>
  );
}

function Tuning() {
  const { can } = useSession();
  const [days, setDays] = useState(90);
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [note, setNote] = useState('');
  const [made, setMade] = useState<Out<'draftFromTrustRecommendations'> | null>(null);
  const list = useLoad(() => ok(api.GET('/v1/trust-recommendations', { params: { query: { days } } })), [days]);
  const action = useAction();
  const editable = can('create:Policy');

  function toggle(key: string, on: boolean) {
    const next = new Set(chosen);
    if (on) next.add(key);
    else next.delete(key);
    setChosen(next);
  }

  async function draft() {
    const items = (list.data?.items ?? []).filter((r) => chosen.has(r.key)).map((r) => ({ actionType: r.actionType, scope: r.scope }));
    const res = await action.run(() => ok(api.POST('/v1/trust-recommendations/draft', { body: { items, days, ...(note.trim() ? { note: note.trim() } : {}) } })));
    if (res) {
      setMade(res);
      setChosen(new Set());
    }
  }

  return (
    <Stack>
      <PageHeader
        title="Trust tuning"
        description="From the approvals, reviews and incidents of the period: actions approved almost always and quickly may run on a lower level; rejections, reverts and incidents call for a higher one. Chosen recommendations become a policy draft to review and activate."
      />
      <NativeSelect
        label="Period"
        w={220}
        value={String(days)}
        onChange={(e) => {
          setDays(Number(e.currentTarget.value));
          setChosen(new Set());
        }}
        data={[
          { value: '30', label: 'Last 30 days' },
          { value: '90', label: 'Last 90 days' },
          { value: '180', label: 'Last 180 days' },
          { value: '365', label: 'Last 365 days' },
        ]}
      />
      {made && (
        <Alert color="green" variant="light" title={`Draft version ${made.version} made`} data-testid="tuning-draft-made">
          Review its diff, simulation and replay, then activate it: <Anchor component={Link} href="/policy">open Trust Levels</Anchor>.
        </Alert>
      )}
      <Loaded load={list} what="the recommendations">
        {(r) => (
          <Stack>
            <Text size="sm" c="dark.6">
              Measured against active policy version {r.policyVersion}, {fmtDate(r.generatedAt)}.
            </Text>
            {r.items.length === 0 ? (
              <Card withBorder>
                <Text>No recommendation: the levels fit what approvers and reviewers did in this period.</Text>
              </Card>
            ) : (
              <Table data-testid="recommendations">
                <Table.Thead>
                  <Table.Tr>
                    {editable && <Table.Th w={40}>Pick</Table.Th>}
                    <Table.Th>Action type</Table.Th>
                    <Table.Th>Scope</Table.Th>
                    <Table.Th>Level now → suggested</Table.Th>
                    <Table.Th>Approvals</Table.Th>
                    <Table.Th>Reviews</Table.Th>
                    <Table.Th>Incidents</Table.Th>
                    <Table.Th>Why</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {r.items.map((x) => (
                    <Table.Tr key={x.key}>
                      {editable && (
                        <Table.Td>
                          <Checkbox
                            aria-label={`Put ${x.actionType} (${scopeText(x.scope)}) in the draft`}
                            checked={chosen.has(x.key)}
                            disabled={!x.draftable}
                            onChange={(e) => toggle(x.key, e.currentTarget.checked)}
                          />
                        </Table.Td>
                      )}
                      <Table.Td>{x.actionType}</Table.Td>
                      <Table.Td>{scopeText(x.scope)}</Table.Td>
                      <Table.Td>
                        <Badge color={LEVEL_COLOR[x.currentLevel]}>{x.currentLevel}</Badge> → <Badge color={LEVEL_COLOR[x.suggestedLevel]}>{x.suggestedLevel}</Badge>
                        <Text size="xs" c="dark.6">
                          {x.direction === 'lower' ? 'lower (more trust)' : 'higher (more oversight)'}
                          {x.floor ? ` · floor ${x.floor}` : ''}
                        </Text>
                      </Table.Td>
                      <Table.Td>
                        {x.numbers.approvals.total} ({fmtPct(x.numbers.approvals.approvalRate)} approved
                        {x.numbers.approvals.medianDecisionSeconds !== null ? `, median ${Math.round(x.numbers.approvals.medianDecisionSeconds)} s` : ''})
                      </Table.Td>
                      <Table.Td>
                        {x.numbers.reviews.total} ({fmtPct(x.numbers.reviews.revertRate)} reverted)
                      </Table.Td>
                      <Table.Td>{x.numbers.incidents}</Table.Td>
                      <Table.Td>
                        <Text size="sm">{x.reason}</Text>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
            {editable && r.items.length > 0 && (
              <Group align="flex-end">
                <TextInput label="Why (recorded with the draft)" value={note} onChange={(e) => setNote(e.currentTarget.value)} maxLength={1000} w={360} />
                <Button onClick={draft} disabled={chosen.size === 0} loading={action.busy}>
                  Make a draft of {chosen.size} recommendation{chosen.size === 1 ? '' : 's'}
                </Button>
              </Group>
            )}
            <ActionError error={action.error} />
          </Stack>
        )}
      </Loaded>
    </Stack>
  );
}
