'use client';

import { Badge, Button, Group, Modal, Stack, Text, Textarea } from '@mantine/core';
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, ok, type Out } from '@/lib/client';
import { useSession } from './session';
import { ActionError, fmtDate, useAction } from './ui';

type OrgView = Out<'getOrg'>;
interface OrgContextValue {
  org: OrgView | null;
  setOrg(o: OrgView): void;
  refresh(): void;
}
const OrgContext = createContext<OrgContextValue>({ org: null, setOrg: () => undefined, refresh: () => undefined });

/** The org's settings and kill-switch state, polled so the header is never stale for long. */
export function OrgProvider({ children }: { children: ReactNode }) {
  const { can } = useSession();
  const [org, setOrg] = useState<OrgView | null>(null);
  const readable = can('read:Org');
  const refresh = useCallback(() => {
    if (readable) ok(api.GET('/v1/org')).then(setOrg, () => undefined);
  }, [readable]);
  useEffect(() => {
    refresh();
    const timer = setInterval(refresh, 15_000);
    return () => clearInterval(timer);
  }, [refresh]);
  return <OrgContext.Provider value={{ org, setOrg, refresh }}>{children}</OrgContext.Provider>;
}

export function useOrg(): OrgContextValue {
  return useContext(OrgContext);
}

/** The kill switch: its state always visible; pausing or resuming asks for confirmation and a reason. */
export function KillSwitch({ compact = false }: { compact?: boolean }) {
  const { can } = useSession();
  const { org, setOrg } = useOrg();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const action = useAction();
  if (!org) return null;
  const paused = org.agentsPausedAt !== null;
  const allowed = can('pause_agents:Org');

  async function toggle() {
    const path = paused ? '/v1/org/agents/resume' : '/v1/org/agents/pause';
    const next = await action.run(() => ok(api.POST(path, { body: reason.trim() ? { reason: reason.trim() } : {} })));
    if (next) {
      setOrg(next);
      setOpen(false);
      setReason('');
    }
  }

  return (
    <Group gap="xs" data-testid="kill-switch">
      <Badge color={paused ? 'red.9' : 'green.9'} variant="filled" size="lg" data-testid="kill-switch-state" title={paused ? `Paused ${fmtDate(org.agentsPausedAt)}` : undefined}>
        {paused ? 'Agents paused' : 'Agents running'}
      </Badge>
      {allowed && (
        <Button size={compact ? 'xs' : 'sm'} color={paused ? 'green.9' : 'red.9'} variant="outline" onClick={() => setOpen(true)}>
          {paused ? 'Resume agents' : 'Pause all agents'}
        </Button>
      )}
      <Modal opened={open} onClose={() => setOpen(false)} title={paused ? 'Resume every agent of the organisation?' : 'Pause every agent of the organisation?'}>
        <Stack>
          <Text>
            {paused
              ? 'Agent tasks may start and continue again.'
              : 'Every running agent task stops at its next step and no new task starts until an owner or security resumes them.'}
          </Text>
          <Textarea label="Reason (recorded in the audit trail)" value={reason} onChange={(e) => setReason(e.currentTarget.value)} maxLength={500} />
          <ActionError error={action.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOpen(false)}>
              Cancel
            </Button>
            <Button color={paused ? 'green.9' : 'red.9'} onClick={toggle} loading={action.busy}>
              {paused ? 'Yes, resume agents' : 'Yes, pause all agents'}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Group>
  );
}
