'use client';

import { usePathname, useRouter } from 'next/navigation';
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { Center, Loader, Text } from '@mantine/core';
import { api, ApiError, ok, type Out } from '@/lib/client';

type SessionView = Out<'getSession'>;

interface SessionContextValue {
  session: SessionView;
  /** "read:AuditEvent": granted org-wide. With `own: true`, also when limited to the caller's own records. */
  can(permission: string, opts?: { own?: boolean }): boolean;
  reload(): void;
}

const SessionContext = createContext<SessionContextValue | null>(null);

/** Loads the signed-in session for every console page; sends the browser to sign-in when there is none. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const router = useRouter();
  const pathname = usePathname();
  const [session, setSession] = useState<SessionView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let cancelled = false;
    ok(api.GET('/v1/auth/session'))
      .then((s) => !cancelled && setSession(s))
      .catch((e: unknown) => {
        if (cancelled) return;
        if (e instanceof ApiError && e.problem.status === 401) router.replace(`/login?next=${encodeURIComponent(pathname)}`);
        else setError(e instanceof Error ? e.message : String(e));
      });
    return () => {
      cancelled = true;
    };
  }, [router, pathname, tick]);

  const can = useCallback(
    (permission: string, opts: { own?: boolean } = {}) =>
      !!session && (session.permissions.includes(permission) || (!!opts.own && session.permissions.includes(`${permission}:own`))),
    [session],
  );

  if (error) {
    return (
      <Center h="60vh">
        <Text role="alert" c="red.9">
          Could not load your session: {error}
        </Text>
      </Center>
    );
  }
  if (!session) {
    return (
      <Center h="60vh" aria-busy="true">
        <Loader role="status" aria-label="Loading your session" />
      </Center>
    );
  }
  return <SessionContext.Provider value={{ session, can, reload: () => setTick((t) => t + 1) }}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}
