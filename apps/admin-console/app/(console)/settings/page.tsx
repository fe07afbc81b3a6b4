'use client';

import { Alert, Button, Card, Group, NumberInput, Select, Stack, Switch, Table, Text, TextInput, Title } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useOrg } from '@/components/org';
import { useSession } from '@/components/session';
import { ActionError, Guard, Loaded, PageHeader, useAction, useLoad } from '@/components/ui';
import { api, ok, type In, type Out } from '@/lib/client';

type OrgView = Out<'getOrg'>;

export default function SettingsPage() {
  return (
    <Guard anyOf={['update:Org', 'read:SsoConfig']} what="the organisation's settings">
      <Settings />
    </Guard>
  );
}

function Settings() {
  const { can } = useSession();
  const org = useLoad(() => ok(api.GET('/v1/org')), []);
  return (
    <Stack>
      <PageHeader title="Settings" description="Budgets, approvals, retention, sign-in and notifications for the whole organisation." />
      <Loaded load={org} what="the organisation">
        {(o) => <OrgForm org={o} editable={can('update:Org')} onSaved={org.setData} />}
      </Loaded>
      <Loaded load={org} what="the organisation">
        {(o) => <Domains key={o.domains.join(',')} editable={can('update:Org')} />}
      </Loaded>
      {can('read:SsoConfig') && <Sso />}
      <Loaded load={org} what="the organisation">
        {(o) => <ModelRouting org={o} editable={can('update:Org')} workflowsEditable={can('update:Workflow')} onSaved={org.setData} />}
      </Loaded>
    </Stack>
  );
}

function OrgForm({ org, editable, onSaved }: { org: OrgView; editable: boolean; onSaved(o: OrgView): void }) {
  const { setOrg } = useOrg();
  const [f, setF] = useState(() => ({ ...org, domainsText: org.domains.join(', ') }));
  const [saved, setSaved] = useState(false);
  const action = useAction();
  useEffect(() => setF({ ...org, domainsText: org.domains.join(', ') }), [org]);
  async function save() {
    const body: In<'updateOrg'> = {
      name: f.name,
      domains: f.domainsText
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean),
      requireStepUp: f.requireStepUp,
      auditRetentionMonths: f.auditRetentionMonths,
      approvalTtlSeconds: f.approvalTtlSeconds,
      maxRunningTasks: f.maxRunningTasks,
      notifyWebhookUrl: f.notifyWebhookUrl?.trim() ? f.notifyWebhookUrl.trim() : null,
      automaticStrikes: f.automaticStrikes,
      monthlyBudgetUsd: f.monthlyBudgetUsd,
      userMonthlyBudgetUsd: f.userMonthlyBudgetUsd,
      passwordSignIn: f.passwordSignIn,
    };
    const res = await action.run(() => ok(api.PATCH('/v1/org', { body })));
    if (res) {
      onSaved(res);
      setOrg(res);
      setSaved(true);
    }
  }
  const num = (v: string | number) => (v === '' ? null : Number(v));
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h4">
          Organisation
        </Title>
        <Group grow>
          <TextInput label="Name" value={f.name} disabled={!editable} onChange={(e) => setF({ ...f, name: e.currentTarget.value })} />
          <TextInput label="Email domains (comma separated)" value={f.domainsText} disabled={!editable} onChange={(e) => setF({ ...f, domainsText: e.currentTarget.value })} />
        </Group>
        <Group grow>
          <NumberInput label="Monthly budget for the organisation (USD, empty: none)" min={0} value={f.monthlyBudgetUsd ?? ''} disabled={!editable} onChange={(v) => setF({ ...f, monthlyBudgetUsd: num(v) })} />
          <NumberInput label="Monthly budget per person (USD, empty: none)" min={0} value={f.userMonthlyBudgetUsd ?? ''} disabled={!editable} onChange={(v) => setF({ ...f, userMonthlyBudgetUsd: num(v) })} />
        </Group>
        <Group grow>
          <NumberInput label="Approvals expire after (seconds)" min={60} value={f.approvalTtlSeconds} disabled={!editable} onChange={(v) => setF({ ...f, approvalTtlSeconds: Number(v) })} />
          <NumberInput label="Keep audit events (months)" min={1} value={f.auditRetentionMonths} disabled={!editable} onChange={(v) => setF({ ...f, auditRetentionMonths: Number(v) })} />
          <NumberInput
            label={`Agent tasks running at once (more wait, parked; empty: this deployment's ${org.maxRunningTasksCeiling})`}
            min={1}
            max={org.maxRunningTasksCeiling}
            value={f.maxRunningTasks ?? ''}
            disabled={!editable}
            onChange={(v) => setF({ ...f, maxRunningTasks: num(v) })}
          />
        </Group>
        <TextInput label="Notification webhook (https URL, empty: none)" description="Approval requests are posted signed (x-steward-signature) with the org's webhook signing secret, set in the incident settings first." value={f.notifyWebhookUrl ?? ''} placeholder={!editable && org.notifyWebhookSet ? 'set (its URL is shown to those who may change settings)' : undefined} disabled={!editable} onChange={(e) => setF({ ...f, notifyWebhookUrl: e.currentTarget.value })} />
        <Switch label="Require a fresh second factor for sensitive operations (step-up)" checked={f.requireStepUp} disabled={!editable} onChange={(e) => setF({ ...f, requireStepUp: e.currentTarget.checked })} />
        <Switch label="Confirm violations as strikes automatically" checked={f.automaticStrikes} disabled={!editable} onChange={(e) => setF({ ...f, automaticStrikes: e.currentTarget.checked })} />
        <Switch label="Allow password sign-in (off: single sign-on only)" checked={f.passwordSignIn} disabled={!editable} onChange={(e) => setF({ ...f, passwordSignIn: e.currentTarget.checked })} />
        <ActionError error={action.error} />
        {saved && !action.error && (
          <Text c="green.9" role="status">
            Saved.
          </Text>
        )}
        {editable && (
          <Button w="fit-content" onClick={save} loading={action.busy}>
            Save settings
          </Button>
        )}
      </Stack>
    </Card>
  );
}

