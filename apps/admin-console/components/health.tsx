'use client';

import Link from 'next/link';
import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { getHealth, problemMessage, type Health } from '@/lib/api';

export type HealthState =
  | { kind: 'loading' }
  | { kind: 'up'; health: Health }
  | { kind: 'down'; message: string };

const HealthContext = createContext<HealthState>({ kind: 'loading' });

/** Polls the API's /healthz (through the console's /api proxy) and shares the answer. */
export function HealthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<HealthState>({ kind: 'loading' });

  useEffect(() => {
    let cancelled = false;
    const check = async () => {
      const res = await getHealth();
      if (cancelled) return;
      setState(res.ok ? { kind: 'up', health: res.data } : { kind: 'down', message: problemMessage(res.problem) });
    };
    void check();
    const timer = setInterval(() => void check(), 30_000);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, []);

  return <HealthContext.Provider value={state}>{children}</HealthContext.Provider>;
}

export function useHealth(): HealthState {
  return useContext(HealthContext);
}

export function isHealthy(state: HealthState): boolean {
  return state.kind === 'up' && state.health.status === 'ok';
}

/** One line: "API ok · v0.1.0 · embedded database", "Checking API…" or why it is unreachable. */
export function ApiStatusLine() {
  const state = useHealth();
  const dot = state.kind === 'loading' ? 'dot-pending' : isHealthy(state) ? 'dot-ok' : 'dot-bad';
  return (
    <span className="api-status" data-testid="api-status" aria-live="polite">
      <span className={`dot ${dot}`} aria-hidden="true" />
      {state.kind === 'loading' && 'Checking API…'}
      {state.kind === 'up' &&
        `API ${isHealthy(state) ? 'ok' : state.health.status}` +
          (state.health.version ? ` · v${state.health.version}` : '') +
          (state.health.mode ? ` · ${state.health.mode} database` : '')}
      {state.kind === 'down' && `API unreachable — ${state.message}`}
    </span>
  );
}

/** The page header, with the development-mode banner above it when the API runs embedded. */
export function TopBar() {
  const state = useHealth();
  const embedded = state.kind === 'up' && state.health.mode === 'embedded';
  return (
    <>
      {embedded && (
        <div className="banner banner-warning" role="alert" data-testid="embedded-banner">
          Development mode: embedded database — not for production
        </div>
      )}
      <header className="topbar">
        <Link className="brand" href="/">
          Steward
        </Link>
        <ApiStatusLine />
      </header>
    </>
  );
}
