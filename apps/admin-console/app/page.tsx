'use client';

import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useEffect, useState } from 'react';
import { ApiStatusLine } from '@/components/health';
import { getSession, logout, problemMessage, type Session } from '@/lib/api';

type State =
  | { kind: 'loading' }
  | { kind: 'signed-in'; session: Session }
  | { kind: 'signed-out' }
  | { kind: 'error'; message: string };

export default function DashboardPage() {
  const router = useRouter();
  const [state, setState] = useState<State>({ kind: 'loading' });
  const [signingOut, setSigningOut] = useState(false);
  const [signOutError, setSignOutError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    void getSession().then((res) => {
      if (cancelled) return;
      if (res.ok) setState({ kind: 'signed-in', session: res.data });
      else if (res.problem.status === 401) setState({ kind: 'signed-out' });
      else setState({ kind: 'error', message: problemMessage(res.problem) });
    });
    return () => {
      cancelled = true;
    };
  }, []);

  useEffect(() => {
    if (state.kind === 'signed-out') router.replace('/login');
  }, [state.kind, router]);

  async function onSignOut() {
    setSigningOut(true);
    setSignOutError(null);
    const res = await logout();
    // 401 means the session was already gone: that is signed out too.
    if (res.ok || res.problem.status === 401) {
      setState({ kind: 'signed-out' });
      return;
    }
    setSigningOut(false);
    setSignOutError(problemMessage(res.problem));
  }

  return (
    <>
      <section className="card">
        <h2>API status</h2>
        <p>
          <ApiStatusLine />
        </p>
      </section>

      {state.kind === 'loading' && <p className="muted">Loading your session…</p>}

      {state.kind === 'signed-out' && (
        <p className="muted">
          You are not signed in. <Link href="/login">Sign in</Link>
        </p>
      )}

      {state.kind === 'error' && (
        <section className="card">
          <p className="error" role="alert">
            Could not load your session: {state.message}
          </p>
          <p>
            <Link href="/login">Go to sign-in</Link>
          </p>
        </section>
      )}

      {state.kind === 'signed-in' && (
        <section className="card" data-testid="session">
          <h2>Signed in</h2>
          <dl className="facts">
            <dt>User</dt>
            <dd>
              {state.session.user.name ? `${state.session.user.name} ` : ''}
              <span className="muted">&lt;{state.session.user.email}&gt;</span>
            </dd>
            <dt>Organisation</dt>
            <dd>
              {state.session.org.name} <span className="muted">({state.session.org.slug})</span>
            </dd>
            <dt>Roles</dt>
            <dd>
              {state.session.roles.length === 0 ? (
                <span className="muted">none</span>
              ) : (
                <ul className="tags">
                  {state.session.roles.map((role) => (
                    <li key={role} className="tag">
                      {role}
                    </li>
                  ))}
                </ul>
              )}
            </dd>
          </dl>
          {signOutError && (
            <p className="error" role="alert">
              {signOutError}
            </p>
          )}
          <button type="button" className="button secondary" onClick={onSignOut} disabled={signingOut}>
            {signingOut ? 'Signing out…' : 'Sign out'}
          </button>
        </section>
      )}
    </>
  );
}