/** Each listed domain, whether the org proved it holds it (DNS), and the record that proves it. */
function Domains({ editable }: { editable: boolean }) {
  const list = useLoad(() => ok(api.GET('/v1/org/domains')), []);
  const action = useAction();
  const [checking, setChecking] = useState<string | null>(null);
  async function verify(domain: string) {
    setChecking(domain);
    const res = await action.run(() => ok(api.POST('/v1/org/domains/verify', { body: { domain } })));
    setChecking(null);
    if (res) list.setData(res);
  }
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h4">
          Verified domains
        </Title>
        <Text size="sm">
          Single sign-on and SCIM add people, and sign-ins by email reach your single sign-on, only at a domain the organisation has verified: publish its TXT record in the domain&apos;s DNS, then verify.
        </Text>
        <Loaded load={list} what="the domains">
          {(l) =>
            l.items.length === 0 ? (
              <Text size="sm">No email domains yet: add them above.</Text>
            ) : (
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Domain</Table.Th>
                    <Table.Th>Status</Table.Th>
                    <Table.Th>DNS TXT record</Table.Th>
                    {editable && <Table.Th>Action</Table.Th>}
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {l.items.map((d) => (
                    <Table.Tr key={d.domain} data-testid={`domain-${d.domain}`}>
                      <Table.Td>{d.domain}</Table.Td>
                      <Table.Td>{d.verified ? `Verified ${new Date(d.verifiedAt!).toLocaleDateString()}` : 'Not verified'}</Table.Td>
                      <Table.Td>
                        {d.verified ? (
                          '—'
                        ) : (
                          <Stack gap={2}>
                            <Text size="xs" ff="monospace">
                              {d.record.name}
                            </Text>
                            <Text size="xs" ff="monospace">
                              {d.record.value}
                            </Text>
                          </Stack>
                        )}
                      </Table.Td>
                      {editable && (
                        <Table.Td>
                          {!d.verified && (
                            <Button size="xs" variant="light" loading={checking === d.domain} onClick={() => verify(d.domain)} aria-label={`Verify ${d.domain}`}>
                              Verify
                            </Button>
                          )}
                        </Table.Td>
                      )}
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )
          }
        </Loaded>
        <ActionError error={action.error} />
      </Stack>
    </Card>
  );
}

function Sso() {
  const { can } = useSession();
  const sso = useLoad(async () => {
    try {
      return await ok(api.GET('/v1/org/sso'));
    } catch (e) {
      if (e instanceof Error && 'problem' in e && (e as { problem: { status: number } }).problem.status === 404) return null;
      throw e;
    }
  }, []);
  const [form, setForm] = useState({ issuer: '', clientId: '', clientSecret: '', enabled: false });
  const action = useAction();
  useEffect(() => {
    if (sso.data) setForm({ issuer: sso.data.issuer, clientId: sso.data.clientId, clientSecret: '', enabled: sso.data.enabled });
  }, [sso.data]);
  const editable = can('update:SsoConfig');
  async function save() {
    const res = await action.run(() =>
      ok(api.PUT('/v1/org/sso', { body: { issuer: form.issuer.trim(), clientId: form.clientId.trim(), enabled: form.enabled, ...(form.clientSecret ? { clientSecret: form.clientSecret } : {}) } })),
    );
    if (res) sso.setData(res);
  }
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h4">
          Single sign-on (OpenID Connect)
        </Title>
        <Loaded load={sso} what="the SSO settings">
          {(s) => (
            <>
              {s ? (
                <Text size="sm">
                  Redirect URI for your identity provider: <code>{s.redirectUri}</code>
                  {s.verifiedAt ? ' · verified' : ' · not yet verified by a sign-in'}
                </Text>
              ) : (
                <Alert color="gray" variant="light">
                  Not configured.
                </Alert>
              )}
            </>
          )}
        </Loaded>
        <Group grow>
          <TextInput label="Issuer URL" value={form.issuer} disabled={!editable} onChange={(e) => setForm({ ...form, issuer: e.currentTarget.value })} />
          <TextInput label="Client id" value={form.clientId} disabled={!editable} onChange={(e) => setForm({ ...form, clientId: e.currentTarget.value })} />
          <TextInput label="Client secret (write-only)" type="password" autoComplete="off" value={form.clientSecret} disabled={!editable} onChange={(e) => setForm({ ...form, clientSecret: e.currentTarget.value })} />
        </Group>
        <Switch label="Enabled" checked={form.enabled} disabled={!editable} onChange={(e) => setForm({ ...form, enabled: e.currentTarget.checked })} />
        <ActionError error={action.error} />
        {editable && (
          <Button w="fit-content" onClick={save} loading={action.busy} disabled={!form.issuer.trim() || !form.clientId.trim()}>
            Save SSO settings
          </Button>
        )}
      </Stack>
    </Card>
  );
}

const TIERS = [
  { value: 'quick', label: 'Quick (Haiku): short, repetitive work' },
  { value: 'standard', label: 'Standard (Sonnet)' },
  { value: 'complex', label: 'Complex (Opus): long reasoning' },
];
type Tier = 'quick' | 'standard' | 'complex';

/** Which model serves the org's tasks, and each workflow's (the deployment names the model of each tier). */
function ModelRouting({ org, editable, workflowsEditable, onSaved }: { org: OrgView; editable: boolean; workflowsEditable: boolean; onSaved(o: OrgView): void }) {
  const workflows = useLoad(() => ok(api.GET('/v1/workflows', { params: { query: { limit: 200 } } })), []);
  const action = useAction();
  const [saved, setSaved] = useState<string | null>(null);
  async function setOrgTier(tier: Tier) {
    const res = await action.run(() => ok(api.PATCH('/v1/org', { body: { modelTier: tier } })));
    if (res) {
      onSaved(res);
      setSaved('The organisation\'s model tier is saved.');
    }
  }
  async function setWorkflowTier(id: string, key: string, tier: Tier | null) {
    const res = await action.run(() => ok(api.PATCH('/v1/workflows/{id}', { params: { path: { id } }, body: { modelTier: tier } })));
    if (res) {
      workflows.reload();
      setSaved(`The model tier of ${key} is saved.`);
    }
  }
  return (
    <Card withBorder>
      <Stack>
        <Title order={2} size="h4">
          Model routing
        </Title>
        <Text size="sm" c="dark.6">
          Tasks use the organisation&apos;s tier unless their workflow sets its own; a task may ask for another model only where its workflow sets none. The deployment names the model of each tier and may pin a workflow to a model (that wins).
        </Text>
        <Select label="Model tier of the organisation's tasks" data={TIERS} value={org.modelTier} disabled={!editable} allowDeselect={false} onChange={(v) => v && setOrgTier(v as Tier)} w={420} />
        <Loaded load={workflows} what="the workflows">
          {(w) =>
            w.items.length === 0 ? (
              <Text size="sm">No workflows yet.</Text>
            ) : (
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Workflow</Table.Th>
                    <Table.Th>Model tier</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {w.items.map((x) => (
                    <Table.Tr key={x.id}>
                      <Table.Td>
                        {x.name} <Text span size="xs" c="dark.6">({x.key})</Text>
                      </Table.Td>
                      <Table.Td>
                        <Select
                          aria-label={`Model tier of ${x.key}`}
                          data={[{ value: 'org', label: "The organisation's" }, ...TIERS]}
                          value={x.modelTier ?? 'org'}
                          disabled={!workflowsEditable}
                          allowDeselect={false}
                          onChange={(v) => v && setWorkflowTier(x.id, x.key, v === 'org' ? null : (v as Tier))}
                          data-testid={`tier-${x.key}`}
                        />
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )
          }
        </Loaded>
        <ActionError error={action.error} />
        {saved && !action.error && (
          <Text c="green.9" role="status">
            {saved}
          </Text>
        )}
      </Stack>
    </Card>
  );
}
