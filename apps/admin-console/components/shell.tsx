'use client';

import { AppShell, Burger, Button, Group, NavLink, ScrollArea, Select, Text } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import Link from 'next/link';
import { usePathname, useRouter } from 'next/navigation';
import { type ReactNode, useEffect, useState } from 'react';
import { api } from '@/lib/client';
import { ApiStatusLine, useHealth } from './health';
import { KillSwitch, OrgProvider } from './org';
import { SessionProvider, useSession } from './session';
import { errorText, StepUpProvider } from './ui';

/** Every page of the console, and who sees it in the navigation (a page checks again itself). */
export const NAV: { href: string; label: string; anyOf: string[] }[] = [
  { href: '/', label: 'Overview', anyOf: [] },
  { href: '/tasks', label: 'Tasks', anyOf: ['create:Task', 'create:Task:own', 'read:Task'] },
  { href: '/approvals', label: 'Approvals', anyOf: ['decide:Approval', 'read:Approval'] },
  { href: '/reviews', label: 'Reviews', anyOf: ['decide:Review', 'read:Review'] },
  { href: '/policy', label: 'Trust Levels', anyOf: ['create:Policy', 'read:AuditEvent'] },
  { href: '/workflows', label: 'Workflows', anyOf: ['update:Workflow', 'create:Policy', 'read:AuditEvent'] },
  { href: '/audit', label: 'Audit trail', anyOf: ['read:AuditEvent'] },
  { href: '/reports', label: 'Anomaly reports', anyOf: ['read:AnomalyReport'] },
  { href: '/incidents', label: 'Incidents', anyOf: ['read:Incident'] },
  { href: '/violations', label: 'Violations & sanctions', anyOf: ['read:Violation', 'read:Sanction'] },
  { href: '/tuning', label: 'Trust tuning', anyOf: ['create:Policy', 'read:AuditEvent'] },
  { href: '/pilot', label: 'Pilot metrics', anyOf: ['update:Workflow', 'read:AuditEvent'] },
  { href: '/people', label: 'Members & roles', anyOf: ['read:Member'] },
  { href: '/connectors', label: 'Connectors', anyOf: ['update:Connector', 'read:Credential'] },
  { href: '/settings', label: 'Settings', anyOf: ['update:Org', 'read:SsoConfig'] },
  { href: '/account', label: 'Account', anyOf: [] },
];

/**
 * For a person in several orgs: move this session to another of them (the API opens a session
 * there and ends this one), then start over on its overview. Hidden for a person in one org.
 */
function OrgSwitcher({ current }: { current: string }) {
  const [orgs, setOrgs] = useState<{ slug: string; active: boolean }[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api.GET('/v1/auth/orgs').then((r) => live && r.data && setOrgs(r.data.items), () => undefined);
    return () => {
      live = false;
    };
  }, []);
  if (orgs.length < 2) return null;
  async function switchTo(slug: string) {
    setError(null);
    const r = await api.POST('/v1/auth/switch-org', { body: { org: slug } });
    if (r.error) setError(errorText(r.error));
    else window.location.assign('/');
  }
  return (
    <Group gap={4} wrap="nowrap">
      <Select
        size="xs"
        aria-label="Organisation"
        data={orgs.map((o) => ({ value: o.slug, label: o.active ? o.slug : `${o.slug} (suspended)`, disabled: !o.active }))}
        value={current}
        allowDeselect={false}
        onChange={(v) => v && v !== current && switchTo(v)}
        w={160}
        data-testid="org-switcher"
      />
      {error && (
        <Text size="xs" c="red.9" role="alert">
          {error}
        </Text>
      )}
    </Group>
  );
}

function Shell({ children }: { children: ReactNode }) {
  const [opened, { toggle }] = useDisclosure();
  const pathname = usePathname();
  const router = useRouter();
  const { session } = useSession();
  const health = useHealth();
  const perms = new Set(session.permissions);
  const visible = NAV.filter((n) => n.anyOf.length === 0 || n.anyOf.some((p) => perms.has(p)));

  async function signOut() {
    await api.POST('/v1/auth/logout').catch(() => undefined);
    router.replace('/login');
  }

  return (
    <AppShell header={{ height: 60 }} navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Text component={Link} href="/" fw={700} size="lg" c="dark.9" td="none">
              Steward
            </Text>
            <Text size="sm" c="dark.6" visibleFrom="md" data-testid="org-name">
              {session.org.name}
            </Text>
            {session.kind === 'session' && <OrgSwitcher current={session.org.slug} />}
          </Group>
          <Group wrap="nowrap" gap="sm">
            {health.kind === 'up' && health.health.mode === 'embedded' && (
              <Text size="xs" c="orange.9" fw={600} visibleFrom="lg">
                Development mode: embedded database
              </Text>
            )}
            <KillSwitch compact />
            <Text size="sm" c="dark.6" visibleFrom="md" data-testid="signed-in-as">
              {session.user.email}
            </Text>
            <Button size="xs" variant="default" onClick={signOut}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        <AppShell.Section grow component={ScrollArea}>
          <nav>
            {visible.map((n) => (
              <NavLink
                key={n.href}
                component={Link}
                href={n.href}
                label={n.label}
                active={n.href === '/' ? pathname === '/' : pathname.startsWith(n.href)}
                aria-current={(n.href === '/' ? pathname === '/' : pathname.startsWith(n.href)) ? 'page' : undefined}
              />
            ))}
          </nav>
        </AppShell.Section>
        <AppShell.Section>
          <Text size="xs" c="dark.6" p="xs">
            <ApiStatusLine />
          </Text>
        </AppShell.Section>
      </AppShell.Navbar>
      <AppShell.Main>
        {children}
      </AppShell.Main>
    </AppShell>
  );
}

export function ConsoleShell({ children }: { children: ReactNode }) {
  return (
    <SessionProvider>
      <OrgProvider>
        <StepUpProvider>
          <Shell>{children}</Shell>
        </StepUpProvider>
      </OrgProvider>
    </SessionProvider>
  );
}
