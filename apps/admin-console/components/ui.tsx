'use client';

import { Alert, Button, Center, Group, Loader, Modal, PinInput, Stack, Text, Title } from '@mantine/core';
import { createContext, useCallback, useContext, useEffect, useRef, useState, type DependencyList, type ReactNode } from 'react';
import { api, ApiError, isForbidden, ok } from '@/lib/client';
import { useSession } from './session';

export interface Load<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
  setData(d: T): void;
}

/** Loads data for a page; `reload()` fetches again. Stale answers (deps changed meanwhile) are dropped. */
export function useLoad<T>(fn: () => Promise<T>, deps: DependencyList): Load<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    let current = true;
    setLoading(true);
    fnRef
      .current()
      .then((d) => current && (setData(d), setError(undefined)))
      .catch((e: unknown) => current && setError(e))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [...deps, tick]);
  return { data, error, loading, reload: useCallback(() => setTick((t) => t + 1), []), setData };
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The clear answer a person gets where their role does not reach: never a broken page. */
export function NotPermitted({ what }: { what?: string }) {
  return (
    <Alert color="orange" variant="light" title="Not permitted" role="alert" data-testid="not-permitted">
      Your role in this organisation does not allow you to see {what ?? 'this page'}. Ask an owner or admin if you need access.
    </Alert>
  );
}

export function ErrorAlert({ error, what }: { error: unknown; what?: string }) {
  if (isForbidden(error)) return <NotPermitted what={what} />;
  return (
    <Alert color="red" variant="light" title="Something went wrong" role="alert">
      {errorText(error)}
    </Alert>
  );
}

/** Loader, error (or "not permitted") or the data. */
export function Loaded<T>({ load, what, children }: { load: Load<T>; what?: string; children: (data: T) => ReactNode }) {
  if (load.error !== undefined && load.data === undefined) return <ErrorAlert error={load.error} what={what} />;
  if (load.data === undefined)
    return (
      <Center p="lg">
        <Loader size="sm" role="status" aria-label={`Loading ${what ?? ''}`.trim()} />
      </Center>
    );
  return <>{children(load.data)}</>;
}

/** Renders its children only for callers holding one of the permissions ("read:AuditEvent"), else "not permitted". */
export function Guard({ anyOf, what, children }: { anyOf: string[]; what: string; children: ReactNode }) {
  const { can } = useSession();
  if (!anyOf.some((p) => can(p))) return <NotPermitted what={what} />;
  return <>{children}</>;
}

export function PageHeader({ title, description, actions }: { title: string; description?: ReactNode; actions?: ReactNode }) {
  return (
    <Group justify="space-between" align="flex-start" mb="md">
      <Stack gap={4}>
        <Title order={1} size="h2">
          {title}
        </Title>
        {description && <Text c="dimmed">{description}</Text>}
      </Stack>
      {actions}
    </Group>
  );
}

export const fmtDate = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '—');
export const fmtUsd = (n: number | null | undefined) => (n === null || n === undefined ? '—' : `$${n.toFixed(2)}`);
export const short = (id: string | null | undefined) => (id ? id.slice(0, 8) : '—');
export const fmtPct = (r: number | null | undefined) => (r === null || r === undefined ? '—' : `${Math.round(r * 1000) / 10}%`);
/** Badge colours (dark shades: readable text contrast) for severities, low to critical. */
export const SEVERITY_COLOR: Record<string, string> = { low: 'gray.9', medium: 'orange.9', high: 'red.9', critical: 'red.9' };
/** The time a UUIDv7 (every Steward id) was made, in ms, or null for another kind of id. */
export function uuidTime(id: string): number | null {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7/i.test(id)) return null;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

type StepUp = <T>(fn: () => Promise<T>) => Promise<T>;
const StepUpContext = createContext<StepUp>((fn) => fn());

/**
 * Runs an operation; when the org requires a fresh second factor (problem code step_up_required),
 * asks for the authenticator code, steps the session up and runs the operation again.
 */
export function StepUpProvider({ children }: { children: ReactNode }) {
  const [pending, setPending] = useState<{ resolve: (ok: boolean) => void } | null>(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const withStepUp: StepUp = useCallback(async (fn) => {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ApiError && e.problem.code === 'step_up_required')) throw e;
      const confirmed = await new Promise<boolean>((resolve) => setPending({ resolve }));
      if (!confirmed) throw e;
      return fn();
    }
  }, []);

  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      await ok(api.POST('/v1/auth/step-up', { body: { totpCode: code } }));
      pending?.resolve(true);
      setPending(null);
      setCode('');
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <StepUpContext.Provider value={withStepUp}>
      {children}
      <Modal
        opened={pending !== null}
        onClose={() => {
          pending?.resolve(false);
          setPending(null);
        }}
        title="Confirm with your second factor"
      >
        <Stack>
          <Text>Your organisation requires a fresh authenticator code for this operation.</Text>
          <PinInput length={6} type="number" oneTimeCode value={code} onChange={setCode} aria-label="Authenticator code" />
          {error && (
            <Text c="red.9" role="alert">
              {error}
            </Text>
          )}
          <Button onClick={confirm} loading={busy} disabled={code.length !== 6}>
            Confirm
          </Button>
        </Stack>
      </Modal>
    </StepUpContext.Provider>
  );
}

export function useStepUp(): StepUp {
  return useContext(StepUpContext);
}

/** A mutation with its busy and error state; the error shows where the action is. */
export function useAction() {
  const withStepUp = useStepUp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(
    async <T,>(fn: () => Promise<T>): Promise<T | undefined> => {
      setBusy(true);
      setError(undefined);
      try {
        return await withStepUp(fn);
      } catch (e) {
        setError(e);
        return undefined;
      } finally {
        setBusy(false);
      }
    },
    [withStepUp],
  );
  return { busy, error, run, clear: () => setError(undefined) };
}

export function ActionError({ error }: { error: unknown }) {
  if (error === undefined) return null;
  return (
    <Text c="red.9" role="alert" size="sm">
      {errorText(error)}
    </Text>
  );
}
